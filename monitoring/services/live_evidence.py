"""Live evidence of a challenger: pairing its shadow predictions with production's by id.

Shadow traffic is the ordinary predictions upload to a non-production version, with the
prediction ids production also scored. Nothing else changes in ingestion: when a window of a
non-production version is computed, its pairs with the current production version are
reduced to mergeable counts (``monitoring.pairing``) and stored in ``PairedCounts`` (one row
per hourly window, replaced on recomputation, so late labels never double count). When
production scores ids that a candidate already scored (production's batch arrives second),
``pairs_mark_dirty`` marks the candidate's windows of those ids dirty, from the same upload
transaction.

When a candidate's day is computed, ``live_evidence_refresh`` sums its stored counts of the
``LIVE_EVIDENCE_DAYS`` days up to its latest paired hour against the current production version and writes the
evidence on each of its pending promotion requests (``PromotionRequest.live_evidence``,
``live_evidence_at``), where the promotion gate and the request page read it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models.functions import TruncHour

from mlops_portal import clock
from monitoring import pairing
from monitoring.choices import Granularity
from monitoring.models import PairedCounts, Prediction
from monitoring.performance import _label_strings, positive_label
from monitoring.selectors.pairs import paired_predictions
from registry.choices import PromotionStatus, Stage
from registry.models import ModelVersion, PromotionRequest
from registry.services.audit import WORKER, AuditContext, audit_record

MARK_CHUNK = 10_000


def evidence_days() -> int:
    return int(getattr(settings, "LIVE_EVIDENCE_DAYS", 14))


def _production(version: ModelVersion) -> ModelVersion | None:
    if version.stage == Stage.PRODUCTION:
        return None
    return ModelVersion.objects.filter(model_id=version.model_id, stage=Stage.PRODUCTION).first()


def _raw_pairs(
    version: ModelVersion, production: ModelVersion, start: datetime, end: datetime, labels: dict
) -> list[tuple]:
    """(prediction, score, production's prediction, production's score, label or None) of the
    version's predictions in [start, end) that production also made (by prediction id)."""
    return [(*row[:4], labels.get(row[4])) for row in paired_predictions(version, production, start, end)]


def _positive(values: list, pos: str) -> np.ndarray:
    strings = _label_strings(["" if v is None else v for v in values])
    return np.array([np.nan if v is None else float(s == pos) for v, s in zip(values, strings, strict=True)])


def _floats(values: list) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[i] = float(v)
    return out


def pairs_payload(version: ModelVersion, start: datetime, end: datetime, labels: dict) -> tuple[int, dict] | None:
    """(production version id, payload) of one window's pairs, or None (no production to
    pair with, or the version is production); ``labels``: prediction id → label of the window."""
    production = _production(version)
    if production is None or version.task_type not in ("binary", "regression"):
        return None
    rows = _raw_pairs(version, production, start, end, labels)
    if not rows:
        return production.pk, {}
    cand, cscore, prod, pscore, label = (list(c) for c in zip(*rows, strict=True))
    if version.task_type == "regression":
        return production.pk, pairing.regression_payload(_floats(cand), _floats(prod), _floats(label))
    seen = _label_strings([v for v in cand + prod + label if v is not None])
    pos = version.positive_class or positive_label(seen)
    payload = pairing.binary_payload(
        _positive(cand, pos), _positive(prod, pos), _floats(cscore), _floats(pscore), _positive(label, pos)
    )
    return production.pk, {**payload, "positive_label": pos}


# --------------------------------------------------------------------------- window hooks


def window_reads(version: ModelVersion, granularity: str, start: datetime, end: datetime, labels: dict | None) -> Any:
    """What the window computation reads for pairing before its transaction (hours only), with
    the hour's labels (prediction id → label) that it has read already (None for a day)."""
    if granularity != Granularity.HOURLY:
        return None
    return pairs_payload(version, start, end, labels)


