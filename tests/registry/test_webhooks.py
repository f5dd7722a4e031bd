"""Outgoing webhooks against a real HTTP server on 127.0.0.1: signature, retries, filters, audit,
and the outbound-URL policy (127.0.0.1 is allow-listed here, except where a test proves the default)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from registry.choices import DeliveryStatus, Stage
from registry.models import AuditEvent, Webhook, WebhookDelivery
from registry.services.audit import CLI
from registry.services.promotions import promotion_approve, promotion_request
from registry.services.webhooks import (
    MAX_ATTEMPTS,
    webhook_create,
    webhook_delete,
    webhook_dispatch,
    webhook_update,
)
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.loopback import LoopbackServer, QuietHandler

SECRET = "s3cret-for-tests"


class Receiver(LoopbackServer):
    """A real HTTP server on 127.0.0.1 that records requests and answers scripted status codes."""

    def __init__(self, statuses: list[int] | None = None):
        self.statuses = list(statuses or [])
        self.requests: list[dict] = []
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if code < 300 else b"boom")

        super().__init__(Handler, "/hook")


@pytest.fixture(autouse=True)
def _allow_loopback(settings):
    """The receivers below listen on 127.0.0.1, which the outbound policy refuses by default."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def _hook(url, model=None, events=None, name="ops"):
    return Webhook.objects.create(name=name, url=url, secret=SECRET, model=model, events=events or [])


def _open(version, owner):
    return promotion_request(
        version=version, target_stage=Stage.PRODUCTION, requester=owner, justification="Ship it.", context=CLI
    )


def _verify(request: dict) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(request["headers"]["X-MLOps-Signature"], expected)


def _promoted(version, owner, reviewer, receiver, capture):
    """A hook on every event, then a promotion requested and approved (applied at once)."""
    _hook(receiver.url)
    with capture(execute=True):
        req = _open(version, owner)
    with capture(execute=True):
        promotion_approve(request=req, reviewer=reviewer, comment="ok", context=CLI)
    return req


def test_promotion_events_are_delivered_signed_with_the_actor(
    churn_v1, owner, reviewer, receiver, django_capture_on_commit_callbacks
):
    req = _promoted(churn_v1, owner, reviewer, receiver, django_capture_on_commit_callbacks)
    events = [r["headers"]["X-MLOps-Event"] for r in receiver.requests]
    assert events == ["promotion.requested", "promotion.approved", "stage.changed", "promotion.applied"]
    assert all(_verify(r) for r in receiver.requests)
    first = json.loads(receiver.requests[0]["body"])
    assert first["event"] == "promotion.requested"
    assert first["actor"]["username"] == "owner"
    assert first["model"] == "churn"
    assert first["data"]["request"]["id"] == req.pk
    approved = json.loads(receiver.requests[1]["body"])
    assert approved["actor"]["username"] == "reviewer"
    assert receiver.requests[0]["headers"]["Content-Type"] == "application/json"
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


def test_each_promotion_event_tells_the_log_and_the_subscribers_the_same_thing(
    churn_v1, owner, reviewer, receiver, django_capture_on_commit_callbacks
):
    _promoted(churn_v1, owner, reviewer, receiver, django_capture_on_commit_callbacks)
    delivered = {r["headers"]["X-MLOps-Event"]: json.loads(r["body"])["data"] for r in receiver.requests}
    logged = {e.action: e.after for e in AuditEvent.objects.filter(action__in=delivered).order_by("seq")}
    assert (
        set(logged)
        == set(delivered)
        == {"promotion.requested", "promotion.approved", "stage.changed", "promotion.applied"}
    )
    for event, data in delivered.items():
        assert data == logged[event], event


