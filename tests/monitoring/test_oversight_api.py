"""The oversight API: the contract other teams rely on, scopes, 409s for illegal transitions,
auditors read and never act, outsiders see nothing, and hostile input is a 4xx JSON error."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from monitoring.oversight.models import Incident
from registry.choices import Stage
from tests.factories import ModelVersionFactory

API = "/api/v1"


@pytest.fixture
def live(churn):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    return churn


def _open(client, **overrides):
    body = {"model": "churn", "severity": "serious", "aware_at": "2026-03-02T10:00:00+01:00", "summary": "Bad scores"}
    return client.post(f"{API}/incidents/", body | overrides, format="json")


@pytest.mark.parametrize(
    ("severity", "days"), [("serious", 15), ("widespread", 2), ("death", 10), ("malfunction", None)]
)
def test_post_incident_answers_201_with_the_deadline(api_client_for, owner, live, severity, days):
    answer = _open(api_client_for(owner), severity=severity)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    aware = dt.datetime.fromisoformat("2026-03-02T10:00:00+01:00")
    if days is None:
        assert body["deadline"] is None
    else:
        assert dt.datetime.fromisoformat(body["deadline"]) == aware + dt.timedelta(days=days)
    assert body["model"] == "churn" and body["severity"] == severity and body["events"][0]["kind"] == "opened"


def test_malfunction_gets_the_configured_internal_deadline(api_client_for, owner, live, settings):
    settings.INCIDENT_MALFUNCTION_DEADLINE_DAYS = 30
    body = _open(api_client_for(owner), severity="malfunction").json()
    assert body["deadline"].startswith("2026-04-01T09:00:00")


def test_incident_lifecycle_over_the_api_and_409s(api_client_for, owner, live):
    client = api_client_for(owner)
    pk = _open(client, aware_at=(timezone.now() - dt.timedelta(hours=2)).isoformat()).json()["id"]
    base = f"{API}/incidents/{pk}"
    assert client.post(f"{base}/note/", {"text": "Investigating"}, format="json").status_code == 200
    conflict = client.post(f"{base}/close/", {}, format="json")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "conflict" and "root cause" in conflict.json()["error"]["message"]
    assert client.post(f"{base}/suspend/", {"mode": "retire", "reason": "unsafe"}, format="json").status_code == 200
    assert client.post(f"{base}/report/", {"kind": "initial"}, format="json").status_code == 200
    assert client.post(f"{base}/report/", {"kind": "initial"}, format="json").status_code == 409
    assert client.post(f"{base}/resolve/", {"root_cause": "unit change"}, format="json").status_code == 200
    assert client.post(f"{base}/report/", {"kind": "final"}, format="json").status_code == 200
    closed = client.post(f"{base}/close/", {"comment": "done"}, format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["deadline_outcome"] == "met"
    assert client.get(f"{API}/incidents/?status=closed").json()["results"][0]["id"] == pk


def test_scopes_are_enforced(api_client_for, owner, live):
    read_only = api_client_for(owner, scopes=["monitoring:read"])
    assert _open(read_only).status_code == 403
    assert read_only.get(f"{API}/incidents/").status_code == 200
    writer = api_client_for(owner, scopes=["incidents:write"])
    assert _open(writer).status_code == 201
    assert writer.post(f"{API}/models/churn/reviews/", {"reason": "x"}, format="json").status_code == 403


def test_auditor_reads_everything_and_changes_nothing(api_client_for, owner, auditor, live):
    pk = _open(api_client_for(owner)).json()["id"]
    client = api_client_for(auditor)
    assert client.get(f"{API}/incidents/{pk}/").status_code == 200
    assert client.get(f"{API}/models/churn/monitoring-plan/").status_code == 200
    assert _open(client).status_code == 403
    assert client.post(f"{API}/incidents/{pk}/note/", {"text": "x"}, format="json").status_code == 403
    assert client.post(f"{API}/models/churn/reviews/", {"reason": "x"}, format="json").status_code == 403
    finding = {"severity": "low", "description": "x", "owner": "owner", "due_at": "2030-01-01T00:00:00Z"}
    assert client.post(f"{API}/models/churn/findings/", finding, format="json").status_code == 403


def test_outsider_sees_nothing(api_client_for, owner, outsider, live):
    pk = _open(api_client_for(owner)).json()["id"]
    client = api_client_for(outsider)
    assert client.get(f"{API}/incidents/").json()["results"] == []
    assert client.get(f"{API}/incidents/{pk}/").status_code == 404
    # its token cannot hold incidents:write (registry.rules.usable_scopes)
    assert client.post(f"{API}/incidents/{pk}/note/", {"text": "x"}, format="json").status_code == 403
    for path in ("monitoring-plan", "reviews", "findings"):
        assert client.get(f"{API}/models/churn/{path}/").status_code == 404
    assert _open(client).status_code == 403
    assert Incident.objects.count() == 1


def test_monitoring_plan_answers_its_signals(api_client_for, owner, live):
    answer = api_client_for(owner).get(f"{API}/models/churn/monitoring-plan/")
    assert answer.status_code == 200
    signals = [s["signal"] for s in answer.json()["signals"]]
    assert {"data_drift", "performance", "data_quality", "fairness"} <= set(signals)
    assert answer.json()["cadence"]["review_every_days"] == 180


@pytest.mark.parametrize(
    "overrides",
    [
        {"severity": "catastrophic"},
        {"aware_at": "9999-12-31T23:59:59-05:00"},
        {"aware_at": "0001-01-01T00:00:00+05:00"},
        {"aware_at": "2999-01-01T00:00:00Z"},
        {"aware_at": 12},
        {"summary": "nul\x00byte"},
        {"summary": 7},
        {"unknown": 1},
        {"alerts": [999999]},
        {"alerts": [2, 221622474720360536086032062919737344]},  # was a 500 (integer overflow)
        {"alerts": "x"},
        {"model": "nope"},
        {"began_at": "2026-03-03T10:00:00Z"},
    ],
)
def test_hostile_incident_bodies_are_4xx_json(api_client_for, owner, live, overrides):
    answer = _open(api_client_for(owner), **overrides)
    assert 400 <= answer.status_code < 500, answer.content
    assert "error" in answer.json()


def test_an_extreme_offset_is_read_as_the_instant_it_names(api_client_for, owner, live):
    answer = _open(api_client_for(owner), aware_at="2026-01-01T00:00:00+16:00")
    assert answer.status_code == 201
    assert answer.json()["aware_at"] == "2025-12-31T08:00:00Z"


def test_non_object_and_huge_bodies_are_refused(api_client_for, owner, live):
    client = api_client_for(owner)
    assert client.post(f"{API}/incidents/", [1, 2], format="json").status_code == 400
    huge = client.post(f"{API}/incidents/", {"summary": "x" * 2_000_000}, format="json")
    assert huge.status_code == 413


def test_hostile_filters_are_4xx(api_client_for, owner, live):
    client = api_client_for(owner)
    for query in (
        "severity=nope",
        "aware_after=9999-12-31T23:59:59-05:00",
        "aware_before=0001-01-01T00:00:00%2B05:00",
        "aware_after=2026-01-01T00:00:00%2B16:00",
        "overdue=maybe",
        "aware_before=x",
        "model=a%00b",
        "limit=8020261500394385927139491840&offset=-143392015373",  # was a 500 on SQLite (LIMIT overflow)
    ):
        answer = client.get(f"{API}/incidents/?{query}")
        assert answer.status_code in (200, 400), (query, answer.status_code)


def test_reviews_and_findings_contract(api_client_for, owner, reviewer, live):
    opened = api_client_for(owner).post(f"{API}/models/churn/reviews/", {"reason": "Quarterly"}, format="json")
    assert opened.status_code == 201 and opened.json()["trigger"] == "manual"
    assert api_client_for(owner).get(f"{API}/models/churn/reviews/").status_code == 200
    due = (timezone.now() + dt.timedelta(days=30)).isoformat()
    body = {"severity": "high", "description": "Calibration drifts", "owner": "owner", "due_at": due}
    created = api_client_for(reviewer).post(f"{API}/models/churn/findings/", body, format="json")
    assert created.status_code == 201, created.content
    assert api_client_for(owner).get(f"{API}/models/churn/findings/").status_code == 200
    own = api_client_for(owner).post(f"{API}/models/churn/findings/", body, format="json")
    assert own.status_code == 403  # never on a model one owns


@pytest.mark.parametrize(
    "path",
    [
        "/incidents/",
        "/incidents/1/",
        "/incidents/1/note/",
        "/incidents/1/suspend/",
        "/incidents/1/report/",
        "/incidents/1/resolve/",
        "/incidents/1/close/",
        "/models/churn/monitoring-plan/",
        "/models/churn/reviews/",
        "/models/churn/findings/",
        "/reviews/1/attest/",
        "/reviews/1/validate/",
        "/findings/1/remediate/",
        "/findings/1/retest/",
    ],
)
def test_options_answers_without_a_server_error(api_client_for, owner, live, path):
    # OPTIONS on the action endpoints was a 500 (no serializer for DRF's metadata)
    answer = api_client_for(owner).options(f"{API}{path}")
    assert answer.status_code == 200, answer.content


def test_the_api_and_the_page_list_the_same_triggers_of_a_review(api_client_for, client_for, owner, live):
    """The review's ``trigger`` names what opened it; ``triggers`` are the later ones, as the
    page's "…; then …" (the API listed the opening trigger again, the page did not)."""
    from monitoring.oversight.incidents import incident_open
    from monitoring.oversight.models import PeriodicReview
    from registry.services.audit import CLI

    def both(review):
        answer = api_client_for(owner).get(f"{API}/models/churn/reviews/").json()
        row = next(r for r in answer.get("results", answer) if r["id"] == review.pk)
        html = client_for(owner).get(review.get_absolute_url()).content.decode()
        shown = re.search(r"<dt>Trigger</dt><dd>(.*?)</dd>", html).group(1)
        return row["trigger"], row["triggers"], re.sub(r" \(<a .*?\)", "", shown)  # kinds, not their links

    def incident(summary):
        now = timezone.now()
        incident_open(model=live, actor=owner, severity="serious", aware_at=now, summary=summary, context=CLI)

    incident("One")
    incident("Two")
    review = PeriodicReview.objects.get(model=live)
    assert both(review) == ("incident", ["incident"], "New incident; then new incident")
    PeriodicReview.objects.filter(pk=review.pk).update(status="completed")
    manual = api_client_for(owner).post(f"{API}/models/churn/reviews/", {"reason": "Quarterly"}, format="json")
    manual = PeriodicReview.objects.get(pk=manual.json()["id"])
    assert both(manual) == ("manual", [], "Requested")
    incident("Three")
    assert both(manual) == ("manual", ["incident"], "Requested; then new incident")


@pytest.mark.parametrize(
    "due_at,reason",
    [
        ("9999-12-31T23:59:59Z", "Must be in the year 9000 or earlier."),
        ("9001-01-01T00:00:00+00:00", "Must be in the year 9000 or earlier."),
        ("2001-01-01T00:00:00Z", "Must be in the future."),
    ],
)
def test_a_due_date_out_of_range_says_which_limit_it_breaks(api_client_for, owner, reviewer, live, due_at, reason):
    review = api_client_for(owner).post(
        f"{API}/models/churn/reviews/", {"reason": "Quarterly", "due_at": due_at}, format="json"
    )
    assert review.status_code == 400 and review.json()["error"]["details"]["due_at"] == [reason]
    body = {"severity": "high", "description": "Calibration drifts", "owner": "owner", "due_at": due_at}
    finding = api_client_for(reviewer).post(f"{API}/models/churn/findings/", body, format="json")
    assert finding.status_code == 400 and finding.json()["error"]["details"]["due_at"] == [reason]
