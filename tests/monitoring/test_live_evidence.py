"""Shadow traffic through the ordinary predictions upload: pairs by id, stored per window,
late labels counted once, the evidence on the promotion request, the gate and who sees it."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.utils import timezone
from sklearn import metrics as skm

from monitoring.models import PairedCounts
from monitoring.services.ingestion import labels_ingest, reference_upload
from registry.choices import Stage
from registry.models import PromotionPolicy, PromotionRequest
from registry.selectors.promotions import promotion_gates
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.factories import ModelVersionFactory
from tests.monitoring.helpers import T0, as_json, csv_bytes, ingest_predictions, reference_frame

pytestmark = pytest.mark.django_db


def scored(n: int, seed: int, noise: float, prefix: str = "id"):
    """Records of one version for ids id0…; the same seed gives the same inputs and labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * x))).astype(int)
    noise_rng = np.random.default_rng(seed + int(noise * 1000) + 1)
    score = 1 / (1 + np.exp(-(1.5 * x + noise_rng.normal(0, noise, n))))
    records = [
        {
            "prediction_id": f"{prefix}{i}",
            "timestamp": (T0 + timezone.timedelta(seconds=int(i * 3600 * 3 / n))).isoformat(),
            "features": {"age": 40.0 + 10 * float(x[i]), "income": 20000.0, "plan": "basic"},
            "prediction": int(score[i] >= 0.5),
            "score": float(score[i]),
        }
        for i in range(n)
    ]
    return records, y, score


def send(version, owner, records, capture):
    with capture(execute=True):
        return ingest_predictions(version, records, owner)


def label(model, owner, records, y, capture):
    body = as_json([{"prediction_id": r["prediction_id"], "label": int(v)} for r, v in zip(records, y, strict=True)])
    with capture(execute=True):
        labels_ingest(model=model, body=body, content_type="application/json", actor=owner, context=CLI)


def labelled_shadow_traffic(prod, cand, owner, capture, *, seed: int):
    """400 predictions of production, the challenger's shadow answers on the same inputs, all labelled."""
    prod_records, y, _ = scored(400, seed=seed, noise=1.0)
    cand_records, _, _ = scored(400, seed=seed, noise=0.5)
    send(prod, owner, prod_records, capture)
    send(cand, owner, cand_records, capture)
    label(cand.model, owner, prod_records, y, capture)


@pytest.fixture
def champion_and_challenger(churn, owner, django_capture_on_commit_callbacks):
    churn.description = churn.intended_use = churn.limitations = "filled"
    churn.save()
    prod = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    cand = ModelVersionFactory(model=churn, stage=Stage.STAGING)
    for version in (prod, cand):
        with django_capture_on_commit_callbacks(execute=True):
            reference_upload(
                version=version, body=csv_bytes(reference_frame(500)), content_type="text/csv", actor=owner, context=CLI
            )
    PromotionPolicy.objects.update_or_create(
        risk_tier=churn.risk_tier,
        defaults={"require_live_not_worse": True, "live_tolerance": 0.0, "live_min_labelled_pairs": 300},
    )
    request = promotion_request(
        version=cand, target_stage=Stage.PRODUCTION, requester=owner, justification="shadow", context=CLI
    )
    return prod, cand, request


