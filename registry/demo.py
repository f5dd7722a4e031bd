"""Demo data for ``manage.py load_demo``: people, teams, two really trained models and
their promotion history, all written through the services (audit source ``cli``).

Idempotent: every step looks for what it would create by its natural key (username,
team slug, model name, version number, promotion request per version and stage) and
skips it when present, so a second run writes nothing, not even an audit event.

The models are trained here with scikit-learn, so each version carries the real metrics
of its training: a customer-churn classifier on generated customer data, and a
disease-progression regressor on scikit-learn's bundled diabetes dataset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from registry.choices import AuditSource, PromotionStatus, RiskTier, Stage, TaskType
from registry.models import ModelVersion, PromotionRequest, RegisteredModel, Team
from registry.rules import AUDITOR_GROUP, REVIEWER_GROUP
from registry.services.audit import AuditContext
from registry.services.inventory import model_create, team_create, version_create

DEMO_PASSWORD = "demo-pass-123"
CONTEXT = AuditContext(source=AuditSource.CLI, request_id="load_demo")

USERS = [
    # username, first name, last name, groups, superuser
    ("owner", "Olivia", "Owens", [], False),
    ("reviewer", "Ravi", "Reyes", [REVIEWER_GROUP], False),
    ("reviewer2", "Rachel", "Rowe", [REVIEWER_GROUP], False),
    ("auditor", "Ada", "Aldridge", [AUDITOR_GROUP], False),
    ("admin", "Alex", "Admin", [], True),
]

TEAMS = [
    ("Customer Analytics", "customer-analytics", "Retention, pricing and customer-lifetime models."),
    ("Clinical Insights", "clinical-insights", "Decision-support models for care teams."),
    ("Supply Quality", "supply-quality", "Models that grade incoming raw material in the lab."),
]

CHURN = "customer-churn"
DIABETES = "diabetes-progression"
CHURN_CATEGORICAL = ["contract_type", "payment_method", "region"]
CHURN_NUMERIC = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "num_products",
    "avg_session_minutes",
    "days_since_last_login",
    "late_payments",
    "data_usage_gb",
    "age",
]
CHURN_LABEL = "churned"


# ---------------------------------------------------------------------------- data


def churn_dataset(n: int = 12_000, *, seed: int = 7, drift: float = 0.0) -> pd.DataFrame:
    """Generated telecom-style customers with a churn label from a known logistic process.

    ``drift`` (0 = reference conditions, 1 = fully shifted) moves two inputs the way a
    market change would: customers call support more often and log in less.
    """
    rng = np.random.default_rng(seed)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], size=n, p=[0.55, 0.25, 0.20])
    payment = rng.choice(
        ["electronic-check", "credit-card", "bank-transfer", "mailed-check"], size=n, p=[0.35, 0.25, 0.25, 0.15]
    )
    region = rng.choice(["north", "south", "east", "west"], size=n, p=[0.3, 0.25, 0.25, 0.2])
    long_contract = contract != "month-to-month"
    tenure = np.clip(rng.gamma(2.0, 9.0, size=n) + long_contract * rng.gamma(2.0, 8.0, size=n), 1, 72).round()
    monthly = np.clip(rng.normal(65, 25, size=n), 18, 120).round(2)
    total = (tenure * monthly * rng.uniform(0.9, 1.05, size=n)).round(2)
    support = rng.poisson(1.2 + 1.8 * drift, size=n).astype(float)
    products = np.clip(1 + rng.poisson(1.2, size=n), 1, 6).astype(float)
    session = np.clip(rng.lognormal(3.0, 0.5, size=n), 1, 300).round(1)
    last_login = np.clip(rng.exponential(8.0 * (1 + 1.5 * drift), size=n), 0, 365).round()
    late = rng.poisson(0.4, size=n).astype(float)
    usage = np.clip(rng.gamma(2.0, 6.0, size=n), 0, 200).round(2)
    age = np.clip(rng.normal(45, 14, size=n), 18, 90).round()
    logit = (
        -1.3
        + 1.1 * (contract == "month-to-month")
        - 0.7 * (contract == "two-year")
        + 0.45 * (payment == "electronic-check")
        + 0.38 * support
        - 0.04 * tenure
        + 0.015 * (monthly - 65)
        + 0.05 * last_login
        + 0.45 * late
        - 0.25 * (products - 2)
        - 0.012 * (session - 20)
    )
    churned = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": support,
            "num_products": products,
            "avg_session_minutes": session,
            "days_since_last_login": last_login,
            "late_payments": late,
            "data_usage_gb": usage,
            "age": age,
            "contract_type": contract,
            "payment_method": payment,
            "region": region,
            CHURN_LABEL: churned,
        }
    )


def diabetes_dataset() -> pd.DataFrame:
    """scikit-learn's bundled diabetes data (442 patients, 10 standardised inputs)."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    return frame.rename(columns={"target": "progression"})


