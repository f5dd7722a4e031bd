"""Champion vs challenger on the same requests: the paired counts and tests against a direct
computation on the raw pairs (scikit-learn, scipy), exact merging, and the paired tests."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from monitoring import pairing


def raw_pairs(n: int, seed: int, better: float = 0.0):
    """Labels and two models' scores on the same rows; ``better`` sharpens the candidate."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * x))).astype(float)
    prod = 1 / (1 + np.exp(-(1.2 * x + rng.normal(0, 1.0, n))))
    cand = 1 / (1 + np.exp(-((1.2 + better) * x + rng.normal(0, 1.0 - better / 2, n))))
    return y, cand, prod


def payload_of(y, cand, prod, labelled=None):
    label = y.copy()
    if labelled is not None:
        label[~labelled] = np.nan
    return pairing.binary_payload((cand >= 0.5) * 1.0, (prod >= 0.5) * 1.0, cand, prod, label)


def test_paired_figures_equal_a_direct_computation_on_the_raw_pairs():
    y, cand, prod = raw_pairs(4000, seed=1)
    ev = pairing.evidence(payload_of(y, cand, prod), replicates=200)
    cp, pp = (cand >= 0.5).astype(int), (prod >= 0.5).astype(int)
    assert ev["pairs"] == ev["labelled_pairs"] == 4000
    assert ev["agreement"] == pytest.approx((cp == pp).mean(), abs=1e-12)
    assert ev["score_correlation"] == pytest.approx(np.corrcoef(cand, prod)[0, 1], abs=1e-9)
    m = ev["metrics"]
    for name, fn in (("accuracy", skm.accuracy_score), ("f1", skm.f1_score), ("precision", skm.precision_score)):
        assert m[name]["candidate"] == pytest.approx(fn(y, cp), abs=1e-12)
        assert m[name]["production"] == pytest.approx(fn(y, pp), abs=1e-12)
    # 1,000 score bins: pairs within 0.001 of each other count as ties
    assert m["roc_auc"]["candidate"] == pytest.approx(skm.roc_auc_score(y, cand), abs=0.002)
    assert m["roc_auc"]["production"] == pytest.approx(skm.roc_auc_score(y, prod), abs=0.002)
    b = int(((cp == y) & (pp != y)).sum())
    c = int(((cp != y) & (pp == y)).sum())
    assert m["accuracy"]["p_value"] == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue)


def test_window_payloads_merge_exactly_into_the_payload_of_all_pairs():
    y, cand, prod = raw_pairs(3000, seed=2)
    parts = [payload_of(y[s], cand[s], prod[s]) for s in (slice(0, 1000), slice(1000, 1700), slice(1700, 3000))]
    merged = pairing.payload_merge(parts)
    whole = payload_of(y, cand, prod)
    assert merged["pairs"] == whole["pairs"] and merged["agree"] == whole["agree"]
    assert sorted(map(tuple, merged["cells"])) == sorted(map(tuple, whole["cells"]))
    assert merged["moments"] == pytest.approx(whole["moments"], rel=1e-12)


def test_unlabelled_pairs_count_for_agreement_only():
    y, cand, prod = raw_pairs(1000, seed=3)
    labelled = np.arange(1000) < 300
    ev = pairing.evidence(payload_of(y, cand, prod, labelled), replicates=100)
    assert ev["pairs"] == 1000 and ev["labelled_pairs"] == 300
    cp = (cand[:300] >= 0.5).astype(int)
    assert ev["metrics"]["accuracy"]["candidate"] == pytest.approx(skm.accuracy_score(y[:300], cp))


def test_the_bootstrap_interval_finds_a_better_candidate_and_is_seeded():
    y, cand, prod = raw_pairs(5000, seed=4, better=0.8)
    payload = payload_of(y, cand, prod)
    one = pairing.paired_tests(payload, replicates=400)
    assert one == pairing.paired_tests(payload, replicates=400)
    auc = one["roc_auc"]
    assert auc["difference"] > 0 and auc["ci_low"] > 0 and auc["p_value"] < 0.05
    assert auc["ci_low"] <= auc["difference"] <= auc["ci_high"]


def test_regression_pairs_give_mae_and_rmse_of_both_versions():
    rng = np.random.default_rng(5)
    y = rng.normal(0, 3, 2000)
    cand = y + rng.normal(0, 1.0, 2000)
    prod = y + rng.normal(0, 1.5, 2000)
    ev = pairing.evidence(pairing.regression_payload(cand, prod, y), replicates=200)
    m = ev["metrics"]
    assert m["mae"]["candidate"] == pytest.approx(skm.mean_absolute_error(y, cand), rel=1e-3)
    assert m["rmse"]["production"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, prod)), rel=1e-3)
    assert m["mae"]["difference"] < 0 and m["mae"]["ci_high"] < 0