def test_shadow_pairs_are_counted_per_window_and_late_labels_do_not_double_count(
    champion_and_challenger, owner, django_capture_on_commit_callbacks
):
    prod, cand, request = champion_and_challenger
    capture = django_capture_on_commit_callbacks
    prod_records, y, prod_score = scored(600, seed=1, noise=1.5)
    cand_records, _, cand_score = scored(600, seed=1, noise=0.3)
    send(cand, owner, cand_records[:400], capture)  # shadow first, production second: pairs still form
    send(prod, owner, prod_records, capture)
    send(cand, owner, cand_records[400:], capture)
    rows = PairedCounts.objects.filter(version=cand)
    assert [(r.pairs, r.labelled) for r in rows] == [(200, 0)] * 3
    label(cand.model, owner, prod_records[:350], y[:350], capture)
    label(cand.model, owner, prod_records[:350], y[:350], capture)  # resent: replaces, never adds
    assert sum(r.labelled for r in PairedCounts.objects.filter(version=cand)) == 350
    request.refresh_from_db()
    ev = request.live_evidence
    assert ev["pairs"] == 600 and ev["labelled_pairs"] == 350
    cp, pp = (cand_score >= 0.5).astype(int), (prod_score >= 0.5).astype(int)
    assert ev["agreement"] == pytest.approx((cp == pp).mean())
    assert ev["score_correlation"] == pytest.approx(np.corrcoef(cand_score, prod_score)[0, 1], abs=1e-9)
    auc = ev["metrics"]["roc_auc"]
    assert auc["candidate"] == pytest.approx(skm.roc_auc_score(y[:350], cand_score[:350]), abs=0.002)
    assert auc["production"] == pytest.approx(skm.roc_auc_score(y[:350], prod_score[:350]), abs=0.002)
    assert ev["metrics"]["accuracy"]["candidate"] == pytest.approx(skm.accuracy_score(y[:350], cp[:350]))
    gate = next(g for g in promotion_gates(request) if g["key"] == "live")
    assert gate["status"] == "pass", gate


def test_the_gate_waits_for_enough_pairs_and_blocks_a_worse_challenger(
    champion_and_challenger, owner, django_capture_on_commit_callbacks
):
    prod, cand, request = champion_and_challenger
    capture = django_capture_on_commit_callbacks
    prod_records, y, _ = scored(600, seed=2, noise=0.3)
    cand_records, _, _ = scored(600, seed=2, noise=2.5)  # a much noisier challenger
    send(prod, owner, prod_records, capture)
    send(cand, owner, cand_records, capture)
    label(cand.model, owner, prod_records[:100], y[:100], capture)
    request.refresh_from_db()
    gate = next(g for g in promotion_gates(request) if g["key"] == "live")
    assert gate["status"] == "fail" and gate.get("waiting") and "100 of 300" in gate["detail"]
    label(cand.model, owner, prod_records, y, capture)
    request.refresh_from_db()
    gate = next(g for g in promotion_gates(request) if g["key"] == "live")
    assert gate["status"] == "fail" and not gate.get("waiting") and "worse by" in gate["detail"]


def test_the_request_api_carries_the_live_evidence_and_an_outsider_sees_nothing(
    champion_and_challenger, owner, outsider, api_client_for, audit_actions, django_capture_on_commit_callbacks
):
    prod, cand, request = champion_and_challenger
    labelled_shadow_traffic(prod, cand, owner, django_capture_on_commit_callbacks, seed=3)
    body = api_client_for(owner).get(f"/api/v1/promotions/{request.pk}/").json()
    ev = body["live_evidence"]
    assert ev["pairs"] == 400 and ev["labelled_pairs"] == 400
    for row in ev["metrics"].values():
        assert {"candidate", "production", "difference"} <= set(row)
    assert api_client_for(outsider).get(f"/api/v1/promotions/{request.pk}/").status_code == 404
    assert PromotionRequest.objects.get(pk=request.pk).live_evidence_at is not None
    assert "promotion.live_evidence" in audit_actions(0)


