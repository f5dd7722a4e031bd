"""``fine_bins`` answers exactly what ``np.searchsorted(edges, x, side="right")`` answers (its
definition), for every value: at and beside the edges, in skewed and duplicated edges,
infinite, NaN, overflowing, and across chunk boundaries; and it takes the table path on the
sizes that matter."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring import binning
from monitoring.binning import fine_bins

RNG = np.random.default_rng(20261206)


def _quantile_edges(sample: np.ndarray, bins: int = 50) -> np.ndarray:
    return np.unique(np.quantile(sample, np.arange(1, bins) / bins))


def _around(edges: np.ndarray) -> np.ndarray:
    """Every edge, and the floats just below and just above it."""
    return np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])


def _cases():
    uniform = RNG.random(300_000)
    lognormal = RNG.lognormal(10, 2, 300_000)
    counts = RNG.poisson(3, 300_000).astype(float)  # most values sit on an edge
    yield "uniform", _quantile_edges(uniform), np.concatenate([uniform, _around(_quantile_edges(uniform))])
    yield "lognormal", _quantile_edges(lognormal), np.concatenate([lognormal, _around(_quantile_edges(lognormal))])
    yield "counts", _quantile_edges(counts), counts
    duplicated = np.array([0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0])
    yield "duplicated edges", duplicated, np.concatenate([RNG.integers(-1, 5, 200_000) / 1.0, _around(duplicated)])
    extremes = np.array([np.inf, -np.inf, np.nan, 1e308, -1e308, 5e-324, -0.0, 0.0])
    yield "extremes", _quantile_edges(uniform), np.concatenate([RNG.random(200_000), np.tile(extremes, 1000)])
    tiny = np.array([1.0, np.nextafter(1.0, 2.0)])
    yield "a span of one float", tiny, np.concatenate([1.0 + RNG.random(100_000) * 1e-15, _around(tiny)])
    huge = np.array([-1e308, 0.0, 1e308])  # a span beyond the largest float
    yield "an infinite span", huge, np.concatenate([RNG.normal(0, 1e307, 100_000), _around(huge)])
    tiny_span = np.array([0.0, 1e-300])  # values far outside overflow the cell arithmetic
    yield "an overflowing cell", tiny_span, np.concatenate([RNG.normal(0, 1e10, 100_000), _around(tiny_span)])
    subnormal = np.array([0.0, 5e-324])  # the cell scale itself overflows
    yield "a subnormal span", subnormal, np.concatenate([RNG.normal(0, 1e-323, 100_000), _around(subnormal)])
    yield "one edge", np.array([0.5]), RNG.random(100_000)
    yield "no edges", np.array([]), RNG.random(100_000)
    yield "no values", _quantile_edges(uniform), np.array([])


@pytest.mark.parametrize(("edges", "values"), [case[1:] for case in _cases()], ids=[case[0] for case in _cases()])
def test_every_value_lands_where_searchsorted_puts_it(edges, values):
    np.testing.assert_array_equal(fine_bins(edges, values), np.searchsorted(edges, values, side="right"))


def test_chunk_boundaries_and_integer_input(monkeypatch):
    monkeypatch.setattr(binning, "CHUNK", 1000)  # many chunks, the last one short
    edges = _quantile_edges(RNG.random(10_000))
    values = RNG.integers(0, 2, 123_457)  # integers, converted as searchsorted converts them
    np.testing.assert_array_equal(fine_bins(edges, values), np.searchsorted(edges, values, side="right"))


def test_large_inputs_take_the_table_and_small_ones_the_search(monkeypatch):
    """The fast path is the one that runs on a window-sized input (it would be easy to leave
    it unreached and the tests above would still pass)."""
    searched = []
    search = np.searchsorted

    def counting(edges, values, side="left"):
        searched.append(np.size(values))
        return search(edges, values, side=side)

    monkeypatch.setattr(binning.np, "searchsorted", counting)
    edges = _quantile_edges(RNG.random(100_000))
    fine_bins(edges, RNG.random(1_000_000))
    # the table's own cell bounds, then a few values in cells an edge crosses: not the million
    assert searched[0] == binning.CELLS_PER_EDGE * edges.size and sum(searched[1:]) < 10_000
    searched.clear()
    fine_bins(edges, RNG.random(100))
    assert searched == [100]