def sha256_of(frame: pd.DataFrame) -> str:
    """The training data's content hash, as recorded in the version's lineage."""
    return "sha256:" + hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


def _fake_commit(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


def _run_id(seed: str) -> str:
    return "run-" + hashlib.sha256(seed.encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------- training


@dataclass
class Trained:
    """One trained version: the estimator, the columns it uses and its real held-out metrics."""

    estimator: Any
    features: list[str]
    metrics: dict[str, float]
    data_hash: str
    schema: list[dict[str, str]] = field(default_factory=list)


def _churn_pipeline(kind: str, numeric: list[str], categorical: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = [("num", StandardScaler(), numeric)]
    if categorical:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical))
    prep = ColumnTransformer(parts)
    if kind == "logreg":
        clf = LogisticRegression(max_iter=500)
    else:
        clf = GradientBoostingClassifier(n_estimators=120, max_depth=3, learning_rate=0.1, random_state=0)
    return Pipeline([("prep", prep), ("clf", clf)])


def train_churn(kind: str, numeric: list[str], categorical: list[str], *, seed: int) -> Trained:
    """Train a churn classifier on a freshly generated snapshot and score it on a held-out 25%."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split

    data = churn_dataset(seed=seed)
    features = numeric + categorical
    x_train, x_test, y_train, y_test = train_test_split(
        data[features], data[CHURN_LABEL], test_size=0.25, random_state=seed, stratify=data[CHURN_LABEL]
    )
    pipeline = _churn_pipeline(kind, numeric, categorical).fit(x_train, y_train)
    proba = pipeline.predict_proba(x_test)[:, 1]
    predicted = (proba >= 0.5).astype(int)
    metrics = {
        "roc_auc": round(float(roc_auc_score(y_test, proba)), 4),
        "accuracy": round(float(accuracy_score(y_test, predicted)), 4),
        "f1": round(float(f1_score(y_test, predicted)), 4),
        "log_loss": round(float(log_loss(y_test, proba)), 4),
        "test_rows": int(len(y_test)),
    }
    schema = [{"name": n, "type": "numeric"} for n in numeric] + [
        {"name": c, "type": "categorical"} for c in categorical
    ]
    return Trained(pipeline, features, metrics, sha256_of(data), schema)


def train_diabetes(kind: str, features: list[str]) -> Trained:
    """Train a progression regressor on the diabetes data and score it on a held-out 25%."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
    from sklearn.model_selection import train_test_split

    data = diabetes_dataset()
    x_train, x_test, y_train, y_test = train_test_split(
        data[features], data["progression"], test_size=0.25, random_state=2
    )
    estimator = {
        "linear": LinearRegression(),
        "ridge": Ridge(alpha=0.1),
        "gbr": GradientBoostingRegressor(n_estimators=300, max_depth=4, learning_rate=0.1, random_state=0),
    }[kind].fit(x_train, y_train)
    predicted = estimator.predict(x_test)
    metrics = {
        "rmse": round(float(np.sqrt(mean_squared_error(y_test, predicted))), 3),
        "mae": round(float(mean_absolute_error(y_test, predicted)), 3),
        "r2": round(float(r2_score(y_test, predicted)), 4),
        "test_rows": int(len(y_test)),
    }
    return Trained(estimator, features, metrics, sha256_of(data), [{"name": f, "type": "numeric"} for f in features])


def train_bundled_classifier(dataset: str, kind: str) -> Trained:
    """Train a classifier on one of scikit-learn's bundled datasets (no download) and score it
    on a held-out 25%: ``breast_cancer`` (binary) or ``wine`` (three cultivars)."""
    from sklearn import datasets
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = getattr(datasets, f"load_{dataset}")(as_frame=True).frame
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    features = [c for c in frame.columns if c != "target"]
    x_train, x_test, y_train, y_test = train_test_split(
        frame[features], frame["target"], test_size=0.25, random_state=7, stratify=frame["target"]
    )
    estimator = (
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        if kind == "logreg"
        else RandomForestClassifier(n_estimators=150, random_state=0)
    ).fit(x_train, y_train)
    proba = estimator.predict_proba(x_test)
    predicted = estimator.predict(x_test)
    binary = proba.shape[1] == 2
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, predicted)), 4),
        "f1": round(float(f1_score(y_test, predicted, average="binary" if binary else "macro")), 4),
        "log_loss": round(float(log_loss(y_test, proba)), 4),
        "roc_auc": round(float(roc_auc_score(y_test, proba[:, 1] if binary else proba, multi_class="ovr")), 4),
        "test_rows": int(len(y_test)),
    }
    schema = [{"name": f, "type": "numeric"} for f in features]
    return Trained(estimator, features, metrics, sha256_of(frame), schema)


