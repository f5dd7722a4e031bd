"""Fairness in production: sensitive values kept apart at ingestion, per-group counts per window,
``fairness.*`` metrics, and the health reason when a parity figure crosses its threshold.

* Ingestion (``monitoring.services.ingestion.predictions_ingest``): the sensitive attributes of the
  version's feature schema are taken out of the validated batch (``split_sensitive``), so they
  never enter ``Prediction.features`` (nor drift profiles, exports or the audit log), and are
  stored in ``PredictionSensitive`` (``sensitive_store``).
* Windows (``monitoring.services.windows``): an hourly window recomputes, from its rows, each
  attribute's per-group counts ``[n, predicted positive, tn, fp, fn, tp]`` (the last four from
  labelled rows, labels joined by prediction id: a late or re-sent label replaces, never adds)
  and upserts them (``WindowGroupCounts``); a daily window is the sum of its hours' counts. Both
  give metric rows: selection-rate parity from predictions alone (``fairness.disparate_impact``,
  ``fairness.demographic_parity_difference``, per group ``fairness.selection_rate``), error-rate
  parity from labelled rows (``fairness.equalized_odds_difference``, per group ``fairness.tpr`` /
  ``fairness.fpr``; provisional below the label-coverage threshold). ``MetricValue.feature`` is the
  attribute (``sex``) for summaries and ``attribute=group`` (``sex=F``) for a group. Groups under
  ``FAIRNESS_MIN_GROUP_SIZE`` rows get no rate and take no part in the summaries.
* Health (``fairness_reasons``): disparate impact below, or equalized odds difference above, the
  thresholds of the model's tier policy opens a ``fairness`` warning.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from monitoring import fairness
from monitoring.choices import AlertKind, AlertSeverity, Granularity
from monitoring.models import Prediction
from monitoring.models_fairness import PredictionSensitive, WindowGroupCounts
from monitoring.performance import _label_strings, positive_label
from registry.sensitive import sensitive_attributes

PREFIX = "fairness."
DI, DPD, EOD = (
    PREFIX + "disparate_impact",
    PREFIX + "demographic_parity_difference",
    PREFIX + "equalized_odds_difference",
)
MAE_RATIO = PREFIX + "mae_ratio"
WIDTH = 6  # [n, predicted positive, tn, fp, fn, tp] (regression: [n, labelled, Σ|e|, Σe, 0, 0])


# --------------------------------------------------------------------------- ingestion


def split_sensitive(version, batch) -> dict[str, list]:
    """Take the sensitive attributes out of a validated prediction batch (in place)."""
    out = {}
    for name in sensitive_attributes(version.feature_schema):
        values = batch.categorical.pop(name, None)
        if values is not None:
            out[name] = values
    return out


def sensitive_store(*, version_id: int, batch, sensitive: dict[str, list]) -> int:
    """Store the batch's sensitive values apart (call in the ingesting transaction)."""
    if not sensitive:
        return 0
    stamps = [datetime.fromtimestamp(int(us) / 1e6, tz=UTC) for us in batch.ts_us]
    names = list(sensitive)
    rows = [
        PredictionSensitive(
            version_id=version_id,
            prediction_id=pid,
            timestamp=stamps[i],
            values={name: sensitive[name][i] for name in names},
        )
        for i, pid in enumerate(batch.ids)
    ]
    PredictionSensitive.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


# --------------------------------------------------------------------------- window counts


def _rows_by_slice(version, start: datetime, end: datetime, labels: dict, floor) -> dict[datetime, list[tuple]]:
    """slice start (``floor`` of the time) → (prediction, label or None, sensitive values or
    None) of each prediction in [start, end); ``labels``: prediction id → label of the
    window's labelled predictions."""
    sensitive = PredictionSensitive.objects.filter(version_id=version.pk, prediction_id=OuterRef("prediction_id"))
    rows = (
        Prediction.objects.filter(version=version, timestamp__gte=start, timestamp__lt=end)
        .annotate(groups=Subquery(sensitive.values("values")[:1]))
        .values_list("prediction", "prediction_id", "groups", "timestamp")
    )
    out: dict[datetime, list[tuple]] = defaultdict(list)
    for prediction, pid, groups, ts in rows:
        out[floor(ts)].append((prediction, labels.get(pid), groups))
    return out


def slice_group_counts(version, start: datetime, end: datetime, labels: dict, floor) -> dict[datetime, dict]:
    """slice start → attribute → group → counts (WIDTH) of the predictions in [start, end): the
    additive part of an hour's fairness, kept per slice (``monitoring.services.window_slices``)."""
    attributes = sensitive_attributes(version.feature_schema)
    if not attributes:
        return {}
    task = "regression" if version.task_type == "regression" else "binary"
    by_slice = _rows_by_slice(version, start, end, labels, floor)
    positive = version.positive_class or _positive([row for rows in by_slice.values() for row in rows])
    return {
        start: {a: dict(_group_counts(task, a, rows, positive)) for a in attributes} for start, rows in by_slice.items()
    }