def test_a_tampered_body_does_not_verify(churn_v1, owner, receiver, django_capture_on_commit_callbacks):
    _hook(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        _open(churn_v1, owner)
    request = dict(receiver.requests[0])
    assert _verify(request)
    request["body"] = request["body"].replace(b"Ship it.", b"Ship it!")
    assert not _verify(request)


def test_a_failed_delivery_is_retried_with_backoff_and_every_attempt_is_logged(
    churn_v1, owner, django_capture_on_commit_callbacks
):
    with Receiver(statuses=[500]) as receiver:
        _hook(receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            _open(churn_v1, owner)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 2
    assert [a["outcome"] for a in delivery.attempt_log] == ["retry", "delivered"]
    assert [a["status_code"] for a in delivery.attempt_log] == [500, 200]
    assert [a["error"] for a in delivery.attempt_log] == ["http_500", ""]
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]
    assert all(_verify(r) for r in receiver.requests)


def test_a_delivery_that_always_fails_gives_up_after_the_last_attempt(
    churn_v1, owner, django_capture_on_commit_callbacks
):
    with Receiver(statuses=[503] * 20) as receiver:
        _hook(receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            _open(churn_v1, owner)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == MAX_ATTEMPTS == len(receiver.requests)
    assert [a["outcome"] for a in delivery.attempt_log] == ["retry"] * (MAX_ATTEMPTS - 1) + ["failed"]
    assert delivery.last_status_code == 503
    assert delivery.last_error_class == "http_503"


def test_an_unreachable_receiver_is_recorded_as_an_error(churn_v1, owner, django_capture_on_commit_callbacks):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _hook(f"http://127.0.0.1:{port}/nothing-listens")
    with django_capture_on_commit_callbacks(execute=True):
        _open(churn_v1, owner)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempt_log[0]["error"] == "connection_error"
    assert delivery.last_status_code is None


def test_retries_use_celerys_exponential_backoff_with_jitter():
    from celery.utils.time import get_exponential_backoff_interval

    from registry.tasks import WebhookNotDelivered, webhook_deliver

    assert webhook_deliver.autoretry_for == (WebhookNotDelivered,)
    assert webhook_deliver.max_retries == MAX_ATTEMPTS - 1 == 5
    assert webhook_deliver.retry_jitter is True
    ceilings = [
        get_exponential_backoff_interval(
            factor=webhook_deliver.retry_backoff,
            retries=n,
            maximum=webhook_deliver.retry_backoff_max,
            full_jitter=False,
        )
        for n in range(8)
    ]
    assert ceilings == [30, 60, 120, 240, 480, 960, 1920, 3600]


def test_per_model_and_event_filters_choose_the_webhooks(churn_v1, owner, team, django_capture_on_commit_callbacks):
    other = RegisteredModelFactory(name="fraud", owner=owner, team=team)
    with Receiver() as receiver:
        for_churn = _hook(receiver.url, model=churn_v1.model, name="churn-only")
        _hook(receiver.url, model=other, name="fraud-only")
        alerts_only = _hook(receiver.url, events=["alert"], name="alerts")
        with django_capture_on_commit_callbacks(execute=True):
            _open(churn_v1, owner)
    assert list(WebhookDelivery.objects.values_list("webhook", flat=True)) == [for_churn.pk]
    with django_capture_on_commit_callbacks(execute=True):
        deliveries = webhook_dispatch(
            event="alert.opened", model=other, payload={"severity": "critical", "metric": "psi"}
        )
    assert [d.webhook for d in deliveries] == [Webhook.objects.get(name="fraud-only"), alerts_only]


def test_nothing_is_sent_when_the_action_is_refused(churn_v1, reviewer, receiver, django_capture_on_commit_callbacks):
    _hook(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(PermissionDenied):
            _open(churn_v1, reviewer)
    assert not WebhookDelivery.objects.exists()
    assert receiver.requests == []


def test_inactive_webhooks_get_nothing(churn_v1, owner, receiver, django_capture_on_commit_callbacks):
    hook = _hook(receiver.url)
    hook.is_active = False
    hook.save()
    with django_capture_on_commit_callbacks(execute=True):
        _open(churn_v1, owner)
    assert receiver.requests == []


def test_delivering_twice_is_idempotent(churn_v1, owner, receiver, django_capture_on_commit_callbacks):
    from registry.tasks import webhook_deliver

    _hook(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        _open(churn_v1, owner)
    delivery = WebhookDelivery.objects.get()
    webhook_deliver.delay(delivery.pk)
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get().attempts == 1


def test_rollback_sends_a_rollback_event(churn, owner, reviewer, receiver, django_capture_on_commit_callbacks):
    from registry.services.stages import model_rollback

    v1, v2 = ModelVersionFactory(model=churn), ModelVersionFactory(model=churn)
    for version in (v1, v2):
        promotion_approve(request=_open(version, owner), reviewer=reviewer, comment="", context=CLI)
    _hook(receiver.url, events=["stage"])
    with django_capture_on_commit_callbacks(execute=True):
        model_rollback(model=churn, actor=owner, reason="Latency spike.", context=CLI)
    events = [r["headers"]["X-MLOps-Event"] for r in receiver.requests]
    assert events == ["stage.changed", "stage.changed", "rollback"]
    body = json.loads(receiver.requests[-1]["body"])
    assert (body["data"]["from_version"], body["data"]["to_version"], body["actor"]["username"]) == (2, 1, "owner")


def test_webhook_create_update_delete_are_audited_without_the_secret(admin_user, churn, last_seq, audit_actions):
    seq = last_seq()
    hook = webhook_create(
        name="ops", url="https://hooks.example.com/x", model=churn, events=["promotion"], actor=admin_user, context=CLI
    )
    assert len(hook.secret) == 64
    webhook_update(webhook=hook, actor=admin_user, changes={"is_active": False, "secret": "new"}, context=CLI)
    webhook_delete(webhook=hook, actor=admin_user, context=CLI)
    assert audit_actions(seq) == ["webhook.created", "webhook.updated", "webhook.deleted"]
    events = AuditEvent.objects.filter(seq__gt=seq).order_by("seq")
    assert all(hook.secret not in json.dumps([e.before, e.after]) for e in events)
    assert events[1].after == {"is_active": False, "secret": "rotated"}
    assert not Webhook.objects.exists()


@pytest.mark.parametrize("role", ["owner", "reviewer", "auditor", "outsider"])
def test_only_admins_manage_webhooks(roles, role, last_seq):
    seq = last_seq()
    with pytest.raises(PermissionDenied):
        webhook_create(name="x", url="https://example.com", actor=roles[role], context=CLI)
    assert last_seq() == seq and not Webhook.objects.exists()


@pytest.mark.parametrize(
    ("url", "events"), [("not a url", []), ("https://example.com", ["nonsense"]), ("https://example.com", "promotion")]
)
def test_invalid_webhooks_are_refused(admin_user, url, events):
    with pytest.raises(ValidationError):
        webhook_create(name="x", url=url, events=events, actor=admin_user, context=CLI)
    assert not Webhook.objects.exists()


def _admin_add_webhook(client, url: str, events: list[str]):
    """Post the admin's "add webhook" form (no secret given, no delivery rows)."""
    management = {f"deliveries-{n}_FORMS": "0" for n in ("TOTAL", "INITIAL", "MIN_NUM", "MAX_NUM")}
    form = {"name": "ops", "url": url, "events": events, "secret": "", "is_active": "on", **management}
    return client.post("/admin/registry/webhook/add/", form)


def test_admin_creates_a_webhook_through_the_audited_service(admin_user, client_for, last_seq, audit_actions):
    client = client_for(admin_user)
    assert client.get("/admin/registry/webhook/add/").status_code == 200
    seq = last_seq()
    response = _admin_add_webhook(client, "https://hooks.example.com/mlops", ["promotion", "stage"])
    assert response.status_code == 302, response.content.decode()[:3000]
    hook = Webhook.objects.get()
    assert hook.events == ["promotion", "stage"] and hook.created_by == admin_user and len(hook.secret) == 64
    assert audit_actions(seq) == ["webhook.created"]


def test_admin_sees_every_delivery_attempt(churn_v1, owner, admin_user, client_for, django_capture_on_commit_callbacks):
    with Receiver(statuses=[500]) as receiver:
        _hook(receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            _open(churn_v1, owner)
    delivery = WebhookDelivery.objects.get()
    client = client_for(admin_user)
    assert client.get("/admin/registry/webhookdelivery/").status_code == 200
    html = client.get(f"/admin/registry/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "Attempt log" in html and "http_500" in html and "delivered" in html
    assert "boom" not in html  # the receiver's answer is never stored


def test_admin_sends_a_failed_delivery_again(
    churn_v1, owner, admin_user, client_for, last_seq, audit_actions, django_capture_on_commit_callbacks
):
    with Receiver(statuses=[500] * MAX_ATTEMPTS) as receiver:
        _hook(receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            _open(churn_v1, owner)
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == DeliveryStatus.FAILED
        client = client_for(admin_user)
        seq = last_seq()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/admin/registry/webhookdelivery/", {"action": "redeliver", "_selected_action": [delivery.pk]}
            )
        assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == MAX_ATTEMPTS + 1
    assert delivery.attempt_log[-1]["outcome"] == "delivered"
    assert audit_actions(seq) == ["webhook.redelivered"]
    assert len(receiver.requests) == MAX_ATTEMPTS + 1


def test_only_failed_deliveries_can_be_sent_again(
    churn_v1, owner, admin_user, receiver, django_capture_on_commit_callbacks
):
    from registry.services.webhooks import webhook_redeliver

    _hook(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        _open(churn_v1, owner)
    delivery = WebhookDelivery.objects.get()
    with pytest.raises(ValidationError):
        webhook_redeliver(delivery=delivery, actor=admin_user, context=CLI)
    with pytest.raises(PermissionDenied):
        webhook_redeliver(delivery=delivery, actor=owner, context=CLI)


def test_a_webhook_to_an_internal_address_is_refused_when_saved(admin_user, churn, last_seq, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    seq = last_seq()
    for url in ("http://127.0.0.1:8250/internal-admin", "http://169.254.169.254/latest/", "http://2130706433/"):
        with pytest.raises(ValidationError) as info:
            webhook_create(name="x", url=url, events=["alert"], actor=admin_user, context=CLI)
        assert "url" in info.value.message_dict
    hook = webhook_create(name="ok", url="https://8.8.8.8/hook", events=["alert"], actor=admin_user, context=CLI)
    with pytest.raises(ValidationError):
        webhook_update(webhook=hook, actor=admin_user, changes={"url": "http://[::ffff:10.0.0.1]/"}, context=CLI)
    hook.refresh_from_db()
    assert hook.url == "https://8.8.8.8/hook"
    assert [e for e in AuditEvent.objects.filter(seq__gt=seq).values_list("action", flat=True)] == ["webhook.created"]


def test_by_default_a_delivery_to_loopback_is_refused_and_nothing_is_sent(
    churn_v1, owner, receiver, settings, django_capture_on_commit_callbacks
):
    """A webhook saved before the policy (or an address that changed since) is checked again at delivery."""
    settings.OUTBOUND_ALLOWED_HOSTS = []
    _hook(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        _open(churn_v1, owner)
    delivery = WebhookDelivery.objects.get()
    assert receiver.requests == []
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error_class == "refused" and delivery.last_status_code is None
    assert {a["error"] for a in delivery.attempt_log} == {"refused"}


def test_a_redirect_is_recorded_and_not_followed(churn_v1, owner, receiver, django_capture_on_commit_callbacks):
    with Receiver(statuses=[302] * MAX_ATTEMPTS) as redirector:
        _hook(redirector.url)
        with django_capture_on_commit_callbacks(execute=True):
            _open(churn_v1, owner)
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_status_code == 302 and delivery.last_error_class == "redirect"
    assert receiver.requests == []


def test_the_admin_form_refuses_an_internal_webhook_url_with_a_field_error(admin_user, client_for, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    response = _admin_add_webhook(client_for(admin_user), "http://169.254.169.254/latest/meta-data/", ["alert"])
    assert response.status_code == 200
    assert "OUTBOUND_ALLOWED_HOSTS" in response.content.decode()
    assert not Webhook.objects.exists()


def test_the_admin_form_refuses_an_mlflow_server_on_loopback(admin_user, team, owner, client_for, settings):
    from registry.models import MlflowServer

    settings.OUTBOUND_ALLOWED_HOSTS = []
    response = client_for(admin_user).post(
        "/admin/registry/mlflowserver/add/",
        {
            "name": "local",
            "tracking_url": "http://127.0.0.1:5000",
            "team": team.pk,
            "default_owner": owner.pk,
            "alias": "champion",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert "OUTBOUND_ALLOWED_HOSTS" in response.content.decode()
    assert not MlflowServer.objects.exists()