# ---------------------------------------------------------------------------- the catalogue


@dataclass
class VersionSpec:
    """How one demo version is trained and described."""

    description: str
    train: Callable[[], Trained]
    data_ref: str
    task_type: str


@dataclass
class PromotionStep:
    """One step of a model's promotion history, replayed through the promotion services."""

    version: int
    target: str
    justification: str
    reviews: list[tuple[str, str, str]]  # (reviewer username, "approve"|"reject", comment)


@dataclass
class ModelSpec:
    """A demo model: its card, its versions and its promotion history."""

    name: str
    team: str
    card: dict[str, Any]
    versions: list[VersionSpec]
    history: list[PromotionStep]


CHURN_V1_NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "late_payments", "days_since_last_login"]

CATALOGUE = [
    ModelSpec(
        name=CHURN,
        team="customer-analytics",
        card={
            "description": "Scores each active subscriber's probability of cancelling within 60 days, "
            "so the retention team can prioritise outreach.",
            "risk_tier": RiskTier.MEDIUM,
            "ai_act_category": "Not high-risk (Annex III does not list retention marketing).",
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
                "s3://acme-ml-data/customer-churn/snapshots/2026-05-31/customers.csv",
                TaskType.BINARY,
            ),
            VersionSpec(
                "Gradient boosting on all ten numeric and three categorical features.",
                lambda: train_churn("gbm", CHURN_NUMERIC, CHURN_CATEGORICAL, seed=202),
                "s3://acme-ml-data/customer-churn/snapshots/2026-08-31/customers.csv",
                TaskType.BINARY,
            ),
            VersionSpec(
                "Logistic regression on all features, retrained on the October snapshot: "
                "simpler and better calibrated than v2 at nearly the same ROC AUC.",
                lambda: train_churn("logreg", CHURN_NUMERIC, CHURN_CATEGORICAL, seed=303),
                "s3://acme-ml-data/customer-churn/snapshots/2026-10-31/customers.csv",
                TaskType.BINARY,
            ),
        ],
        history=[
            PromotionStep(
                1,
                Stage.PRODUCTION,
                "First churn model: replaces the hand-written rules used by customer care.",
                [("reviewer", "approve", "Model card and lineage complete; metrics reproduced from the run.")],
            ),
            PromotionStep(
                2,
                Stage.PRODUCTION,
                "Gradient boosting with contract and payment data: clearly better ROC AUC on the same holdout scheme.",
                [("reviewer", "approve", "ROC AUC up, log loss down; the card's limitations still hold.")],
            ),
            PromotionStep(
                3,
                Stage.PRODUCTION,
                "Quarterly retrain on the latest snapshot, as the 90-day cadence requires; "
                "a linear model is easier to explain to customer care.",
                [],  # left pending: the reviewers' queue has work in it
            ),
        ],
    ),
    ModelSpec(
        name=DIABETES,
        team="clinical-insights",
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
            ),
            VersionSpec(
                "Ridge regression on all ten baseline measurements.",
                lambda: train_diabetes("ridge", ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]),
                "sklearn://datasets/load_diabetes",
                TaskType.REGRESSION,
            ),
            VersionSpec(
                "Deep gradient boosting on all ten measurements (experimental).",
                lambda: train_diabetes("gbr", ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]),
                "sklearn://datasets/load_diabetes",
                TaskType.REGRESSION,
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
            ),
            PromotionStep(
                2,
                Stage.PRODUCTION,
                "All ten measurements: lower RMSE and MAE on the same holdout.",
                [
                    ("reviewer", "approve", "Error down on the same split; lineage checked."),
                    ("reviewer2", "approve", "Approved; keep the pilot clinics' feedback loop."),
                ],
            ),
            PromotionStep(
                3,
                Stage.PRODUCTION,
                "Try gradient boosting in production.",
                [("reviewer", "reject", "RMSE is worse than production on the holdout and the model overfits.")],
            ),
        ],
    ),
    ModelSpec(
        name="breast-cancer-screening",
        team="clinical-insights",
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
            ),
            VersionSpec(
                "Random forest on the same measurements.",
                lambda: train_bundled_classifier("breast_cancer", "forest"),
                "sklearn://datasets/load_breast_cancer",
                TaskType.BINARY,
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
            ),
        ],
    ),
    ModelSpec(
        name="wine-cultivar",
        team="supply-quality",
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
            ),
        ],
        history=[
            PromotionStep(
                1,
                Stage.PRODUCTION,
                "Replaces the manual cultivar check in the lab.",
                [("reviewer2", "approve", "Low risk, complete card, clean holdout: approved.")],
            ),
        ],
    ),
]


