"""The statistics, checked against independent computations (scipy, scikit-learn, direct formulas)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn import metrics as skm

from monitoring import performance
from monitoring import stats as metrics
from monitoring.choices import Metric
from monitoring.services.profiles import profile_build

SCHEMA = [{"name": "x", "type": "numeric"}, {"name": "y", "type": "numeric"}, {"name": "c", "type": "categorical"}]


def frame(n, seed, shift=0.0, scale=1.0, cats=("a", "b", "c"), p=(0.5, 0.3, 0.2)):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, scale, n),
            "y": rng.exponential(2.0, n),
            "c": rng.choice(list(cats), n, p=list(p)),
        }
    )


@pytest.fixture(scope="module")
def ref_df():
    return frame(20_000, seed=0)


@pytest.fixture(scope="module")
def profile(ref_df):
    return profile_build(ref_df, SCHEMA, "binary", n_bins=10)


def rows_by_key(rows):
    return {(r["feature"], r["metric"]): r["value"] for r in rows}


def test_numeric_bins_are_deduplicated_quantiles_with_open_tails(profile, ref_df):
    fx = profile["features"]["x"]
    assert len(fx["edges"]) == 49 and np.all(np.diff(fx["edges"]) > 0)
    assert len(fx["coarse_edges"]) == 9 and set(fx["coarse_edges"]) <= set(fx["edges"])
    assert sum(fx["counts"]) == len(ref_df)
    window = metrics.bin_numeric(fx, np.array([-1e9, 1e9]))
    assert window.counts[0] == 1 and window.counts[-1] == 1 and window.out_of_range == 2
    ties = profile_build(pd.DataFrame({"x": [0.0] * 90 + [1.0] * 10}), [SCHEMA[0]], "binary", 10)["features"]["x"]
    assert ties["edges"] == sorted(set(ties["edges"]))


def test_psi_equals_the_direct_formula_on_the_same_bins(profile):
    fx = profile["features"]["x"]
    cur = metrics.bin_numeric(fx, frame(5000, seed=3, shift=0.3)["x"].to_numpy())
    p = np.array(metrics.coarse_counts(fx, np.array(fx["counts"])), dtype=float)
    q = metrics.coarse_counts(fx, cur.counts)
    p, q = p / p.sum(), q / q.sum()
    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    expected = float(np.sum((q - p) * np.log(q / p)))
    rows = rows_by_key(metrics.drift_from_counts(profile, {"x": cur}))
    assert rows[("x", Metric.PSI)] == pytest.approx(expected, rel=1e-12)
    assert rows[("x", Metric.PSI)] > 0.05


def test_psi_stays_finite_when_a_bin_is_empty():
    assert math.isfinite(float(metrics.psi(np.array([10, 0, 5]), np.array([0, 7, 3]))))


def test_jensen_shannon_equals_scipy_on_the_same_bins(profile):
    fx = profile["features"]["x"]
    cur = metrics.bin_numeric(fx, frame(5000, seed=4, shift=0.5)["x"].to_numpy())
    p = metrics.coarse_counts(fx, np.array(fx["counts"]))
    q = metrics.coarse_counts(fx, cur.counts)
    rows = rows_by_key(metrics.drift_from_counts(profile, {"x": cur}))
    assert rows[("x", Metric.JS_DISTANCE)] == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)
    assert float(metrics.js_distance(np.array([1, 0]), np.array([0, 1]))) == pytest.approx(1.0)


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.2, 1.0])
def test_binned_ks_statistic_is_within_the_documented_bound_of_scipy_on_raw_data(ref_df, profile, shift):
    cur_raw = frame(8000, seed=5, shift=shift)["x"].to_numpy()
    fx = profile["features"]["x"]
    cur = metrics.bin_numeric(fx, cur_raw)
    rows = rows_by_key(metrics.drift_from_counts(profile, {"x": cur}))
    exact = stats.ks_2samp(ref_df["x"], cur_raw).statistic
    bound = max(np.max(np.array(fx["counts"]) / sum(fx["counts"])), np.max(cur.counts / cur.n))
    assert rows[("x", Metric.KS_STATISTIC)] <= exact + 1e-12
    assert exact - rows[("x", Metric.KS_STATISTIC)] <= bound
    if shift <= 0.2:
        assert bound < 0.05  # 5 × 10 fine bins: ~0.02 of the reference per bin


def test_ks_p_value_equals_scipy_asymptotic_when_binning_is_lossless():
    # values sit on a grid that the bins separate exactly, so binned CDFs are the exact ECDFs
    rng = np.random.default_rng(7)
    ref = rng.integers(0, 20, 3000).astype(float)
    cur = rng.integers(2, 20, 900).astype(float)
    prof = profile_build(pd.DataFrame({"x": ref}), [SCHEMA[0]], "binary", n_bins=20)
    edges = prof["features"]["x"]["edges"]
    assert edges == [float(v) for v in range(20)]  # one bin per integer value
    rows = rows_by_key(metrics.compute_window_drift(prof, {"x": cur}))
    expected = stats.ks_2samp(ref, cur, method="asymp")
    assert rows[("x", Metric.KS_STATISTIC)] == pytest.approx(expected.statistic, abs=1e-12)
    assert rows[("x", Metric.KS_P_VALUE)] == pytest.approx(expected.pvalue, abs=0.005)


@pytest.mark.parametrize("n_ref,n_cur", [(30, 25), (200, 150), (2000, 800), (100_000, 1_000_000)])
def test_ks_p_value_is_within_the_documented_tolerance_of_scipy_for_every_size(n_ref, n_cur):
    en = round(n_ref * n_cur / (n_ref + n_cur))
    for gap in (0, 1, 3, 8, 15):
        ref = np.array([[50.0, 50.0]])
        cur = np.array([[50.0 - gap, 50.0 + gap]])
        d, p = metrics.ks_binned(ref, cur, [n_ref], [n_cur])
        assert p[0] == pytest.approx(stats.kstwo.sf(d[0], en), abs=0.02 if en < 300 else 0.01)


def test_wasserstein_equals_scipy_on_the_binned_distributions_and_is_close_to_the_raw_value(ref_df, profile):
    fx = profile["features"]["x"]
    cur_raw = frame(8000, seed=8, shift=0.4)["x"].to_numpy()
    cur = metrics.bin_numeric(fx, cur_raw)
    rows = rows_by_key(metrics.drift_from_counts(profile, {"x": cur}))
    mids = np.array(fx["mids"])
    binned = stats.wasserstein_distance(mids, mids, np.array(fx["counts"]), cur.counts) / fx["std"]
    assert rows[("x", Metric.WASSERSTEIN)] == pytest.approx(binned, rel=1e-9)
    raw = stats.wasserstein_distance(ref_df["x"], cur_raw) / ref_df["x"].std(ddof=0)
    assert rows[("x", Metric.WASSERSTEIN)] == pytest.approx(raw, abs=0.05)


def test_categorical_drift_uses_chi_square_and_counts_unseen_categories(profile):
    cur = frame(4000, seed=9, cats=("a", "b", "zzz"), p=(0.3, 0.3, 0.4))
    window = metrics.bin_window(profile, cur)
    rows = rows_by_key(metrics.drift_from_counts(profile, window))
    ref_counts = np.array(profile["features"]["c"]["counts"])
    table = np.vstack([ref_counts, window["c"].counts])
    table = table[:, table.sum(axis=0) > 0]
    assert rows[("c", Metric.CHI2_P_VALUE)] == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)
    assert rows[("c", Metric.UNSEEN_SHARE)] == pytest.approx((cur["c"] == "zzz").mean())
    assert rows[("c", Metric.DRIFT_DETECTED)] == 1.0


def test_missing_and_out_of_range_shares(profile):
    x = np.array([0.0, np.nan, np.nan, 1e6, -1e6, 0.5])
    rows = rows_by_key(metrics.compute_window_drift(profile, {"x": x}))
    assert rows[("x", Metric.MISSING_SHARE)] == pytest.approx(2 / 6)
    assert rows[("x", Metric.OUT_OF_RANGE_SHARE)] == pytest.approx(2 / 4)
    assert rows[("", Metric.VOLUME)] == 6


def test_reference_against_a_fresh_sample_of_the_same_distribution_shows_no_drift(profile):
    rows = rows_by_key(metrics.compute_window_drift(profile, frame(20_000, seed=11)))
    for feature in ("x", "y", "c"):
        assert rows[(feature, Metric.PSI)] < 0.01
        assert rows[(feature, Metric.DRIFT_DETECTED)] == 0.0
    assert rows[("", Metric.DRIFT_SHARE)] == 0.0


def test_shifted_features_are_flagged_and_the_dataset_drift_share_counts_them(profile):
    cur = frame(20_000, seed=12, shift=1.0)
    rows = rows_by_key(metrics.compute_window_drift(profile, cur))
    assert rows[("x", Metric.DRIFT_DETECTED)] == 1.0 and rows[("x", Metric.PSI)] > 0.25
    assert rows[("", Metric.DRIFT_SHARE)] == pytest.approx(1 / 3)
    assert rows[("", Metric.DRIFTED_FEATURES)] == 1.0


@pytest.mark.parametrize(
    "rule,threshold_field",
    [("stat_test", "p_value_threshold"), ("jensen_shannon", "js_threshold"), ("wasserstein", "wasserstein_threshold")],
)
def test_the_selection_rule_is_configurable(profile, rule, threshold_field):
    cur = frame(5000, seed=13, shift=0.05)
    loose = metrics.DriftSettings(rule=rule, **{threshold_field: 1e-12 if rule == "stat_test" else 0.5})
    strict = metrics.DriftSettings(rule=rule, **{threshold_field: 0.9 if rule == "stat_test" else 1e-6})
    assert rows_by_key(metrics.compute_window_drift(profile, cur, loose))[("x", Metric.DRIFT_DETECTED)] == 0.0
    assert rows_by_key(metrics.compute_window_drift(profile, cur, strict))[("x", Metric.DRIFT_DETECTED)] == 1.0


def test_rollup_of_shorter_windows_equals_the_computation_on_all_rows(profile):
    parts = [frame(3000, seed=20 + i, shift=0.1 * i) for i in range(4)]
    summed = metrics.sum_counts(metrics.bin_window(profile, p) for p in parts)
    whole = metrics.bin_window(profile, pd.concat(parts, ignore_index=True))
    for name in whole:
        assert np.array_equal(summed[name].counts, whole[name].counts)
        assert summed[name].out_of_range == whole[name].out_of_range
    a = rows_by_key(metrics.drift_from_counts(profile, summed, n_rows=12_000))
    b = rows_by_key(metrics.compute_window_drift(profile, pd.concat(parts, ignore_index=True)))
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-12, abs=1e-15)


def test_vectorised_statistics_for_many_features_match_one_at_a_time():
    rng = np.random.default_rng(30)
    schema = [{"name": f"f{i}", "type": "numeric"} for i in range(40)]
    ref = pd.DataFrame({f"f{i}": rng.gamma(1 + i % 5, 1, 2000) for i in range(40)})
    prof = profile_build(ref, schema, "regression", n_bins=10 + (0 % 11))
    cur = pd.DataFrame({f"f{i}": rng.gamma(1 + i % 5, 1 + 0.02 * i, 1000) for i in range(40)})
    together = rows_by_key(metrics.compute_window_drift(prof, cur))
    for i in (0, 7, 39):
        name = f"f{i}"
        single = {"format": 1, "features": {name: prof["features"][name]}}
        alone = rows_by_key(metrics.compute_window_drift(single, cur[[name]]))
        for metric in (Metric.PSI, Metric.JS_DISTANCE, Metric.KS_STATISTIC, Metric.KS_P_VALUE, Metric.WASSERSTEIN):
            assert together[(name, metric)] == pytest.approx(alone[(name, metric)], rel=1e-12)


def test_binary_performance_matches_scikit_learn():
    rng = np.random.default_rng(40)
    y = rng.integers(0, 2, 500)
    score = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    pred = (score > 0.5).astype(int)
    got = performance.performance_metrics("binary", [str(v) for v in y], [str(v) for v in pred], score.tolist())
    assert got[Metric.ACCURACY] == pytest.approx(skm.accuracy_score(y, pred))
    assert got[Metric.PRECISION] == pytest.approx(skm.precision_score(y, pred))
    assert got[Metric.RECALL] == pytest.approx(skm.recall_score(y, pred))
    assert got[Metric.F1] == pytest.approx(skm.f1_score(y, pred))
    assert got[Metric.ROC_AUC] == pytest.approx(skm.roc_auc_score(y, score))
    assert got[Metric.LOG_LOSS] == pytest.approx(skm.log_loss(y, np.clip(score, 1e-15, 1 - 1e-15)))


def test_multiclass_and_regression_performance_match_scikit_learn():
    rng = np.random.default_rng(41)
    y = rng.choice(["a", "b", "c"], 300)
    pred = np.where(rng.random(300) < 0.7, y, rng.choice(["a", "b", "c"], 300))
    got = performance.performance_metrics("multiclass", y.tolist(), pred.tolist())
    assert got[Metric.F1] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got[Metric.ROC_AUC] is None
    t = rng.normal(size=200)
    p = t + rng.normal(scale=0.3, size=200)
    reg = performance.performance_metrics("regression", t.tolist(), p.tolist())
    assert reg[Metric.MAE] == pytest.approx(skm.mean_absolute_error(t, p))
    assert reg[Metric.RMSE] == pytest.approx(math.sqrt(skm.mean_squared_error(t, p)))
    assert reg[Metric.R2] == pytest.approx(skm.r2_score(t, p))


def test_one_class_window_has_no_roc_auc_instead_of_an_error():
    got = performance.performance_metrics("binary", ["1", "1"], ["1", "0"], [0.9, 0.4])
    assert got[Metric.ROC_AUC] is None and got[Metric.ACCURACY] == 0.5
