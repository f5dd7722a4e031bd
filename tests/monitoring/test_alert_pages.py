"""The alerts page and acknowledging an alert: content, filters, permissions per role, bad input."""

from __future__ import annotations

import pytest
from django.urls import reverse

from monitoring.choices import AlertStatus
from monitoring.models import Alert
from tests.factories import AlertFactory
from tests.monitoring.helpers import assert_form_error

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- fleet


# --------------------------------------------------------------------------- alerts page


def test_alert_list_shows_active_alerts_of_visible_models(client_for, owner, seeded, other_model):
    AlertFactory(model=other_model, title="other team")
    response = client_for(owner).get(reverse("monitoring:alert_list"))
    assert response.status_code == 200
    alerts = response.context["alerts"]
    assert {a.model.name for a in alerts} == {"fraud"}
    assert {a.status for a in alerts} == {AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED}
    assert b"Acknowledge</button>" in response.content
    # the unfiltered page also lists what was resolved in the last week
    assert [a.status for a in response.context["recent"]] == [AlertStatus.RESOLVED]
    assert b"Resolved in the last 7 days" in response.content


def test_alert_list_filters(client_for, admin_user, seeded):
    c = client_for(admin_user)
    url = reverse("monitoring:alert_list")
    assert {a.status for a in c.get(url, {"status": "resolved"}).context["alerts"]} == {AlertStatus.RESOLVED}
    assert len(c.get(url, {"status": ""}).context["alerts"]) == 3
    assert {a.severity for a in c.get(url, {"status": "", "severity": "critical"}).context["alerts"]} == {"critical"}
    assert {a.kind for a in c.get(url, {"status": "", "kind": "performance"}).context["alerts"]} == {"performance"}
    assert c.get(url, {"status": "", "model": "nope"}).context["alerts"] == []
    assert len(c.get(url, {"status": "", "days": 1}).context["alerts"]) == 1


@pytest.mark.parametrize(
    "params",
    [
        {"status": "sleeping"},
        {"severity": "meh"},
        {"kind": "x"},
        {"days": "0"},
        {"days": "x"},
        {"opened_after": "soon"},
    ],
)
def test_alert_list_rejects_bad_filters(client_for, owner, params):
    assert_form_error(client_for(owner).get(reverse("monitoring:alert_list"), params), *params)


@pytest.mark.parametrize("role", ["reviewer", "auditor"])
def test_read_only_roles_see_alerts_without_acknowledge_buttons(client_for, roles, role, seeded):
    response = client_for(roles[role]).get(reverse("monitoring:alert_list"))
    assert response.status_code == 200
    assert len(response.context["alerts"]) == 2
    assert b"Acknowledge</button>" not in response.content


def test_outsider_sees_no_alerts(client_for, outsider, seeded):
    response = client_for(outsider).get(reverse("monitoring:alert_list"), {"status": ""})
    assert response.status_code == 200
    assert response.context["alerts"] == []


# --------------------------------------------------------------------------- acknowledge


@pytest.fixture
def open_alert(seeded):
    return Alert.objects.get(model=seeded, status=AlertStatus.OPEN)


def test_owner_acknowledges_an_alert_with_a_comment_over_htmx(client_for, owner, open_alert, last_seq, audit_actions):
    c = client_for(owner)  # logging in is audited too: take the head after it
    seq = last_seq()
    response = c.post(
        reverse("monitoring:alert_acknowledge", args=[open_alert.pk]),
        {"comment": "Retraining with last month's data."},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="alert-{open_alert.pk}" data-status="acknowledged"')
    assert "Retraining with last month" in html
    open_alert.refresh_from_db()
    assert open_alert.status == AlertStatus.ACKNOWLEDGED
    assert open_alert.acknowledged_by == owner
    assert open_alert.acknowledge_comment == "Retraining with last month's data."
    assert audit_actions(seq) == ["alert.acknowledged"]


def test_plain_form_acknowledge_redirects_to_the_alert_list(client_for, owner, open_alert):
    response = client_for(owner).post(reverse("monitoring:alert_acknowledge", args=[open_alert.pk]), {"comment": "ok"})
    assert response.status_code == 302 and response["Location"] == reverse("monitoring:alert_list")


@pytest.mark.parametrize("comment", ["", "   ", "x" * 5001])
def test_acknowledge_without_a_valid_comment_is_a_400_and_writes_nothing(
    client_for, owner, open_alert, comment, last_seq
):
    c = client_for(owner)
    seq = last_seq()
    response = c.post(reverse("monitoring:alert_acknowledge", args=[open_alert.pk]), {"comment": comment})
    assert_form_error(response, "comment")
    open_alert.refresh_from_db()
    assert open_alert.status == AlertStatus.OPEN and last_seq() == seq


def test_acknowledging_twice_is_a_409(client_for, owner, open_alert):
    c = client_for(owner)
    url = reverse("monitoring:alert_acknowledge", args=[open_alert.pk])
    assert c.post(url, {"comment": "first"}).status_code == 302
    response = c.post(url, {"comment": "again"})
    assert response.status_code == 409
    # a browser got the bare JSON error; it now gets the alerts page saying why (htmx keeps the JSON)
    assert (
        response["Content-Type"].startswith("text/html")
        and f"Alert #{open_alert.pk} is acknowledged" in response.content.decode()
    )
    assert response.context["alerts"] is not None
    fragment = c.post(url, {"comment": "again"}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 409 and fragment.json()["error"]["code"]
    open_alert.refresh_from_db()
    assert open_alert.acknowledge_comment == "first"


@pytest.mark.parametrize("role,status", [("reviewer", 403), ("auditor", 403), ("outsider", 404)])
def test_only_the_owner_or_an_admin_can_acknowledge(client_for, roles, role, status, open_alert, last_seq):
    c = client_for(roles[role])
    seq = last_seq()
    response = c.post(reverse("monitoring:alert_acknowledge", args=[open_alert.pk]), {"comment": "mine now"})
    assert response.status_code == status
    open_alert.refresh_from_db()
    assert open_alert.status == AlertStatus.OPEN and last_seq() == seq


def test_admin_can_acknowledge(client_for, admin_user, open_alert):
    response = client_for(admin_user).post(
        reverse("monitoring:alert_acknowledge", args=[open_alert.pk]), {"comment": "on it"}
    )
    assert response.status_code == 302
    open_alert.refresh_from_db()
    assert open_alert.acknowledged_by == admin_user


def test_acknowledge_needs_post(client_for, owner, open_alert):
    assert client_for(owner).get(reverse("monitoring:alert_acknowledge", args=[open_alert.pk])).status_code == 405


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-01-01T00:00+16:00"])
def test_alert_page_time_filters_at_the_edges_never_fail(client_for, owner, seeded, value):
    response = client_for(owner).get(reverse("monitoring:alert_list"), {"opened_after": value})
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert_form_error(response, "opened_after")
