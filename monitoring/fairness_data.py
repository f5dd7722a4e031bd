"""Generated applicant data with sensitive attributes (demo, tests and benchmark; pure numpy).

``applicants(n, seed)`` draws applicants with ``age_band`` and ``sex`` (and ``region`` for the
benchmark's third attribute) plus income, debt ratio and history features, and a true repayment
label. ``biased_decisions`` gives a classifier's approvals whose rate for ``sex=F`` is scaled by
``female_factor`` (1.0: no bias), so a test or the demo can put disparate impact where it wants.
"""

from __future__ import annotations

import numpy as np

AGE_BANDS = ("18-25", "26-40", "41-60", "60+")
SEXES = ("F", "M")
REGIONS = ("north", "south", "east")
FAIRNESS_SCHEMA = [
    {"name": "income", "type": "numeric"},
    {"name": "debt_ratio", "type": "numeric"},
    {"name": "years_employed", "type": "numeric"},
    {"name": "age_band", "type": "categorical", "sensitive": True},
    {"name": "sex", "type": "categorical", "sensitive": True, "use": "monitoring"},
]


def applicants(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    age_band = rng.choice(AGE_BANDS, n, p=[0.2, 0.35, 0.3, 0.15])
    sex = rng.choice(SEXES, n, p=[0.45, 0.55])
    income = rng.lognormal(10.3, 0.45, n)
    debt_ratio = np.clip(rng.beta(2, 5, n), 0, 1)
    years = rng.gamma(2.0, 3.0, n)
    logit = 0.9 * (np.log(income) - 10.3) - 3.0 * (debt_ratio - 0.28) + 0.08 * (years - 6) + 0.4
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return {
        "income": income,
        "debt_ratio": debt_ratio,
        "years_employed": years,
        "age_band": age_band,
        "sex": sex,
        "region": rng.choice(REGIONS, n),
        "label": label,
        "logit": logit,
    }


def biased_decisions(data: dict[str, np.ndarray], *, female_factor: float = 1.0, seed: int = 1, noise: float = 0.8):
    """(prediction 0/1, score) of a noisy classifier; women are approved ``female_factor`` as often."""
    rng = np.random.default_rng(seed)
    score = 1 / (1 + np.exp(-(data["logit"] + rng.normal(0, noise, data["logit"].size))))
    prediction = (score >= 0.5).astype(int)
    female = data["sex"] == "F"
    drop = female & (prediction == 1) & (rng.random(prediction.size) > female_factor)
    prediction = np.where(drop, 0, prediction)
    return prediction, np.where(drop, np.minimum(score, 0.49), score)


def evaluation_frame(n: int = 4000, *, female_factor: float = 1.0, seed: int = 0):
    """A pandas DataFrame ready to upload as an evaluation set (label, prediction, score, attributes, features)."""
    import pandas as pd

    data = applicants(n, seed)
    prediction, score = biased_decisions(data, female_factor=female_factor, seed=seed + 1)
    return pd.DataFrame(
        {
            "label": data["label"],
            "prediction": prediction,
            "score": np.round(score, 6),
            "age_band": data["age_band"],
            "sex": data["sex"],
            "income": np.round(data["income"], 2),
            "debt_ratio": np.round(data["debt_ratio"], 4),
        }
    )
