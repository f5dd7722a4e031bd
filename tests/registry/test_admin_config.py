"""Configuration changed in the admin is audited: the beat schedule (django-celery-beat's periodic
tasks: a disabled retention purge or audit checkpoint is a control switched off, and the chain
must say who switched it, when) and the MLflow servers the portal governs."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django_celery_beat.models import PeriodicTask

from registry.models import AuditEvent

pytestmark = pytest.mark.django_db
CHECKPOINT = "registry: audit chain checkpoint"


def _change_form_data(admin_user, task) -> dict:
    """What the admin's change form for ``task`` would post back unchanged."""
    request = RequestFactory().get("/")
    request.user = admin_user
    form = admin.site.get_model_admin(PeriodicTask).get_form(request, task)(instance=task)
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = value
    return data


def test_disabling_a_scheduled_task_on_its_admin_page_is_audited(admin_user, client_for, last_seq):
    task = PeriodicTask.objects.get(name=CHECKPOINT)
    assert task.enabled
    data = _change_form_data(admin_user, task)
    del data["enabled"]  # the box unticked
    since = last_seq()
    response = client_for(admin_user).post(f"/admin/django_celery_beat/periodictask/{task.pk}/change/", data)
    assert response.status_code == 302, response.content[:3000]
    task.refresh_from_db()
    assert not task.enabled
    event = AuditEvent.objects.get(seq__gt=since, action="schedule.changed")
    assert event.actor_id == admin_user.pk and event.source == "ui" and event.object_repr == CHECKPOINT
    assert event.before == {"enabled": True} and event.after == {"enabled": False}


def test_the_admin_list_actions_that_switch_tasks_off_and_on_are_audited(admin_user, client_for, last_seq):
    task = PeriodicTask.objects.get(name=CHECKPOINT)
    client = client_for(admin_user)
    since = last_seq()
    for action in ("disable_tasks", "enable_tasks", "toggle_tasks"):
        response = client.post(
            "/admin/django_celery_beat/periodictask/", {"action": action, "_selected_action": [task.pk]}
        )
        assert response.status_code == 302, response.content[:2000]
    task.refresh_from_db()
    assert not task.enabled
    events = list(AuditEvent.objects.filter(seq__gt=since, action="schedule.changed").order_by("seq"))
    assert [e.after for e in events] == [{"enabled": False}, {"enabled": True}, {"enabled": False}]
    assert all(e.actor_id == admin_user.pk and e.object_repr == CHECKPOINT for e in events)


