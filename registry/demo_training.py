"""The demo's data and its really trained models (scikit-learn): a customer-churn classifier on
generated customer data and a disease-progression regressor on scikit-learn's bundled diabetes
dataset. Each ``Trained`` carries the real held-out metrics of its training; ``registry.demo``
registers them as versions, ``monitoring.demo`` draws the production traffic from the same data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

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


def fake_commit(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


def run_id_for(seed: str) -> str:
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