def window_store(version: ModelVersion, granularity: str, start: datetime, reads: Any, *, now=None) -> None:
    """Inside the window's transaction: store (or clear) the hour's pairs; a day refreshes
    the evidence on the version's pending requests."""
    now = now or clock.now()
    if granularity != Granularity.HOURLY:
        live_evidence_refresh(version=version, now=now)
        return
    if reads is None or not reads[1]:
        PairedCounts.objects.filter(version=version, window_start=start).delete()
        return
    baseline_id, payload = reads
    PairedCounts.objects.update_or_create(
        version=version,
        window_start=start,
        defaults={
            "baseline_id": baseline_id,
            "pairs": payload["pairs"],
            "labelled": payload["labelled"],
            "payload": payload,
            "computed_at": now,
        },
    )


def pairs_mark_dirty(*, version: ModelVersion, ids: list[str]) -> int:
    """Production scored ``ids``: mark the windows of other versions that scored them too
    (their pairs change). Call inside the ingesting transaction."""
    from .windows import windows_mark_dirty

    if version.stage != Stage.PRODUCTION or not ids:
        return 0
    others = list(
        ModelVersion.objects.filter(model_id=version.model_id).exclude(pk=version.pk).values_list("pk", flat=True)
    )
    if not others or not Prediction.objects.filter(version_id__in=others).exists():
        return 0
    marked = 0
    hours: dict[int, set] = {}
    for i in range(0, len(ids), MARK_CHUNK):  # bounded IN lists on the (version, prediction_id) index
        hits = (
            Prediction.objects.filter(version_id__in=others, prediction_id__in=ids[i : i + MARK_CHUNK])
            .annotate(h=TruncHour("timestamp"))
            .values_list("version_id", "h")
            .distinct()
        )
        for version_id, hour in hits:
            hours.setdefault(version_id, set()).add(hour)
    for version_id, hs in hours.items():
        marked += windows_mark_dirty(version_id=version_id, hours=hs, slices=())  # pairs: per hour
    return marked


# --------------------------------------------------------------------------- evidence


def live_evidence_compute(*, version: ModelVersion, now=None) -> dict[str, Any]:
    """The version's live evidence over the ``LIVE_EVIDENCE_DAYS`` days that end with its
    latest paired window (no writes)."""
    now = now or clock.now()
    production = _production(version)
    if production is None:
        return {}
    paired = PairedCounts.objects.filter(version=version, baseline=production)
    latest = paired.order_by("-window_start").values_list("window_start", flat=True).first()
    since = (latest or now) - timedelta(days=evidence_days()) + timedelta(hours=1)
    rows = paired.filter(window_start__gte=since).order_by("window_start")
    payloads = [r.payload for r in rows]
    out = pairing.evidence(pairing.payload_merge(payloads))
    first = rows.first()
    last = rows.last()
    out.update(
        {
            "candidate_version": version.version,
            "production_version": production.version,
            "window_start": first.window_start.isoformat() if first else None,
            "window_end": (last.window_start + timedelta(hours=1)).isoformat() if last else None,
            "days": evidence_days(),
            "computed_at": now.isoformat(),
        }
    )
    return out


def live_evidence_refresh(*, version: ModelVersion, now=None, context: AuditContext = WORKER) -> int:
    """Write the evidence on the version's pending promotion requests (call inside the
    window's transaction); returns how many. A change in the number of pairs or labelled
    pairs is audited (``promotion.live_evidence``), not every recomputation."""
    requests = list(
        PromotionRequest.objects.select_for_update().filter(version=version, status=PromotionStatus.PENDING)
    )
    if not requests:
        return 0
    now = now or clock.now()
    evidence = live_evidence_compute(version=version, now=now)
    counts = {"pairs": evidence.get("pairs", 0), "labelled_pairs": evidence.get("labelled_pairs", 0)}
    for request in requests:
        before = {k: (request.live_evidence or {}).get(k, 0) for k in counts}
        request.live_evidence, request.live_evidence_at = evidence, now
        request.save(update_fields=["live_evidence", "live_evidence_at"])
        if before != counts:
            audit_record(
                actor=None,
                action="promotion.live_evidence",
                context=context,
                obj=request,
                model=version.model,
                before=before,
                after=counts,
            )
    return len(requests)