def test_the_request_page_shows_live_evidence_and_drift_on_recent_traffic(
    champion_and_challenger, owner, outsider, client_for, django_capture_on_commit_callbacks
):
    prod, cand, request = champion_and_challenger
    labelled_shadow_traffic(prod, cand, owner, django_capture_on_commit_callbacks, seed=6)
    page = client_for(owner).get(request.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200 and "data-live-evidence" in html
    assert "<dd data-pairs>400</dd>" in html and "<dd data-labelled-pairs>400</dd>" in html
    # the pairs' window in the pages' one format, not ISO text (2026-11-23T06:00)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC to \d{4}-\d\d-\d\d \d\d:\d\d UTC", html)
    assert not re.search(r"\dT\d\d:\d\d", html.split("data-live-evidence", 1)[1].split("</p>", 1)[0])
    assert 'data-metric="roc_auc"' in html and "McNemar" in html
    assert "Drift on recent traffic" in html and "data-recent-drift" in html
    # the test traffic's ages are narrower than the reference's: production's recent counts drift
    assert ">age</td>" in html
    assert client_for(outsider).get(request.get_absolute_url()).status_code == 404


def test_pairs_find_productions_prediction_on_any_day_and_only_productions(churn):
    """Production's prediction of an id is paired wherever its day is (here two days before the
    candidate's), a third version's prediction of the same id is not production's, and ids
    production never predicted stay unpaired; newest first, with the stored values."""
    from monitoring.models import Prediction
    from monitoring.selectors.pairs import paired_predictions

    prod = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    cand, other = ModelVersionFactory(model=churn), ModelVersionFactory(model=churn)
    records, _, _ = scored(6, seed=3, noise=0.5)
    earlier = [{**r, "timestamp": (T0 - timezone.timedelta(days=2)).isoformat()} for r in records[:4]]
    ingest_predictions(prod, earlier, churn.owner)
    ingest_predictions(cand, records, churn.owner)
    ingest_predictions(other, [{**r, "score": 0.01} for r in records], churn.owner)
    pairs = paired_predictions(cand, prod, T0, T0 + timezone.timedelta(hours=3))
    assert sorted(pid for *_, pid in pairs) == ["id0", "id1", "id2", "id3"]
    for prediction, score, prod_prediction, prod_score, pid in pairs:
        mine = Prediction.objects.get(version=cand, prediction_id=pid)
        theirs = Prediction.objects.get(version=prod, prediction_id=pid)
        assert (prediction, score, prod_prediction, prod_score) == (
            mine.prediction, mine.score, theirs.prediction, theirs.score
        )  # fmt: skip
    times = [Prediction.objects.get(version=cand, prediction_id=pid).timestamp for *_, pid in pairs]
    assert times == sorted(times, reverse=True)


@pytest.mark.postgres
def test_pairs_probe_productions_row_through_the_keys_table_not_every_day(churn):
    """On PostgreSQL production's row is found through its key (version, id) and then read in its
    own day only: the probe of production's rows is pruned at run time to one day per pair (a
    probe through the parent read every day kept: 0.82 s for 10,000 pairs with 127 days)."""
    from mlops_portal.db import fetch_all
    from monitoring.selectors import pairs
    from monitoring.services import partitions

    prod, cand = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION), ModelVersionFactory(model=churn)
    records, _, _ = scored(3, seed=4, noise=0.5)
    for days in range(5):  # production's rows over five days
        shifted = [
            {
                **r,
                "prediction_id": f"{r['prediction_id']}-{days}",
                "timestamp": (T0 - timezone.timedelta(days=days)).isoformat(),
            }
            for r in records
        ]
        ingest_predictions(prod, shifted, churn.owner)
        ingest_predictions(cand, [{**r, "timestamp": records[0]["timestamp"]} for r in shifted], churn.owner)
    sql = pairs._PAIRS_SQL.format(keys=partitions.PREDICTION_KEYS)
    plan = "\n".join(
        row[0]
        for row in fetch_all(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql,
            {"production": prod.pk, "candidate": cand.pk, "start": T0, "end": T0 + timezone.timedelta(hours=3)},
        )
    )
    assert f"{partitions.PREDICTION_KEYS}_pkey" in plan
    probes = [line for line in plan.splitlines() if " on monitoring_prediction_p" in line and " r_" in line]
    loops = [int(m) for line in probes for m in re.findall(r"loops=(\d+)", line)]
    assert len(probes) > 5 and sum(loops) == 15  # one day read per pair: the key's, pruned at run time
    assert len(pairs.paired_predictions(cand, prod, T0, T0 + timezone.timedelta(hours=3))) == 15


