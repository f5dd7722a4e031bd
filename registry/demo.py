"""Demo data for ``manage.py load_demo``: people, teams, really trained models and their
promotion history, all written through the services (audit source ``cli``), each step at the
past time the catalogue gives it (``mlops_portal.clock.at``: back-dated, in time order).

Idempotent: every step looks for what it would create by its natural key (username,
team slug, model name, version number, promotion request per version and stage) and
skips it when present, so a second run writes nothing, not even an audit event.

The models are trained here with scikit-learn, so each version carries its real metrics.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from mlops_portal import clock
from registry.choices import RiskTier, Stage, TaskType
from registry.demo_credit import CREDIT_STEPS, credit_schedule
from registry.demo_llm import LLM_STEPS, llm_schedule
from registry.demo_steps import (
    CONTEXT,
    DemoResult,
    PromotionStep,
    When,
    history_steps,
    moment,
    register_version,
    snapshot_date,
)
from registry.demo_training import (
    CHURN,
    CHURN_CATEGORICAL,
    CHURN_NUMERIC,
    DIABETES,
    Trained,
    fake_commit,
    run_id_for,
    train_bundled_classifier,
    train_churn,
    train_diabetes,
)
from registry.models import RegisteredModel, Team
from registry.rules import AUDITOR_GROUP, PRIVACY_GROUP, REVIEWER_GROUP
from registry.services.inventory import model_create, team_create

DEMO_PASSWORD = "demo-pass-123"
USERS_AND_TEAMS = (-240, 9)  # when the people and teams were set up (a ``demo_steps.When``)

USERS = [
    # username, first name, last name, groups, superuser
    ("owner", "Olivia", "Owens", [], False),
    ("reviewer", "Ravi", "Reyes", [REVIEWER_GROUP], False),
    ("reviewer2", "Rachel", "Rowe", [REVIEWER_GROUP], False),
    ("auditor", "Ada", "Aldridge", [AUDITOR_GROUP], False),
    ("privacy", "Priya", "Patel", [PRIVACY_GROUP], False),
    ("admin", "Alex", "Admin", [], True),
]

TEAMS = [
    ("Customer Analytics", "customer-analytics", "Retention, pricing and customer-lifetime models."),
    ("Clinical Insights", "clinical-insights", "Decision-support models for care teams."),
    ("Supply Quality", "supply-quality", "Models that grade incoming raw material in the lab."),
]


# ---------------------------------------------------------------------------- the catalogue
@dataclass
class VersionSpec:
    """How one demo version is trained and described."""

    description: str
    train: Callable[[], Trained]
    data_ref: str
    task_type: str
    registered: When = (0, 0)


@dataclass
class ModelSpec:
    """A demo model: its card, its versions and its promotion history."""

    name: str
    team: str
    card: dict[str, Any]
    versions: list[VersionSpec]
    history: list[PromotionStep]
    created: When = (0, 0)


# Where a churn version's training data lies: the customer snapshot taken a few days before the
# version was registered (``{snapshot}``: that date, ``demo_steps.snapshot_date``).
CHURN_SNAPSHOT = "s3://acme-ml-data/customer-churn/snapshots/{snapshot}/customers.csv"
CHURN_V1_NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "late_payments", "days_since_last_login"]

CATALOGUE = [
    ModelSpec(
        name=CHURN,
        team="customer-analytics",
        created=(-230, 10),
        card={
            "description": "Scores each active subscriber's probability of cancelling within 60 days, "
            "so the retention team can prioritise outreach.",
            "risk_tier": RiskTier.MEDIUM,
            "ai_act_category": "Not high-risk (Annex III does not list retention marketing).",
            "time_zone": "Europe/Berlin",
            "intended_use": "Ranking subscribers for voluntary retention offers by the customer-care team. "
            "A person decides every offer.",
            "limitations": "Trained on consumer subscriptions only; not validated for business accounts. "
            "Scores are not a credit or eligibility decision and must not be used to deny service.",
            "retrain_cadence_days": 90,
            "primary_metric": "roc_auc",
            "primary_metric_higher_is_better": True,
            "tags": ["customer-facing", "retention", "tabular"],
        },
        versions=[
            VersionSpec(
                "Baseline logistic regression on five behavioural features.",
                lambda: train_churn("logreg", CHURN_V1_NUMERIC, [], seed=101),
                CHURN_SNAPSHOT,
                TaskType.BINARY,
                registered=(-220, 10),
            ),
            VersionSpec(
                "Gradient boosting on all ten numeric and three categorical features.",
                lambda: train_churn("gbm", CHURN_NUMERIC, CHURN_CATEGORICAL, seed=202),
                CHURN_SNAPSHOT,
                TaskType.BINARY,
                registered=(-95, 14),
            ),
            VersionSpec(
                "Logistic regression on all features, retrained on the {snapshot} snapshot: "
                "simpler and better calibrated than v2 at nearly the same ROC AUC.",
                lambda: train_churn("logreg", CHURN_NUMERIC, CHURN_CATEGORICAL, seed=303),
                CHURN_SNAPSHOT,
                TaskType.BINARY,
                registered=(-38, 11),
            ),
        ],
        history=[
            PromotionStep(
                1,
                Stage.PRODUCTION,
                "First churn model: replaces the hand-written rules used by customer care.",
                [("reviewer", "approve", "Model card and lineage complete; metrics reproduced from the run.")],
                at=((-218, 10), (-217, 11)),
            ),
            PromotionStep(
                2,
                Stage.PRODUCTION,
                "Gradient boosting with contract and payment data: clearly better ROC AUC on the same holdout scheme.",
                [("reviewer", "approve", "ROC AUC up, log loss down; the card's limitations still hold.")],
                at=((-36, 17), (-35, 5.5)),
            ),
            PromotionStep(
                3,
                Stage.PRODUCTION,
                "Quarterly retrain on the latest snapshot, as the 90-day cadence requires; "
                "a linear model is easier to explain to customer care.",
                [],  # left pending: the reviewers' queue has work in it
                at=((-37, 9),),
            ),
        ],
    ),
    ModelSpec(
        name=DIABETES,
        team="clinical-insights",
        created=(-225, 10),
        card={
            "description": "Estimates one-year disease progression for diabetes patients from baseline "
            "measurements, to help clinicians plan follow-up intensity.",
            "risk_tier": RiskTier.HIGH,
            "ai_act_category": "High-risk: medical-device software (AI Act art. 6(1), Annex I, MDR).",
            "intended_use": "Decision support for clinicians planning follow-up visits. "
            "Never used without clinical review.",
            "limitations": "Trained on 442 patients from one study (scikit-learn's diabetes dataset); "
            "inputs are standardised and the population is not representative of all patients.",
            "retrain_cadence_days": 180,
            "primary_metric": "rmse",
            "primary_metric_higher_is_better": False,
            "tags": ["clinical", "regression", "tabular"],
        },
        versions=[
            VersionSpec(
                "Linear regression on BMI, blood pressure and s5 (log triglycerides).",
                lambda: train_diabetes("linear", ["bmi", "bp", "s5"]),
                "sklearn://datasets/load_diabetes",
                TaskType.REGRESSION,
                registered=(-215, 10),
            ),
            VersionSpec(
                "Ridge regression on all ten baseline measurements.",
                lambda: train_diabetes("ridge", ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]),
                "sklearn://datasets/load_diabetes",
                TaskType.REGRESSION,
                registered=(-60, 15),
            ),
            VersionSpec(
                "Deep gradient boosting on all ten measurements (experimental).",
                lambda: train_diabetes("gbr", ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]),
                "sklearn://datasets/load_diabetes",
                TaskType.REGRESSION,
                registered=(-50, 9),
            ),
        ],
        history=[
            PromotionStep(
                1,
                Stage.PRODUCTION,
                "Pilot in two clinics, agreed with the clinical safety officer.",
                [
                    ("reviewer", "approve", "Simple, explainable baseline; fine for the pilot."),
                    ("reviewer2", "approve", "Second approval for a high-risk model: agreed."),
                ],
                at=((-212, 10), (-211, 14), (-210, 9)),
            ),
            PromotionStep(
                2,
                Stage.PRODUCTION,
                "All ten measurements: lower RMSE and MAE on the same holdout.",
                [
                    ("reviewer", "approve", "Error down on the same split; lineage checked."),
                    ("reviewer2", "approve", "Approved; keep the pilot clinics' feedback loop."),
                ],
                at=((-42, 10), (-41, 11), (-39, 16)),
            ),
            PromotionStep(
                3,
                Stage.PRODUCTION,
                "Try gradient boosting in production.",
                [("reviewer", "reject", "RMSE is worse than production on the holdout and the model overfits.")],
                at=((-45, 10), (-44, 15)),
            ),
        ],
    ),
    ModelSpec(
        name="breast-cancer-screening",
        team="clinical-insights",
        created=(-200, 10),
        card={
            "description": "Flags fine-needle aspirate images whose cell-nucleus measurements look "
            "malignant, to prioritise the pathologist's second reading.",
            "risk_tier": RiskTier.HIGH,
            "ai_act_category": "High-risk: medical-device software (AI Act art. 6(1), Annex I, MDR).",
            "intended_use": "Triage of the pathology reading queue. Every sample is still read by a pathologist.",
            "limitations": "Trained on 569 samples from one hospital (Wisconsin diagnostic data); "
            "not validated on other scanners or populations.",
            "retrain_cadence_days": 365,
            "primary_metric": "roc_auc",
            "primary_metric_higher_is_better": True,
            "tags": ["clinical", "imaging-features", "tabular"],
        },
        versions=[
            VersionSpec(
                "Logistic regression on the 30 nucleus measurements.",
                lambda: train_bundled_classifier("breast_cancer", "logreg"),
                "sklearn://datasets/load_breast_cancer",
                TaskType.BINARY,
                registered=(-195, 10),
            ),
            VersionSpec(
                "Random forest on the same measurements.",
                lambda: train_bundled_classifier("breast_cancer", "forest"),
                "sklearn://datasets/load_breast_cancer",
                TaskType.BINARY,
                registered=(-120, 16),
            ),
        ],
        history=[
            PromotionStep(
                1,
                Stage.STAGING,
                "Shadow run next to the pathologists for one quarter before any production use.",
                [
                    ("reviewer", "approve", "Staging only, shadow mode: agreed."),
                    ("reviewer2", "approve", "Agreed; report the shadow results before production."),
                ],
                at=((-190, 10), (-189, 11), (-188, 9)),
            ),
        ],
    ),
    ModelSpec(
        name="wine-cultivar",
        team="supply-quality",
        created=(-150, 10),
        card={
            "description": "Identifies the grape cultivar of an incoming wine lot from its chemical analysis.",
            "risk_tier": RiskTier.LOW,
            "ai_act_category": "Minimal risk.",
            "intended_use": "Checking suppliers' declared cultivar in the quality lab.",
            "limitations": "Three cultivars from one region only (scikit-learn's wine data).",
            "retrain_cadence_days": 365,
            "primary_metric": "accuracy",
            "primary_metric_higher_is_better": True,
            "tags": ["lab", "multiclass", "tabular"],
        },
        versions=[
            VersionSpec(
                "Multinomial logistic regression on 13 chemical measurements.",
                lambda: train_bundled_classifier("wine", "logreg"),
                "sklearn://datasets/load_wine",
                TaskType.MULTICLASS,
                registered=(-140, 10),
            ),
        ],
        history=[
            PromotionStep(
                1,
                Stage.PRODUCTION,
                "Replaces the manual cultivar check in the lab.",
                [("reviewer2", "approve", "Low risk, complete card, clean holdout: approved.")],
                at=((-138, 10), (-137, 12)),
            ),
        ],
    ),
]


# ---------------------------------------------------------------------------- loading
def _ensure_users(result: DemoResult) -> dict[str, Any]:
    User = get_user_model()
    users = {}
    for username, first, last, groups, superuser in USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, first_name=first, last_name=last, email=f"{username}@example.com")
            user.is_staff = user.is_superuser = superuser
            user.set_password(DEMO_PASSWORD)
            user.full_clean()
            user.save()
            result.add("users")
        for name in groups:
            group, _ = Group.objects.get_or_create(name=name)
            if not user.groups.filter(pk=group.pk).exists():
                user.groups.add(group)
        users[username] = user
    return users


def _ensure_teams(users: dict[str, Any], result: DemoResult) -> dict[str, Team]:
    teams = {}
    for name, slug, description in TEAMS:
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            team = team_create(name=name, slug=slug, description=description, actor=users["admin"], context=CONTEXT)
            result.add("teams")
        if not team.members.filter(pk=users["owner"].pk).exists():
            team.members.add(users["owner"])
        teams[slug] = team
    return teams


def _ensure_model(spec: ModelSpec, users, teams, result: DemoResult) -> None:
    if not RegisteredModel.objects.filter(name=spec.name).exists():
        model_create(actor=users["owner"], context=CONTEXT, name=spec.name, team=teams[spec.team], **spec.card)
        result.add("models")


_TRAINED: dict[tuple[str, int], Trained] = {}


def _train(model_name: str, number: int, vspec: VersionSpec) -> Trained:
    """Training is deterministic (fixed seeds), so one process trains each version once."""
    key = (model_name, number)
    if key not in _TRAINED:
        _TRAINED[key] = vspec.train()
    return _TRAINED[key]


def trained_version(model_name: str, number: int) -> Trained:
    """The trained estimator of a demo version (e.g. to score demo traffic with production)."""
    spec = next(s for s in CATALOGUE if s.name == model_name)
    return _train(model_name, number, spec.versions[number - 1])


def _trained_fields(spec: ModelSpec, number: int) -> dict[str, Any]:
    """``version_create``'s fields for a catalogue version, trained now (its real metrics)."""
    vspec = spec.versions[number - 1]
    trained = _train(spec.name, number, vspec)
    seed = f"{spec.name}-{number}"
    snapshot = snapshot_date(vspec.registered)
    return {
        "description": vspec.description.format(snapshot=snapshot),
        "artifact_uri": f"s3://acme-ml-models/{spec.name}/{number}/model.joblib",
        "source_commit": fake_commit(seed),
        "training_run_id": run_id_for(seed),
        "training_data_ref": vspec.data_ref.format(snapshot=snapshot),
        "training_data_hash": trained.data_hash,
        "metrics": trained.metrics,
        "feature_schema": trained.schema,
        "task_type": vspec.task_type,
    }