def add_group_counts(into: dict, counts: dict) -> None:
    """Add attribute → group → counts to ``into`` (a dict of defaultdicts of zero arrays)."""
    for attribute, groups in counts.items():
        for group, c in groups.items():
            into[attribute][group] += np.asarray(c, dtype=np.float64)


def zero_group_counts() -> dict[str, dict[str, np.ndarray]]:
    return defaultdict(lambda: defaultdict(lambda: np.zeros(WIDTH)))


# a binary task's negative class names and their positive counterparts: a read whose rows show
# only the negative class still counts it as negative
_POSITIVE_OF = {"0": "1", "false": "true", "False": "True", "no": "yes", "negative": "positive"}


def _positive(rows: list[tuple]) -> str:
    seen = _label_strings([p for p, _, _ in rows if p is not None] + [lab for _, lab, _ in rows if lab is not None])
    positive = positive_label(seen)
    return _POSITIVE_OF.get(positive, positive)


def _group_counts(task: str, attribute: str, rows: list[tuple], positive: str) -> dict[str, np.ndarray]:
    """group → counts (WIDTH) of one attribute over some rows; ``positive``: the binary task's
    positive class, decided once over all the rows read (``_positive``)."""
    out: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(WIDTH))
    if task == "regression":
        for pred, label, groups in rows:
            c = out[_group(groups, attribute)]
            c[0] += 1
            if label is not None and pred is not None:
                err = float(pred) - float(label)
                c[1] += 1
                c[2] += abs(err)
                c[3] += err
        return out
    for pred, label, groups in rows:
        c = out[_group(groups, attribute)]
        c[0] += 1
        yhat = pred is not None and _label_strings([pred])[0] == positive
        c[1] += yhat
        if label is not None and pred is not None:
            y = _label_strings([label])[0] == positive
            c[2 + 2 * y + yhat] += 1
    return out


def _group(groups, attribute: str) -> str:
    value = (groups or {}).get(attribute)
    return "missing" if value is None else str(value)


def _store(version_id: int, granularity: str, start: datetime, counts: dict[str, dict[str, np.ndarray]]) -> None:
    now = timezone.now()
    WindowGroupCounts.objects.filter(version_id=version_id, granularity=granularity, window_start=start).exclude(
        attribute__in=list(counts)
    ).delete()
    WindowGroupCounts.objects.bulk_create(
        [
            WindowGroupCounts(
                version_id=version_id,
                granularity=granularity,
                window_start=start,
                attribute=attribute,
                groups=sorted(groups),
                counts=[[float(v) for v in groups[g]] for g in sorted(groups)],
                computed_at=now,
            )
            for attribute, groups in counts.items()
        ],
        update_conflicts=True,
        unique_fields=["version", "granularity", "window_start", "attribute"],
        update_fields=["groups", "counts", "computed_at"],
    )


def summed_counts(version_id: int, start: datetime, end: datetime, granularity: str = Granularity.HOURLY):
    """attribute → group → summed counts of the stored windows in [start, end) (a day = its 24 hours)."""
    out = zero_group_counts()
    rows = WindowGroupCounts.objects.filter(
        version_id=version_id, granularity=granularity, window_start__gte=start, window_start__lt=end
    ).values_list("attribute", "groups", "counts")
    for attribute, groups, counts in rows:
        add_group_counts(out, {attribute: dict(zip(groups, counts, strict=True))})
    return out


def window_fairness_rows(
    version, start: datetime, end: datetime, granularity: str, coverage_threshold: float, *, hour_counts: dict | None
):
    """The window's ``fairness.*`` metric rows; an hourly window stores its group counts first
    (``hour_counts``: attribute → group → counts, summed from its slices); a day sums its hours'."""
    attributes = sensitive_attributes(version.feature_schema)
    if not attributes:
        return []
    task = "regression" if version.task_type == "regression" else "binary"
    if granularity == Granularity.HOURLY:
        counts = {a: hour_counts[a] for a in attributes if hour_counts and hour_counts.get(a)}
        _store(version.pk, Granularity.HOURLY, start, counts)
    else:
        counts = summed_counts(version.pk, start, end)
    out = []
    for attribute, groups in counts.items():
        out += metric_rows(task, attribute, groups, coverage_threshold)
    return out