def _with_reference(version, owner, capture):
    with capture(execute=True):
        reference_upload(
            version=version, body=csv_bytes(reference_frame(200)), content_type="text/csv", actor=owner, context=CLI
        )


@pytest.mark.parametrize(
    ("profiled", "message"),
    [
        ("production", "v2 (this version) has no ready reference profile; production v1 has no monitored traffic yet."),
        ("candidate", "v1 (production) has no ready reference profile; production v1 has no monitored traffic yet."),
        ("both", "Not computed yet: production v1 has no monitored traffic yet."),
    ],
)
def test_the_drift_message_names_exactly_what_is_missing(
    churn, owner, client_for, django_capture_on_commit_callbacks, profiled, message
):
    prod = ModelVersionFactory(model=churn, version=1, stage=Stage.PRODUCTION)
    cand = ModelVersionFactory(model=churn, version=2, stage=Stage.STAGING)
    for side, version in (("production", prod), ("candidate", cand)):
        if profiled in (side, "both"):
            _with_reference(version, owner, django_capture_on_commit_callbacks)
    request = promotion_request(
        version=cand, target_stage=Stage.PRODUCTION, requester=owner, justification="drift", context=CLI
    )
    html = client_for(owner).get(request.get_absolute_url()).content.decode()
    shown = re.search(r"<p class=\"muted\" data-drift-missing>(.*?)</p>", html, re.S).group(1)
    assert " ".join(shown.split()).endswith(message)
    assert "Needs the reference data" not in html


def test_drift_on_a_version_now_in_production_says_so(champion_and_challenger, owner, client_for):
    prod, cand, request = champion_and_challenger
    prod.stage = Stage.ARCHIVED
    prod.save()
    cand.stage = Stage.PRODUCTION
    cand.save()
    html = client_for(owner).get(request.get_absolute_url()).content.decode()
    assert f"v{cand.version} is now in production: no other version to compare with." in html


def test_the_drift_message_does_not_call_production_without_a_reference_unmonitored_when_it_has_traffic(
    churn, owner, client_for, django_capture_on_commit_callbacks
):
    # the demo's credit-approval request read "…v2 (production) has no ready reference profile;
    # production v2 has no monitored traffic yet." while v2 had a month of predictions
    prod = ModelVersionFactory(model=churn, version=1, stage=Stage.PRODUCTION)
    cand = ModelVersionFactory(model=churn, version=2, stage=Stage.STAGING)
    _with_reference(cand, owner, django_capture_on_commit_callbacks)
    records, _, _ = scored(50, seed=3, noise=1.0)
    send(prod, owner, records, django_capture_on_commit_callbacks)
    request = promotion_request(
        version=cand, target_stage=Stage.PRODUCTION, requester=owner, justification="drift", context=CLI
    )
    html = client_for(owner).get(request.get_absolute_url()).content.decode()
    shown = " ".join(re.search(r"<p class=\"muted\" data-drift-missing>(.*?)</p>", html, re.S).group(1).split())
    assert shown.endswith("Not computed yet: v1 (production) has no ready reference profile."), shown


def test_a_decided_request_without_live_evidence_does_not_ask_for_shadow_traffic(
    champion_and_challenger, owner, client_for
):
    """A cancelled (or decided) request's page still said 'No live evidence yet: send this
    version … shadow traffic', which can no longer count for it."""
    from registry.services.promotions import promotion_cancel

    _, _, request = champion_and_challenger
    pending = client_for(owner).get(request.get_absolute_url()).content.decode()
    assert "No live evidence yet: send this version" in pending
    promotion_cancel(request=request, actor=owner, comment="not now", context=CLI)
    html = client_for(owner).get(request.get_absolute_url()).content.decode()
    assert "No live evidence yet" not in html
    assert "No live evidence was recorded while this request was pending." in html
