"""The demo's registry history happened over months, at the times the catalogue tells,
written through the services (audit chain true, in time order) and back-dated."""

import datetime
import itertools

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from registry import demo
from registry.models import AuditEvent, ModelVersion, StageTransition
from registry.selectors.audit import inventory_as_of


def _production(moment):
    admin = get_user_model().objects.get(username="admin")
    return {e.model.name: e.version.version if e.version else None for e in inventory_as_of(user=admin, moment=moment)}


@pytest.mark.django_db
def test_the_demo_history_is_back_dated_in_time_order_and_the_as_of_answer_differs_between_two_dates():
    call_command("load_demo", "--no-progress", "--no-monitoring")
    today = timezone.now()
    five_weeks_ago = demo.moment((-35, 0))

    # the as-of answer differs: five weeks ago (midnight) v1, today v2, which went live just
    # before the first day of monitoring traffic (06:00 five weeks ago)
    assert _production(five_weeks_ago)[demo.CHURN] == 1
    assert _production(today)[demo.CHURN] == 2
    went_live = StageTransition.objects.get(version__model__name=demo.CHURN, version__version=2, to_stage="production")
    assert five_weeks_ago < went_live.created_at < demo.moment((-35, 6))
    assert ModelVersion.objects.get(model__name=demo.CHURN, version=2).stage_changed_at == went_live.created_at

    # versions registered weeks and months apart
    created = list(
        ModelVersion.objects.filter(model__name=demo.CHURN).order_by("version").values_list("created_at", flat=True)
    )
    assert all(later - earlier > datetime.timedelta(weeks=3) for earlier, later in itertools.pairwise(created))
    assert today - created[0] > datetime.timedelta(days=180)

    # the chain: in seq order the times never go back, every event is the command line's (the
    # demo's own with request_id load_demo), and verify_audit passes
    events = list(AuditEvent.objects.order_by("seq").values_list("timestamp", "source", "action", "request_id"))
    assert [e[0] for e in events] == sorted(e[0] for e in events)
    assert {e[1] for e in events} == {"cli"}
    assert {e[3] for e in events if e[2] != "user.role_changed"} == {"load_demo"}
    # before the first day of monitoring traffic, but the LLM application's later versions
    late = AuditEvent.objects.filter(timestamp__gte=demo.moment((-35, 6)))
    assert set(late.values_list("model_name", flat=True)) == {"support-assistant"}
    call_command("verify_audit")

    # the LLM application: v1 retired (archived by v2's promotion), v2 in production, v3 registered
    stages = dict(ModelVersion.objects.filter(model__name="support-assistant").values_list("version", "stage"))
    assert stages == {1: "archived", 2: "production", 3: "none"}
    assert _production(demo.moment((-30, 0)))["support-assistant"] == 1
    assert _production(today)["support-assistant"] == 2

    # idempotent: a second run writes nothing
    call_command("load_demo", "--no-progress", "--no-monitoring")
    assert AuditEvent.objects.count() == len(events)
