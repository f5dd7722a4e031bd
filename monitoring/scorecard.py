"""Governance scorecard: the organisation's MLOps maturity computed from evidence.

For every production model the user may see, eight criteria are checked against the
records (never a self-assessment):

1. **owner** — an active owner and a team are on record.
2. **model card** — description, intended use and limitations are filled in
   (``RegisteredModel.model_card_complete``).
3. **independent approval** — the production version got there through an applied
   promotion request to production with an *approving* review by someone other than
   the requester.
4. **monitoring** — monitoring is configured and a window was computed in the last
   ``REPORTING_HOURS`` hours. An ML model is configured once its owner saved its monitoring
   config (drift and performance need thresholds chosen for its features); an LLM application
   has no features to choose thresholds for: its request records are checked against the LLM
   thresholds, whose defaults apply until changed, so it is configured once it has a saved config
   or a computed window.
5. **retrain cadence** — ML models (an LLM application is not trained): a cadence is set and the
   production version is younger than it.
6. **rollback target** — an earlier version has been in production (something to roll back to).
7. **alerts acknowledged** — every alert of the last 90 days was acknowledged within the
   configured time (``SCORECARD_ACK_HOURS``, default 24 h), or resolved before it.
8. **bias examined** — high-risk ML models: the production version had a computed fairness
   evaluation before it went to production (group parity is not examined for LLM applications;
   the promotion's fairness gate does not apply to them either).

A criterion counts only the models it applies to (``Criterion.applies``): "4 of 5 pass" for a
high-risk criterion would count low-risk models as passes. A criterion that applies to no
production model holds no maturity level back.

The shares map onto a seven-level maturity scale (``LEVELS``); each level's rule is
shown on the page. All figures come from a fixed number of queries.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Subquery
from django.utils import timezone

from registry.choices import Decision, PromotionStatus, RiskTier, Stage
from registry.models import ModelVersion, PromotionRequest, RegisteredModel, Review, StageTransition

from .choices import Metric
from .fairness_monitoring import BIAS_RULE, bias_examined_before_production
from .models import Alert, MetricValue, MonitoringConfig

REPORTING_HOURS = 48
ALERT_LOOKBACK_DAYS = 90
DEFAULT_ACK_HOURS = 24


def ack_hours_default() -> int:
    return int(getattr(settings, "SCORECARD_ACK_HOURS", DEFAULT_ACK_HOURS))


def _every_model(m: RegisteredModel) -> bool:
    return True


def _trained(m: RegisteredModel) -> bool:
    return not m.is_llm_app


def _high_risk_trained(m: RegisteredModel) -> bool:
    return m.risk_tier == RiskTier.HIGH and not m.is_llm_app


@dataclasses.dataclass(frozen=True)
class Criterion:
    """One criterion; ``applies`` says which production models it counts, ``scope`` names them."""

    key: str
    title: str
    rule: str
    scope: str = "production models"
    applies: Callable[[RegisteredModel], bool] = _every_model


CRITERIA = [
    Criterion("owner", "Owner on record", "An active owner and an owning team."),
    Criterion("model_card", "Complete model card", "Description, intended use and limitations filled in."),
    Criterion(
        "independent_approval",
        "Independent approval",
        "The production version was applied by a promotion request approved by a reviewer other than the requester.",
    ),
    Criterion(
        "monitoring",
        "Monitoring configured and reporting",
        f"Monitoring configured, and a window computed in the last {REPORTING_HOURS} hours. "
        "An LLM application's request records are checked against the default LLM thresholds until "
        "they are changed: it counts as configured once a window of them is computed.",
    ),
    Criterion(
        "retrain_cadence",
        "Retrain cadence met",
        "ML models: a retrain cadence is set and the production version is younger than it "
        "(an LLM application is not trained).",
        scope="ML models in production",
        applies=_trained,
    ),
    Criterion("rollback_target", "Rollback target", "An earlier version has been in production."),
    Criterion(
        "alerts_acknowledged",
        "Alerts acknowledged in time",
        f"Every alert of the last {ALERT_LOOKBACK_DAYS} days acknowledged within the configured time "
        "(or resolved before it).",
    ),
    # EU AI Act Art. 10(2)(f): high-risk ML models only; monitoring/fairness_monitoring.py
    Criterion(
        "bias_examined",
        "Bias examined before production",
        BIAS_RULE,
        scope="high-risk ML models in production",
        applies=_high_risk_trained,
    ),
]
CRITERIA_BY_KEY = {c.key: c for c in CRITERIA}


@dataclasses.dataclass(frozen=True)
class Level:
    number: int
    name: str
    rule: str
    test: Callable[[dict[str, float]], bool]


def _all(shares: dict[str, float], keys, at_least: float) -> bool:
    """Every criterion of ``keys`` met by ``at_least`` of its models; one that applies to no
    model (absent from ``shares``) is no obstacle."""
    return all(shares.get(k, 1.0) >= at_least for k in keys)


BASICS = ("owner", "model_card")
LEVELS = [
    Level(
        1,
        "initial",
        "The starting point: fewer than half of production models have an owner and a model card.",
        lambda s: True,
    ),
    Level(
        2,
        "developing",
        "At least 50% of production models have an owner on record and a complete model card.",
        lambda s: _all(s, BASICS, 0.5),
    ),
    Level(
        3,
        "defined",
        "At least 80% have an owner and a model card, and at least 80% an independent approval on record.",
        lambda s: _all(s, (*BASICS, "independent_approval"), 0.8),
    ),
    Level(
        4,
        "managed",
        "Defined, and at least 80% are monitored (configured and reporting).",
        lambda s: _all(s, (*BASICS, "independent_approval", "monitoring"), 0.8),
    ),
    Level(
        5,
        "optimized",
        "Managed, and at least 80% meet their retrain cadence, have a rollback target "
        "and had their alerts acknowledged in time.",
        lambda s: _all(s, [c.key for c in CRITERIA], 0.8),
    ),
    Level(
        6,
        "leading",
        "Every criterion is met by at least 95% of the production models it applies to.",
        lambda s: _all(s, [c.key for c in CRITERIA], 0.95),
    ),
    Level(
        7,
        "transformative",
        "Every criterion is met by every production model it applies to.",
        lambda s: _all(s, [c.key for c in CRITERIA], 1.0),
    ),
]


@dataclasses.dataclass
class CriterionResult:
    criterion: Criterion
    passed: int
    total: int
    failing: list[tuple[RegisteredModel, str]]

    @property
    def share(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def percent(self) -> int:
        return round(self.share * 100)


@dataclasses.dataclass
class Scorecard:
    """The scorecard of the production models a user may see."""

    computed_at: datetime
    ack_hours: int
    models: list[RegisteredModel]
    results: list[CriterionResult]
    level: Level
    levels: list[Level]

    @property
    def shares(self) -> dict[str, float]:
        """The share of each criterion that applies to at least one model."""
        return {r.criterion.key: r.share for r in self.results if r.total}

    @property
    def next_level(self) -> Level | None:
        return next((lv for lv in self.levels if lv.number == self.level.number + 1), None)


def maturity_level(shares: dict[str, float], *, has_models: bool = True) -> Level:
    """The highest level whose rule holds (levels are cumulative); initial without models."""
    level = LEVELS[0]
    if not has_models:
        return level
    for candidate in LEVELS[1:]:
        if not candidate.test(shares):
            break
        level = candidate
    return level


def _production_models(*, user) -> list[RegisteredModel]:
    """The user's visible models with a production version, annotated with what the criteria
    read (one query)."""
    production = ModelVersion.objects.filter(model=OuterRef("pk"), stage=Stage.PRODUCTION)
    approving_review = Review.objects.filter(request=OuterRef("pk"), decision=Decision.APPROVE).exclude(
        reviewer=F("requester")
    )
    approved_request = PromotionRequest.objects.filter(
        version=OuterRef("production_version_id"),
        target_stage=Stage.PRODUCTION,
        status=PromotionStatus.APPLIED,
    ).filter(Exists(approving_review))
    earlier_production = StageTransition.objects.filter(model=OuterRef("pk"), to_stage=Stage.PRODUCTION).exclude(
        version_id=OuterRef("production_version_id")
    )
    last_window = (
        MetricValue.objects.filter(model=OuterRef("pk"), metric=Metric.VOLUME, feature="")
        .order_by("-window_start")
        .values("window_end")[:1]
    )
    return list(
        RegisteredModel.objects.visible_to(user)
        .annotate(
            production_version_id=Subquery(production.values("pk")[:1]),
            production_version_number=Subquery(production.values("version")[:1]),
            production_created_at=Subquery(production.values("created_at")[:1]),
            production_since=Subquery(production.values("stage_changed_at")[:1]),
            has_config=Exists(MonitoringConfig.objects.filter(model=OuterRef("pk"))),
            last_window=Subquery(last_window),
        )
        .filter(production_version_id__isnull=False)
        .annotate(
            independent_approval=Exists(approved_request),
            rollback_target=Exists(earlier_production),
            bias_examined=bias_examined_before_production(),
        )
        .select_related("owner", "team")
        .order_by("name")
    )


def _late_alerts(models: list[RegisteredModel], *, ack_hours: int, now: datetime) -> dict[int, int]:
    """Per model id, the alerts of the lookback period not acknowledged (or resolved) in time."""
    since = now - timedelta(days=ALERT_LOOKBACK_DAYS)
    late: dict[int, int] = defaultdict(int)
    limit = timedelta(hours=ack_hours)
    rows = Alert.objects.filter(model_id__in=[m.pk for m in models], opened_at__gte=since).values_list(
        "model_id", "opened_at", "acknowledged_at", "resolved_at"
    )
    for model_id, opened_at, acknowledged_at, resolved_at in rows.order_by():
        answered = acknowledged_at if acknowledged_at is not None else resolved_at
        if (answered if answered is not None else now) > opened_at + limit:
            late[model_id] += 1
    return late


def _monitoring_configured(m: RegisteredModel) -> bool:
    """A saved config; for an LLM application (default LLM thresholds), a computed window too."""
    if m.has_config or m.monitoring_configured_at is not None:
        return True
    return m.is_llm_app and m.last_window is not None


def _failures(m: RegisteredModel, *, late: int, ack_hours: int, now: datetime):
    """(criterion key, why) for each criterion the model fails, whether or not it applies to the
    model (``scorecard_compute`` counts only those that do)."""
    if not (m.owner.is_active and m.team_id):
        yield "owner", "owner account is inactive"
    if not m.model_card_complete:
        yield "model_card", "missing: " + ", ".join(m.model_card_missing)
    if not m.independent_approval:
        yield "independent_approval", f"v{m.production_version_number} has no applied, independently approved promotion"
    if not _monitoring_configured(m):
        yield "monitoring", "monitoring not configured"
    elif m.last_window is None or m.last_window < now - timedelta(hours=REPORTING_HOURS):
        yield "monitoring", f"no window computed in the last {REPORTING_HOURS} hours"
    if not m.retrain_cadence_days:
        yield "retrain_cadence", "no retrain cadence set"
    else:
        age = (now - m.production_created_at).days if m.production_created_at else None
        if age is None or age > m.retrain_cadence_days:
            yield "retrain_cadence", f"production version is {age} days old, cadence {m.retrain_cadence_days} days"
    if not m.rollback_target:
        yield "rollback_target", "no earlier production version"
    if not m.bias_examined:
        yield "bias_examined", f"v{m.production_version_number} has no fairness evaluation"
    if late:
        yield "alerts_acknowledged", f"{late} alert{'s' if late != 1 else ''} not acknowledged within {ack_hours} h"


def scorecard_compute(*, user, ack_hours: int | None = None, now: datetime | None = None) -> Scorecard:
    """Evaluate every criterion for the user's visible production models (five queries)."""
    now = now or timezone.now()
    ack_hours = ack_hours or ack_hours_default()
    models = _production_models(user=user)
    late = _late_alerts(models, ack_hours=ack_hours, now=now)
    failing: dict[str, list[tuple[RegisteredModel, str]]] = {c.key: [] for c in CRITERIA}
    for m in models:
        for key, why in _failures(m, late=late.get(m.pk, 0), ack_hours=ack_hours, now=now):
            if CRITERIA_BY_KEY[key].applies(m):
                failing[key].append((m, why))
    results = []
    for c in CRITERIA:
        total = sum(1 for m in models if c.applies(m))
        results.append(
            CriterionResult(criterion=c, passed=total - len(failing[c.key]), total=total, failing=failing[c.key])
        )
    shares = {r.criterion.key: r.share for r in results if r.total}  # as Scorecard.shares
    return Scorecard(
        computed_at=now,
        ack_hours=ack_hours,
        models=models,
        results=results,
        level=maturity_level(shares, has_models=bool(models)),
        levels=LEVELS,
    )


__all__ = ["CRITERIA", "LEVELS", "Scorecard", "maturity_level", "scorecard_compute", "ack_hours_default"]