def metric_rows(task: str, attribute: str, groups: dict[str, np.ndarray], coverage_threshold: float) -> list[dict]:
    """Metric rows of one attribute from its summed group counts (the formulas of monitoring.fairness)."""
    names = sorted(groups)
    c = np.array([groups[g] for g in names]).reshape(len(names), WIDTH)
    minimum = settings.FAIRNESS_MIN_GROUP_SIZE
    rows = []

    def add(metric, value, feature=attribute, provisional=False):
        value = float(value)
        if np.isfinite(value):
            rows.append({"feature": feature, "metric": PREFIX + metric, "value": value, "provisional": provisional})

    if task == "regression":
        sums = np.stack([c[:, 1], c[:, 2], c[:, 3]], axis=-1)  # over labelled rows
        keep = sums[:, 0] >= minimum
        summary = fairness.regression_summaries(sums, keep)
        mae = fairness.regression_rates(sums)["mae"]
        add("mae_ratio", summary["mae_ratio"])
        for i in np.flatnonzero(keep):
            add("mae", mae[i], f"{attribute}={names[i]}")
        return rows
    n, selected, confusion = c[:, 0], c[:, 1], c[:, 2:6]
    keep = n >= minimum
    selection = fairness.safe_div(selected, n)  # P(ŷ = 1 | A = g), from predictions alone
    high, low = fairness.spread(selection, keep)
    add("disparate_impact", fairness.safe_div(low, high))  # lowest selection rate / highest
    add("demographic_parity_difference", high - low)  # highest − lowest
    for i in np.flatnonzero(keep):
        add("selection_rate", selection[i], f"{attribute}={names[i]}")
    labelled = confusion.sum(axis=1)
    provisional = labelled.sum() < coverage_threshold * n.sum()
    keep_labelled = labelled >= minimum
    if keep_labelled.sum() >= 2:
        eo = fairness.classification_summaries(confusion, keep_labelled)
        add("equalized_odds_difference", eo["equalized_odds_difference"], provisional=provisional)
        rates = fairness.group_rates(confusion)
        for i in np.flatnonzero(keep_labelled):
            add("tpr", rates["tpr"][i], f"{attribute}={names[i]}", provisional)
            add("fpr", rates["fpr"][i], f"{attribute}={names[i]}", provisional)
    return rows


# --------------------------------------------------------------------------- scorecard

BIAS_RULE = (
    "High-risk ML models: the production version had a computed fairness evaluation before going live "
    "(only high-risk ML models are counted; group parity does not apply to LLM applications)."
)


def bias_examined_before_production():
    """Scorecard annotation (on models annotated with ``production_version_id`` and
    ``production_since``): a computed fairness evaluation of the production version, uploaded
    before it went to production."""
    from django.db.models import Exists

    from registry.choices import EvaluationKind, EvaluationStatus
    from registry.models import EvaluationRun

    return Exists(
        EvaluationRun.objects.filter(
            version_id=OuterRef("production_version_id"),
            kind=EvaluationKind.FAIRNESS,
            status=EvaluationStatus.DONE,
            created_at__lte=OuterRef("production_since"),
        )
    )


# --------------------------------------------------------------------------- health


def beside(value: float, limit: float) -> str:
    """``value`` with as many decimals as it takes not to read as ``limit`` (0.797 beside 0.80,
    not 0.80): a breach must never print as the threshold it breaches."""
    for places in (2, 3, 4):
        shown = f"{value:.{places}f}"
        if float(shown) != round(limit, places):
            return shown
    return f"{value:.6g}"


def fairness_reasons(window) -> tuple[frozenset[str], list[dict]]:
    """A parity figure of the latest window across the tier policy's threshold → a warning.
    Judged per sensitive attribute, when the window has a final parity figure for it (none while
    its groups are too small to compare, nor while error rates are provisional); returns (judged:
    the kind and ``fairness:<attribute>`` for each attribute judged, reasons)."""
    from registry.selectors.promotions import policy_for_tier

    final = ((k, v) for k, (v, provisional) in window.values.items() if v is not None and not provisional)
    figures = sorted((k, v) for k, v in final if k[1] in (DI, EOD))
    if not figures:
        return frozenset(), []
    policy = policy_for_tier(window.model.risk_tier)
    reasons = []
    for (feature, metric), value in figures:
        if metric == DI and value < policy.fairness_min_disparate_impact:
            limit, what, side = policy.fairness_min_disparate_impact, "Disparate impact", "below the policy's minimum"
        elif metric == EOD and value > policy.fairness_max_equalized_odds_difference:
            limit = policy.fairness_max_equalized_odds_difference
            what, side = "Equalized odds difference", "above the policy's maximum"
        else:
            continue
        reasons.append(
            {
                "kind": AlertKind.FAIRNESS,
                "severity": AlertSeverity.WARNING,
                "message": f"{what} for {feature} is {beside(value, limit)} in production, {side} of {limit:.2f}.",
                "metric": metric,
                "attribute": feature,
                "value": value,
            }
        )
    judged = {AlertKind.FAIRNESS, *(f"{AlertKind.FAIRNESS}:{feature}" for (feature, _), _ in figures)}
    return frozenset(judged), reasons