def test_deleting_a_scheduled_task_in_the_admin_is_audited(admin_user, client_for, last_seq):
    task = PeriodicTask.objects.get(name=CHECKPOINT)
    since = last_seq()
    response = client_for(admin_user).post(f"/admin/django_celery_beat/periodictask/{task.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content[:2000]
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    event = AuditEvent.objects.get(seq__gt=since, action="schedule.deleted")
    assert event.before["name"] == CHECKPOINT and event.before["enabled"] is True


def test_adding_and_changing_an_mlflow_server_in_the_admin_is_audited_without_its_token(
    admin_user, owner, team, client_for, last_seq
):
    # The server whose production alias the portal moves, and whose models it imports into a team
    # under an owner, is governance configuration: who pointed the portal where, and when.
    from registry.models import MlflowServer

    client = client_for(admin_user)
    form = {
        "name": "central",
        "tracking_url": "https://93.184.216.34/",
        "token": "s3cret-token-value",
        "team": team.pk,
        "default_owner": owner.pk,
        "alias": "champion",
        "enabled": "on",
    }
    since = last_seq()
    response = client.post("/admin/registry/mlflowserver/add/", form)
    assert response.status_code == 302, response.content[:3000]
    server = MlflowServer.objects.get(name="central")
    changed = client.post(f"/admin/registry/mlflowserver/{server.pk}/change/", {**form, "alias": "prod"})
    assert changed.status_code == 302, changed.content[:3000]
    events = list(AuditEvent.objects.filter(seq__gt=since).exclude(action="user.logged_in").order_by("seq"))
    assert [e.action for e in events] == ["mlflow_server.created", "mlflow_server.changed"]
    assert events[0].after["tracking_url"] == "https://93.184.216.34/" and events[0].after["token_set"] is True
    assert events[1].before == {"alias": "champion"} and events[1].after == {"alias": "prod"}
    assert "s3cret" not in str([e.before for e in events] + [e.after for e in events])
    assert all(e.actor_id == admin_user.pk for e in events)


PURGE = "monitoring: purge expired raw data"


def _nightly_purge_schedule():
    task = PeriodicTask.objects.get(name=PURGE)
    assert task.crontab is not None
    return task, task.crontab


def test_changing_the_crontab_a_task_runs_on_is_audited_on_every_task_using_it(admin_user, client_for, last_seq):
    task, crontab = _nightly_purge_schedule()
    users = sorted(PeriodicTask.objects.filter(crontab=crontab).values_list("name", flat=True))
    was = str(crontab)
    since = last_seq()
    response = client_for(admin_user).post(
        f"/admin/django_celery_beat/crontabschedule/{crontab.pk}/change/",
        {
            "minute": "0",
            "hour": "0",
            "day_of_month": "1",
            "month_of_year": "1",
            "day_of_week": "*",
            "timezone": "UTC",
            "periodictask_set-TOTAL_FORMS": "0",
            "periodictask_set-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    crontab.refresh_from_db()
    assert crontab.month_of_year == "1"  # the purge now runs once a year
    events = list(AuditEvent.objects.filter(seq__gt=since, action="schedule.changed").order_by("seq"))
    assert sorted(e.object_repr for e in events) == users and PURGE in users
    assert all(e.actor_id == admin_user.pk and e.source == "ui" for e in events)
    assert events[0].before == {"crontab": was} and events[0].after == {"crontab": str(crontab)}


def test_deleting_a_crontab_in_the_admin_audits_the_tasks_it_takes_with_it(admin_user, client_for, last_seq):
    task, crontab = _nightly_purge_schedule()
    users = sorted(PeriodicTask.objects.filter(crontab=crontab).values_list("name", flat=True))
    since = last_seq()
    response = client_for(admin_user).post(
        f"/admin/django_celery_beat/crontabschedule/{crontab.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302, response.content[:2000]
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    events = list(AuditEvent.objects.filter(seq__gt=since, action="schedule.deleted").order_by("seq"))
    assert sorted(e.object_repr for e in events) == users
    assert all(e.actor_id == admin_user.pk for e in events)


CHANGELIST = "/admin/django_celery_beat/periodictask/"


@pytest.fixture
def sent(monkeypatch):
    """The checkpoint task's sends to the broker (``apply_async`` calls), kept instead of sent."""
    from mlops_portal.celery import app

    calls = []
    app.loader.import_default_modules()
    monkeypatch.setattr(app.tasks["registry.tasks.audit_checkpoint"], "apply_async", lambda **kw: calls.append(kw))
    return calls


def test_running_a_scheduled_task_from_the_admin_is_audited_and_sent_once_committed(
    admin_user, client_for, last_seq, sent, django_capture_on_commit_callbacks
):
    # "Run selected tasks" ran a purge or a checkpoint at once with no trace of who started it.
    task = PeriodicTask.objects.get(name=CHECKPOINT)
    since = last_seq()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(admin_user).post(
            CHANGELIST, {"action": "run_tasks", "_selected_action": [task.pk]}, HTTP_X_REQUEST_ID="run-checkpoint-1"
        )
    assert response.status_code == 302, response.content[:2000]
    assert sent == []  # nothing reaches the broker before the event commits
    event = AuditEvent.objects.get(seq__gt=since, action="schedule.run")
    assert event.actor_id == admin_user.pk and event.source == "ui" and event.request_id == "run-checkpoint-1"
    assert event.object_id == str(task.pk) and event.object_repr == CHECKPOINT
    assert event.after["task"] == "registry.tasks.audit_checkpoint"
    for callback in callbacks:
        callback()
    assert len(sent) == 1
    assert sent[0]["task_id"] == event.after["task_id"]  # the worker's run names the event's id
    assert sent[0]["headers"] == {"periodic_task_name": CHECKPOINT}


def test_a_task_unknown_to_the_worker_code_is_neither_run_nor_recorded(admin_user, client_for, last_seq, sent):
    task = PeriodicTask.objects.get(name=CHECKPOINT)
    unknown = PeriodicTask.objects.create(name="typo", task="registry.tasks.no_such_task", interval=task.interval)
    since = last_seq()
    response = client_for(admin_user).post(
        CHANGELIST, {"action": "run_tasks", "_selected_action": [task.pk, unknown.pk]}, follow=True
    )
    assert "registry.tasks.no_such_task" in response.content.decode()
    assert sent == [] and not AuditEvent.objects.filter(seq__gt=since, action="schedule.run").exists()


def test_only_admins_who_may_change_the_schedule_run_or_switch_its_tasks(
    outsider, client_for, last_seq, sent, django_capture_on_commit_callbacks
):
    # A staff account the admin site lets read the schedule (view permission only) could run the
    # purge and switch the audit checkpoint off from the list: the list actions asked no permission.
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    reader = UserFactory(username="schedule-reader", is_staff=True)
    reader.user_permissions.add(Permission.objects.get(codename="view_periodictask"))
    task = PeriodicTask.objects.get(name=CHECKPOINT)
    assert client_for(reader).get(CHANGELIST).status_code == 200
    since = last_seq()
    with django_capture_on_commit_callbacks(execute=True):
        for user in (outsider, reader):
            for action in ("run_tasks", "disable_tasks"):
                client_for(user).post(CHANGELIST, {"action": action, "_selected_action": [task.pk]})
    task.refresh_from_db()
    assert task.enabled, "a reader switched the checkpoint off"
    assert sent == [], "a reader ran the checkpoint"
    assert not AuditEvent.objects.filter(seq__gt=since).exclude(action="user.logged_in").exists()


@pytest.mark.parametrize(
    "changelist,action",
    [
        (CHANGELIST, "run_tasks"),
        (CHANGELIST, "disable_tasks"),
        ("/admin/auth/user/", "deactivate"),
        ("/admin/registry/apitoken/", "revoke"),
        ("/admin/registry/serviceaccount/", "deactivate"),
        ("/admin/registry/webhookdelivery/", "redeliver"),
        ("/admin/registry/mlflowserver/", "sync_now"),
        ("/admin/axes/accessattempt/", "unlock"),
        ("/admin/registry/team/", "delete_selected"),
        ("/admin/registry/webhook/", "delete_selected"),
        ("/admin/registry/groupmapping/", "delete_selected"),
        ("/admin/django_celery_beat/crontabschedule/", "delete_selected"),
        ("/admin/django_celery_beat/intervalschedule/", "delete_selected"),
    ],
)
@pytest.mark.parametrize("selected", ["abc", "\x00", "1.5"])
def test_a_list_action_on_a_selection_that_is_not_a_key_is_refused_with_the_list(
    admin_user, client_for, last_seq, sent, changelist, action, selected
):
    # it answered 500 (the database lookup of the selected rows raised ValueError)
    task = PeriodicTask.objects.get(name=CHECKPOINT)
    since = last_seq()
    response = client_for(admin_user).post(changelist, {"action": action, "_selected_action": [str(task.pk), selected]})
    assert response.status_code == 400
    assert "Select rows of the list" in response.content.decode()
    assert sent == [] and not AuditEvent.objects.filter(seq__gt=since).exclude(action="user.logged_in").exists()
    task.refresh_from_db()
    assert task.enabled


@pytest.mark.parametrize(
    "changelist,field",
    [
        ("/admin/registry/apitoken/", "revoked_at"),
        ("/admin/registry/mlflowaliasviolation/", "resolved_at"),
        (CHANGELIST, "start_time"),
        (CHANGELIST, "last_run_at"),
    ],
)
@pytest.mark.parametrize("lookup", ["gte", "lt"])
def test_a_date_filter_outside_the_calendar_in_utc_is_an_incorrect_lookup(
    admin_user, client_for, changelist, field, lookup
):
    # it answered 500 (OverflowError: the instant, moved to UTC, is after 9999-12-31)
    response = client_for(admin_user).get(changelist, {f"{field}__{lookup}": "9999-12-31T23:59:59.999999-14:00"})
    assert response.status_code == 302 and response["Location"] == f"{changelist}?e=1"  # Django's bad-filter answer
    assert (
        client_for(admin_user).get(changelist, {f"{field}__{lookup}": "2026-01-01T00:00:00+00:00"}).status_code == 200
    )