def _schedule(users, teams, result: DemoResult) -> list[tuple[When, str, Callable[[], None]]]:
    """Every step of the catalogue's history with its time, in time order (so the audit
    chain's order is the order of time)."""
    steps: list[tuple[When, str, Callable[[], None]]] = []
    for spec in CATALOGUE:
        model = functools.partial(_ensure_model, spec, users, teams, result)
        steps.append((spec.created, f"{spec.name}: registered", model))
        for number, vspec in enumerate(spec.versions, start=1):
            fields = functools.partial(_trained_fields, spec, number)
            version = functools.partial(
                register_version, spec.name, number, fields, users=users, context=CONTEXT, result=result
            )
            steps.append((vspec.registered, f"{spec.name} v{number}: trained", version))
        steps += history_steps(spec.name, spec.history, users, result)
    steps.extend(llm_schedule(users, teams, result))  # support-assistant, the LLM application
    steps.extend(credit_schedule(users, teams, result))  # credit-approval (its data: monitoring.demo_fairness)
    return sorted(steps, key=lambda s: s[0])


def load_demo(*, progress: Callable[[str], None] | None = None, until: datetime.datetime | None = None) -> DemoResult:
    """Create the demo data (see module docstring) at the past times the catalogue gives
    (``clock.at``: back-dated, see docs/audit.md). ``progress(label)`` is called after each step.
    With ``until``, only the steps up to then (``demo_llm.replay_demo_until`` does the rest)."""
    step = progress or (lambda label: None)
    result = DemoResult()
    with transaction.atomic(), clock.at(moment(USERS_AND_TEAMS)):
        users = _ensure_users(result)
        teams = _ensure_teams(users, result)
    step("users and teams")
    for when, label, action in _schedule(users, teams, result):
        if until is None or moment(when) <= until:
            with clock.at(moment(when)):
                action()
            step(label)
    return result


STEPS = 1 + len(CATALOGUE) + sum(len(s.versions) + len(s.history) for s in CATALOGUE) + LLM_STEPS + CREDIT_STEPS
