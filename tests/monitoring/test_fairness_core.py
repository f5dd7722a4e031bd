"""monitoring/fairness.py against fairlearn 0.15 on the same fixtures (1e-9), interval coverage
on simulated data, small-group suppression, and counts that merge exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, mean_absolute_error, precision_score

from monitoring import fairness

TOL = 1e-9


def _fixture(seed: int, n: int = 6000):
    rng = np.random.default_rng(seed)
    attrs = {
        "sex": rng.choice(["F", "M"], n, p=[0.4, 0.6]),
        "age_band": rng.choice(["18-25", "26-40", "41-60", "60+"], n),
        "region": rng.choice(["north", "south", "east"], n),
    }
    base = 0.3 + 0.15 * (attrs["sex"] == "M") + 0.05 * (attrs["age_band"] == "41-60")
    y = (rng.random(n) < base).astype(int)
    flip = rng.random(n) < (0.15 + 0.1 * (attrs["region"] == "south"))
    p = np.where(flip, 1 - y, y)
    return y, p, attrs


def _features(attrs, name):
    if fairness.INTERSECTION_SEP in name:
        a, b = name.split(fairness.INTERSECTION_SEP)
        return pd.DataFrame({a: attrs[a], b: attrs[b]})
    return attrs[name]


def _group_key(frame_index_value):
    if isinstance(frame_index_value, tuple):
        return fairness.GROUP_SEP.join(str(v) for v in frame_index_value)
    return str(frame_index_value)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_figures_equal_fairlearn(seed):
    y, p, attrs = _fixture(seed)
    report = fairness.fairness_report(task="binary", y_true=y, y_pred=p, attributes=attrs, min_group_size=0, n_boot=50)
    assert set(report["attributes"]) == {"sex", "age_band", "region", "sex&age_band", "sex&region", "age_band&region"}
    metrics = {
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "precision": lambda t, q: precision_score(t, q, zero_division=0),
        "accuracy": accuracy_score,
        "n": lambda t, q: len(t),
    }
    for name, result in report["attributes"].items():
        sf = _features(attrs, name)
        frame = MetricFrame(metrics=metrics, y_true=y, y_pred=p, sensitive_features=sf)
        by_group = {_group_key(k): row for k, row in frame.by_group.iterrows()}
        assert len(result["groups"]) == len(by_group)
        for group in result["groups"]:
            expected = by_group[group["group"]]
            assert group["n"] == expected["n"]
            for key in ("selection_rate", "tpr", "fpr", "precision", "accuracy"):
                assert group[key] == pytest.approx(expected[key], abs=TOL), (name, group["group"], key)
        summary = result["summary"]
        kwargs = {"y_true": y, "y_pred": p, "sensitive_features": sf}
        assert summary["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(**kwargs), abs=TOL
        )
        assert summary["demographic_parity_ratio"] == pytest.approx(demographic_parity_ratio(**kwargs), abs=TOL)
        assert summary["disparate_impact"] == pytest.approx(demographic_parity_ratio(**kwargs), abs=TOL)
        assert summary["equalized_odds_difference"] == pytest.approx(equalized_odds_difference(**kwargs), abs=TOL)
        assert summary["equalized_odds_ratio"] == pytest.approx(equalized_odds_ratio(**kwargs), abs=TOL)
        sel = frame.by_group["selection_rate"]
        assert summary["lowest_group"] == _group_key(sel.idxmin())
        assert summary["highest_group"] == _group_key(sel.idxmax())


def test_string_labels_and_positive_class():
    y, p, attrs = _fixture(5, n=2000)
    ys = np.where(y == 1, "approve", "reject").astype(object)
    ps = np.where(p == 1, "approve", "reject").astype(object)
    # performance.positive_label picks the last sorted label when no 1/true/yes: "reject"
    report = fairness.fairness_report(
        task="binary", y_true=ys, y_pred=ps, attributes={"sex": attrs["sex"]}, min_group_size=0, n_boot=10
    )
    assert report["positive_label"] == "reject"
    kwargs = {"y_true": ys, "y_pred": ps, "sensitive_features": attrs["sex"]}
    frame = MetricFrame(metrics=lambda t, q: selection_rate(t, q, pos_label="reject"), **kwargs)
    assert report["attributes"]["sex"]["summary"]["demographic_parity_difference"] == pytest.approx(
        frame.difference(), abs=TOL
    )


@pytest.mark.parametrize("seed", [0, 3])
def test_regression_figures_equal_fairlearn(seed):
    rng = np.random.default_rng(seed)
    n = 4000
    attrs = {"sex": rng.choice(["F", "M"], n), "age_band": rng.choice(["a", "b", "c"], n)}
    y = rng.normal(100, 20, n)
    p = y + rng.normal(0, 5, n) * np.where(attrs["sex"] == "F", 2.0, 1.0) + 1.5 * (attrs["age_band"] == "c")
    report = fairness.fairness_report(
        task="regression", y_true=y, y_pred=p, attributes=attrs, min_group_size=0, n_boot=20
    )
    for name, result in report["attributes"].items():
        sf = _features(attrs, name)
        frame = MetricFrame(
            metrics={"mae": mean_absolute_error, "mean_signed_error": lambda t, q: float(np.mean(q - t))},
            y_true=y,
            y_pred=p,
            sensitive_features=sf,
        )
        by_group = {_group_key(k): row for k, row in frame.by_group.iterrows()}
        for group in result["groups"]:
            assert group["mae"] == pytest.approx(by_group[group["group"]]["mae"], abs=TOL)
            assert group["mean_signed_error"] == pytest.approx(by_group[group["group"]]["mean_signed_error"], abs=TOL)
        mae = MetricFrame(metrics=mean_absolute_error, y_true=y, y_pred=p, sensitive_features=sf)
        assert result["summary"]["mae_ratio"] == pytest.approx(1 / mae.ratio(), abs=TOL)
        assert result["summary"]["mae_difference"] == pytest.approx(mae.difference(), abs=TOL)


def test_small_groups_are_suppressed_and_left_out_of_summaries():
    y, p, attrs = _fixture(7, n=3000)
    sex = attrs["sex"].copy()
    sex[:12] = "X"  # a 12-row group
    report = fairness.fairness_report(
        task="binary", y_true=y, y_pred=p, attributes={"sex": sex}, min_group_size=30, n_boot=20
    )
    groups = {g["group"]: g for g in report["attributes"]["sex"]["groups"]}
    assert groups["X"]["too_small"] is True and groups["X"]["n"] == 12
    assert all(groups["X"][k] is None for k in ("selection_rate", "tpr", "fpr", "precision", "accuracy"))
    assert "too_small" not in groups["F"]
    big = sex != "X"
    expected = demographic_parity_difference(y[big], p[big], sensitive_features=sex[big])
    summary = report["attributes"]["sex"]["summary"]
    assert summary["demographic_parity_difference"] == pytest.approx(expected, abs=TOL)
    assert summary["groups_compared"] == 2
    assert "X" not in (summary["lowest_group"], summary["highest_group"])


def test_counts_merge_exactly():
    y, p, attrs = _fixture(11, n=5000)
    codes, levels = fairness.encode(attrs["age_band"])
    whole = fairness.classification_counts(y, p, codes, len(levels))
    parts = sum(
        fairness.classification_counts(y[s], p[s], codes[s], len(levels))
        for s in (slice(0, 1234), slice(1234, 4000), slice(4000, None))
    )
    assert np.array_equal(whole, parts)
    sel = fairness.selection_counts(p, codes, len(levels))
    assert np.array_equal(sel[:, 0], whole.sum(axis=1))
    assert np.array_equal(sel[:, 1], whole[:, 1] + whole[:, 3])


def test_bootstrap_is_seeded():
    y, p, attrs = _fixture(2, n=2000)
    a = fairness.fairness_report(task="binary", y_true=y, y_pred=p, attributes=attrs, n_boot=100, seed=4)
    b = fairness.fairness_report(task="binary", y_true=y, y_pred=p, attributes=attrs, n_boot=100, seed=4)
    assert a == b
    assert a["attributes"]["sex"]["summary"]["intervals"]["disparate_impact"][0] < 1


def test_intervals_cover_the_true_value_at_about_the_nominal_rate():
    """400 simulated evaluation sets from a known population: the 95 % intervals of the
    demographic parity difference, the disparate impact and the equalized odds difference
    each contain the true value in about 95 % of them (binomial 99 % band: 91.5 %–98.5 %)."""
    rng = np.random.default_rng(123)
    true_sel = {"F": 0.30, "M": 0.45}
    tpr, fpr = {"F": 0.70, "M": 0.85}, {"F": 0.10, "M": 0.12}
    # P(ŷ=1) = π·tpr + (1−π)·fpr with base rate π chosen per group to hit the selection rate
    base = {g: (true_sel[g] - fpr[g]) / (tpr[g] - fpr[g]) for g in true_sel}
    truth = {
        "demographic_parity_difference": true_sel["M"] - true_sel["F"],
        "disparate_impact": true_sel["F"] / true_sel["M"],
        "equalized_odds_difference": max(tpr["M"] - tpr["F"], fpr["M"] - fpr["F"]),
    }
    reps, n = 400, 1500
    hits = dict.fromkeys(truth, 0)
    for r in range(reps):
        sex = rng.choice(["F", "M"], n)
        is_m = sex == "M"
        y = (rng.random(n) < np.where(is_m, base["M"], base["F"])).astype(int)
        rate = np.where(y == 1, np.where(is_m, tpr["M"], tpr["F"]), np.where(is_m, fpr["M"], fpr["F"]))
        p = (rng.random(n) < rate).astype(int)
        summary = fairness.fairness_report(
            task="binary", y_true=y, y_pred=p, attributes={"sex": sex}, n_boot=400, seed=r
        )["attributes"]["sex"]["summary"]
        for key, value in truth.items():
            lo, hi = summary["intervals"][key]
            hits[key] += lo <= value <= hi
    for key in truth:
        assert 0.915 <= hits[key] / reps <= 0.985, (key, hits[key] / reps)
