"""LLM request records under retention: an LLM application is a model, so its ``raw_days`` and
legal hold apply to its request records. The nightly purge deletes expired records by range (a
day per transaction, in batches) with a receipt per day in the audit chain, on both databases;
the aggregates (LLM windows, daily cost records) stay and the pages show the same figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.demo_llm_requests import load_llm_requests
from monitoring.models import CostRecord, LLMRequest, MetricValue
from monitoring.services import partitions, retention
from monitoring.services.llm_requests import llm_requests_ingest
from monitoring.services.raw_digests import ids_digest
from monitoring.services.retention import retention_policy_update, retention_purge
from registry.choices import Stage
from registry.models import AuditEvent, StageTransition
from registry.services.audit import CLI, audit_export_rows, audit_verify
from tests.monitoring.llm_helpers import NOW, as_json, llm_model, llm_version, request_record
from tests.monitoring.test_retention_pages import _pages

pytestmark = pytest.mark.django_db
TABLE = "monitoring_llmrequest"
DAY = timedelta(days=1)
CUTOFF = partitions.day_floor(NOW) - 5 * DAY  # with raw_days=5, purging at NOW


def _send(version, stamps, prefix="q"):
    records = [request_record(i, request_id=f"{prefix}{i}", timestamp=t.isoformat()) for i, t in enumerate(stamps)]
    llm_requests_ingest(
        version=version, body=as_json(records), content_type="application/json", actor=version.model.owner, context=CLI
    )
    return [r["request_id"] for r in records]


def _set(model, actor, **changes):
    return retention_policy_update(model=model, actor=actor, context=CLI, changes=changes)


def _receipts(since: int):
    events = AuditEvent.objects.filter(action="retention.purged", seq__gt=since).order_by("seq")
    return [e.after for e in events if e.after["table"] == TABLE]


def test_requests_older_than_raw_days_go_by_day_with_receipts_and_newer_ones_stay(
    assistant, assistant_v1, admin_user, last_seq, monkeypatch
):
    monkeypatch.setattr(retention, "LLM_PURGE_BATCH", 2)  # several batches a day
    v2 = llm_version(assistant)
    old_day = _send(assistant_v1, [CUTOFF - 3 * DAY + timedelta(hours=h) for h in (1, 2, 3)], prefix="a")
    before = _send(assistant_v1, [CUTOFF - timedelta(hours=h) for h in (3, 2, 1)], prefix="b")
    before_v2 = _send(v2, [CUTOFF - timedelta(minutes=30)], prefix="c")
    kept = _send(assistant_v1, [CUTOFF, CUTOFF + timedelta(hours=1), CUTOFF + 2 * DAY], prefix="d")
    _set(assistant, admin_user, raw_days=5)
    seq = last_seq()
    returned = retention_purge(now=NOW)
    assert sorted(LLMRequest.objects.values_list("request_id", flat=True)) == sorted(kept)
    receipts = _receipts(seq)
    assert [{"model": "assistant", **r} for r in receipts] == [r for r in returned if r["table"] == TABLE]
    assert [(r["from"], r["to"], r["rows"], r["method"]) for r in receipts] == [
        ((CUTOFF - 3 * DAY).isoformat(), (CUTOFF - 2 * DAY).isoformat(), 3, "range_delete"),
        ((CUTOFF - DAY).isoformat(), CUTOFF.isoformat(), 4, "range_delete"),
    ]
    assert receipts[0]["ids_sha256"] == {str(assistant_v1.pk): {"rows": 3, "sha256": ids_digest(old_day)}}
    assert receipts[1]["ids_sha256"] == {
        str(assistant_v1.pk): {"rows": 3, "sha256": ids_digest(before)},
        str(v2.pk): {"rows": 1, "sha256": ids_digest(before_v2)},
    }
    assert audit_verify().ok
    # idempotent: purging again later the same day (the cutoff has not moved) deletes nothing more
    assert retention_purge(now=partitions.day_floor(NOW) + DAY - timedelta(seconds=1)) == []


def test_a_legal_hold_keeps_the_requests(assistant, assistant_v1, admin_user, last_seq):
    _send(assistant_v1, [CUTOFF - DAY, CUTOFF - 2 * DAY])
    _set(assistant, admin_user, raw_days=5, legal_hold=True, legal_hold_reason="Claim", legal_hold_article="Art. 17")
    seq = last_seq()
    assert retention_purge(now=NOW) == []
    assert LLMRequest.objects.count() == 2 and _receipts(seq) == []
    _set(assistant, admin_user, legal_hold=False)
    assert [r["rows"] for r in retention_purge(now=NOW) if r["table"] == TABLE] == [1, 1]
    assert not LLMRequest.objects.exists()


def test_each_model_keeps_its_requests_for_its_own_days(assistant, assistant_v1, owner, team, admin_user):
    other = llm_version(llm_model(owner, team, name="summarizer"))
    _send(assistant_v1, [CUTOFF - DAY])
    _send(other, [CUTOFF - DAY])
    _set(assistant, admin_user, raw_days=5)
    _set(other.model, admin_user, raw_days=30)
    retention_purge(now=NOW)
    assert list(LLMRequest.objects.values_list("version", flat=True)) == [other.pk]


def test_the_request_receipt_verifies_in_an_offline_export(assistant, assistant_v1, admin_user, tmp_path):
    import subprocess
    import sys

    _send(assistant_v1, [CUTOFF - DAY])
    _set(assistant, admin_user, raw_days=5)
    assert retention_purge(now=NOW)
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(audit_export_rows(fmt="jsonl")))
    assert TABLE in path.read_text()
    result = subprocess.run([sys.executable, "-m", "registry.verify_export", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_llm_pages_show_the_same_figures_after_a_purge(stopped_clock, owner, team, admin_user, client_for):
    model = llm_model(owner, team, name="support-assistant")
    v1 = llm_version(model, stage=Stage.PRODUCTION)
    StageTransition.objects.create(
        model=model, version=v1, from_stage=Stage.NONE, to_stage=Stage.PRODUCTION, actor=owner, reason="first"
    )
    StageTransition.objects.filter(version=v1).update(created_at=timezone.now() - timedelta(days=60))
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    load_llm_requests(model, days=10, today=now.date())
    _set(model, admin_user, raw_days=5)

    def figures():
        metrics = MetricValue.objects.values_list("version_id", "granularity", "window_start", "metric", "value")
        costs = CostRecord.objects.values_list("version_id", "period_start", "amount", "currency", "details")
        return sorted(metrics), sorted(costs, key=str)

    client = client_for(admin_user)
    before, stored = _pages(client, model.name, now), figures()
    total = LLMRequest.objects.count()
    receipts = [r for r in retention_purge(now=now) if r["table"] == TABLE]
    assert receipts and 0 < LLMRequest.objects.count() < total
    assert sum(r["rows"] for r in receipts) == total - LLMRequest.objects.count()
    assert figures() == stored
    after = _pages(client, model.name, now)
    for url, html in before.items():
        assert after[url] == html, url