# ---------------------------------------------------------------------------- loading


@dataclass
class DemoResult:
    """What a run created, by kind (empty on a second run)."""

    created: dict[str, int] = field(default_factory=dict)

    def add(self, what: str, n: int = 1) -> None:
        self.created[what] = self.created.get(what, 0) + n


def _ensure_users(result: DemoResult) -> dict[str, Any]:
    User = get_user_model()
    users = {}
    for username, first, last, groups, superuser in USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(
                username=username,
                first_name=first,
                last_name=last,
                email=f"{username}@example.com",
                is_staff=superuser,
                is_superuser=superuser,
            )
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


def _ensure_model(spec: ModelSpec, users, teams, result: DemoResult) -> RegisteredModel:
    model = RegisteredModel.objects.filter(name=spec.name).first()
    if model is None:
        model = model_create(actor=users["owner"], context=CONTEXT, name=spec.name, team=teams[spec.team], **spec.card)
        result.add("models")
    return model


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


def _ensure_versions(spec: ModelSpec, model: RegisteredModel, users, result: DemoResult) -> None:
    existing = set(model.versions.values_list("version", flat=True))
    for number, vspec in enumerate(spec.versions, start=1):
        if number in existing:
            continue
        trained = _train(spec.name, number, vspec)
        seed = f"{spec.name}-{number}"
        version_create(
            model=model,
            actor=users["owner"],
            context=CONTEXT,
            description=vspec.description,
            artifact_uri=f"s3://acme-ml-models/{spec.name}/{number}/model.joblib",
            source_commit=_fake_commit(seed),
            training_run_id=_run_id(seed),
            training_data_ref=vspec.data_ref,
            training_data_hash=trained.data_hash,
            metrics=trained.metrics,
            feature_schema=trained.schema,
            task_type=vspec.task_type,
        )
        result.add("versions")


def _replay_history(spec: ModelSpec, model: RegisteredModel, users, result: DemoResult) -> None:
    for step in spec.history:
        version = ModelVersion.objects.get(model=model, version=step.version)
        if PromotionRequest.objects.filter(version=version, target_stage=step.target).exists():
            continue
        with transaction.atomic():  # a step happens whole or not at all, so a re-run can finish it
            _replay_step(step, version, users, result)


def _replay_step(step: PromotionStep, version: ModelVersion, users, result: DemoResult) -> None:
    """Request the promotion as the owner, then each review, through the promotion services."""
    from registry.services.promotions import promotion_approve, promotion_reject, promotion_request

    req = promotion_request(
        version=version,
        target_stage=step.target,
        requester=users["owner"],
        justification=step.justification,
        context=CONTEXT,
    )
    result.add("promotion requests")
    for username, decision, comment in step.reviews:
        req.refresh_from_db()
        if req.status != PromotionStatus.PENDING:
            break
        if decision == "approve":
            promotion_approve(request=req, reviewer=users[username], comment=comment, context=CONTEXT)
        else:
            promotion_reject(request=req, reviewer=users[username], comment=comment, context=CONTEXT)
        result.add("reviews")


def load_demo(*, progress: Callable[[str], None] | None = None) -> DemoResult:
    """Create the demo data (see module docstring). ``progress(label)`` is called after each step."""
    step = progress or (lambda label: None)
    result = DemoResult()
    with transaction.atomic():
        users = _ensure_users(result)
        teams = _ensure_teams(users, result)
    step("users and teams")
    for spec in CATALOGUE:
        model = _ensure_model(spec, users, teams, result)
        _ensure_versions(spec, model, users, result)
        step(f"{spec.name}: trained and registered")
        _replay_history(spec, model, users, result)
        step(f"{spec.name}: promotion history")
    return result


STEPS = 1 + 2 * len(CATALOGUE)
