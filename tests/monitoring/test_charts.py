"""monitoring.charts: figure dicts for plotly.js, compact and valid JSON (no NaN literals),
and exactly what Plotly's own validating ``graph_objects`` make of them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from monitoring import charts
from monitoring.charts import FigureJSONEncoder
from monitoring.selectors.dashboard import Marker

T0 = datetime(2026, 11, 1, tzinfo=UTC)
WINDOWS = [T0 + timedelta(hours=h) for h in range(6)]


def decode(spec) -> np.ndarray:
    """A plotly.py typed-array spec ({dtype, bdata, shape}) back to numpy, as plotly.js reads it."""
    if isinstance(spec, list):
        return np.array(spec, dtype="float64")
    array = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=spec["dtype"])
    if "shape" in spec:
        array = array.reshape([int(n) for n in str(spec["shape"]).split(",")])
    return array


def strict_json(fig: dict) -> dict:
    """What json_script sends and JSON.parse accepts: no NaN/Infinity literals."""
    return json.loads(json.dumps(fig, cls=FigureJSONEncoder, allow_nan=False))


def test_drift_heatmap_colours_by_status_and_carries_psi_js_and_p_value_for_hover():
    status = np.array([[0, 1, 2, np.nan, 0, 0], [0, 0, 0, 0, 1, 2]], dtype=float)
    psi = np.array([[0.01, 0.12, 0.3, np.nan, 0.02, 0.03], [0.0, 0.01, 0.02, 0.03, 0.11, 0.4]])
    js = psi / 2
    p = 1 - psi
    markers = [Marker(at=WINDOWS[2], kind="promotion", label="v2 → production")]
    fig = strict_json(
        charts.drift_heatmap(
            windows=WINDOWS, features=["age", "income"], status=status, psi=psi, js=js, pvalue=p, markers=markers
        )
    )
    trace = fig["data"][0]
    assert trace["type"] == "heatmap"
    assert trace["x"] == [w.isoformat() for w in WINDOWS]
    assert trace["y"] == ["age", "income"]
    np.testing.assert_array_equal(decode(trace["z"]), status)
    custom = decode(trace["customdata"])
    assert custom.shape == (2, 6, 3)
    np.testing.assert_allclose(custom[1, 5], [0.4, 0.2, 0.6], rtol=1e-6)
    assert "%{customdata[0]" in trace["hovertemplate"] and "%{customdata[2]" in trace["hovertemplate"]
    assert trace["zmin"] == -0.5 and trace["zmax"] == 2.5
    marker = [s for s in fig["layout"]["shapes"] if s["name"] == "marker-promotion"]
    assert marker and marker[0]["x0"] == WINDOWS[2].isoformat() and marker[0]["yref"] == "paper"
    assert any(a["text"] == "v2 → production" for a in fig["layout"]["annotations"])


def test_a_large_heatmap_is_compact_and_fast():
    import time

    n_windows, n_features = 24 * 90, 50
    windows = [T0 + timedelta(hours=h) for h in range(n_windows)]
    rng = np.random.default_rng(0)
    psi = rng.random((n_features, n_windows))
    started = time.perf_counter()
    fig = charts.drift_heatmap(
        windows=windows,
        features=[f"f{i}" for i in range(n_features)],
        status=(psi > 0.5).astype(float),
        psi=psi,
        js=psi,
        pvalue=psi,
    )
    text = json.dumps(fig, cls=FigureJSONEncoder, allow_nan=False)
    elapsed = time.perf_counter() - started
    # 108,000 cells x 4 float64 values as base64 (~4/3 x 8 bytes each) plus the time axis
    assert len(text) < 6_000_000
    assert elapsed < 2.0


def test_top_drifted_features_are_ranked_with_threshold_lines():
    fig = strict_json(
        charts.top_drifted_features(
            features=["income", "age"], psi=[0.3, 0.12], status=["critical", "warning"], warning=0.1, critical=0.25
        )
    )
    bar = fig["data"][0]
    assert bar["orientation"] == "h" and bar["y"] == ["income", "age"]
    np.testing.assert_allclose(decode(bar["x"]), [0.3, 0.12])
    assert bar["marker"]["color"] == [charts.CRITICAL, charts.WARNING]
    lines = {s["name"]: s for s in fig["layout"]["shapes"]}
    assert lines["warning 0.1"]["x0"] == 0.1 and lines["critical 0.25"]["x0"] == 0.25
    # the labels sit above the plot area (never over the top bar), in two rows (never over each other)
    labels = [lines[name]["label"] for name in ("warning 0.1", "critical 0.25")]
    assert {(label["yanchor"], label["xanchor"]) for label in labels} == {("bottom", "left")}
    assert labels[0]["padding"] - labels[1]["padding"] >= 12 and fig["layout"]["margin"]["t"] >= 90


def test_feature_distribution_compares_shares_not_raw_counts():
    fig = strict_json(
        charts.feature_distribution(
            feature="age", labels=["<30", "30–50", "≥50"], reference=[50, 30, 20], current=[1, 1, 8]
        )
    )
    ref, cur = fig["data"]
    assert ref["name"] == "reference" and cur["name"] == "current"
    np.testing.assert_allclose(decode(ref["y"]), [0.5, 0.3, 0.2])
    np.testing.assert_allclose(decode(cur["y"]), [0.1, 0.1, 0.8])


def test_performance_draws_provisional_windows_as_a_separate_hollow_trace_with_coverage():
    provisional = np.array([False, False, False, False, True, True])
    auc = np.array([0.9, 0.89, 0.88, 0.87, 0.8, 0.79])
    fig = strict_json(
        charts.performance_over_time(
            windows=WINDOWS,
            metrics={"roc_auc": auc},
            coverage=np.array([1, 1, 1, 0.9, 0.4, 0.1]),
            provisional=provisional,
            coverage_threshold=0.8,
            thresholds={"roc_auc warning": (0.85, "warning")},
            markers=[Marker(at=WINDOWS[4], kind="alert", label="critical performance")],
        )
    )
    final, tentative, coverage = fig["data"]
    assert final["name"] == "roc_auc" and tentative["name"] == "roc_auc (provisional)"
    assert tentative["marker"]["symbol"] == "circle-open" and tentative["line"]["dash"] == "dot"
    f, t = decode(final["y"]), decode(tentative["y"])
    assert np.isnan(f[4:]).all() and np.allclose(f[:4], auc[:4])
    assert np.isnan(t[:4]).all() and np.allclose(t[4:], auc[4:])
    assert coverage["type"] == "bar" and coverage["yaxis"] == "y2"
    names = {s["name"] for s in fig["layout"]["shapes"]}
    assert {"final at 80%", "roc_auc warning 0.85", "marker-alert"} <= names


def test_volume_and_quality_and_drift_share_carry_markers_on_their_time_axis():
    markers = [
        Marker(at=WINDOWS[1], kind="promotion", label="v3 → production"),
        Marker(at=WINDOWS[3], kind="rollback", label="rollback → v2"),
    ]
    vq = strict_json(
        charts.volume_and_quality(
            windows=WINDOWS,
            volume=np.arange(6, dtype=float),
            quality={"missing (worst feature)": np.full(6, 0.01)},
            markers=markers,
        )
    )
    share = strict_json(
        charts.drift_share_over_time(
            windows=WINDOWS, share=np.linspace(0, 0.6, 6), warning=0.2, critical=0.5, markers=markers
        )
    )
    for fig in (vq, share):
        kinds = [s["name"] for s in fig["layout"]["shapes"] if s["name"].startswith("marker-")]
        assert kinds == ["marker-promotion", "marker-rollback"]
    assert {s["name"] for s in share["layout"]["shapes"]} >= {"warning 20%", "critical 50%"}


def test_prediction_distribution_is_a_share_heatmap_with_a_drift_line():
    shares = np.tile(np.array([[0.2], [0.5], [0.3]]), (1, 6))
    fig = strict_json(
        charts.prediction_distribution(
            windows=WINDOWS, bin_labels=["< 0.3", "0.3 – 0.7", "≥ 0.7"], shares=shares, drift=np.linspace(0, 0.3, 6)
        )
    )
    heat, line = fig["data"]
    assert heat["type"] == "heatmap" and decode(heat["z"]).shape == (3, 6)
    assert line["yaxis"] == "y2" and line["name"] == "prediction drift (PSI)"


@pytest.mark.parametrize(
    "build",
    [
        lambda: charts.drift_heatmap(
            windows=[],
            features=[],
            status=np.zeros((0, 0)),
            psi=np.zeros((0, 0)),
            js=np.zeros((0, 0)),
            pvalue=np.zeros((0, 0)),
        ),
        lambda: charts.top_drifted_features(features=[], psi=[], status=[], warning=0.1, critical=0.25),
        lambda: charts.feature_distribution(feature="age", labels=[], reference=[], current=[]),
        lambda: charts.prediction_distribution(windows=[], bin_labels=[], shares=np.zeros((0, 0))),
        lambda: charts.performance_over_time(windows=[], metrics={}, coverage=np.zeros(0), provisional=np.zeros(0)),
        lambda: charts.volume_and_quality(windows=[], volume=np.zeros(0), quality={}),
        lambda: charts.drift_share_over_time(windows=[], share=np.zeros(0), warning=0.2, critical=0.5),
    ],
)
def test_every_chart_explains_itself_when_there_is_no_data(build):
    fig = strict_json(build())
    assert fig["data"] == []
    assert fig["layout"]["annotations"][0]["text"].startswith("No ")


def test_health_by_tier_stacks_states_per_risk_tier():
    fig = strict_json(
        charts.health_by_tier(
            tiers=["low", "medium", "high"], counts={"ok": [3, 2, 0], "warning": [0, 1, 1], "critical": [0, 0, 2]}
        )
    )
    assert fig["layout"]["barmode"] == "stack"
    assert [t["name"] for t in fig["data"]] == ["ok", "warning", "critical"]
    np.testing.assert_array_equal(decode(fig["data"][2]["y"]), [0, 0, 2])


def _every_chart() -> list[dict]:
    rng = np.random.default_rng(1)
    psi = rng.random((3, 6))
    psi[0, 2] = np.nan
    markers = [Marker(at=WINDOWS[2], kind="promotion", label="v2 → production")]
    prov = np.array([False] * 4 + [True] * 2)
    return [
        charts.drift_heatmap(
            windows=WINDOWS, features=["a", "b", "c"], status=(psi > 0.5) * 1.0, psi=psi, js=psi / 2, pvalue=1 - psi
        ),
        charts.top_drifted_features(
            features=["a", "b"], psi=[0.3, None], status=["critical", "no_data"], warning=0.1, critical=0.25
        ),
        charts.feature_distribution(feature="a", labels=["x", "y"], reference=[3, 1], current=[1, 1]),
        charts.prediction_distribution(
            windows=WINDOWS, bin_labels=["lo", "hi"], shares=rng.random((2, 6)), drift=rng.random(6), markers=markers
        ),
        charts.performance_over_time(
            windows=WINDOWS,
            metrics={"roc_auc": rng.random(6), "f1": rng.random(6)},
            coverage=rng.random(6),
            provisional=prov,
            coverage_threshold=0.8,
            markers=markers,
        ),
        charts.drift_share_over_time(windows=WINDOWS, share=rng.random(6), warning=0.2, critical=0.5),
        charts.volume_and_quality(
            windows=WINDOWS, volume=rng.random(6) * 1000, quality={"missing (worst feature)": rng.random(6)}
        ),
        charts.health_by_tier(tiers=["low", "high"], counts={"ok": [3, 0], "critical": [0, 2]}),
    ]


def test_figures_are_exactly_what_plotly_graph_objects_would_emit():
    """The figures are built as plain dicts (no validation per property, for speed): each one,
    passed through Plotly's validating ``graph_objects.Figure`` and written by ``plotly.io``,
    must give the same JSON as our encoder writes (typed arrays included)."""
    import copy

    import plotly.graph_objects as go
    import plotly.io as pio

    figures = _every_chart()
    assert {t["type"] for fig in figures for t in fig["data"]} == {"heatmap", "bar", "scatter"}
    for fig in figures:
        validated = json.loads(pio.to_json(go.Figure(copy.deepcopy(fig)), validate=True))
        validated["layout"].pop("template", None)
        ours = strict_json(fig)
        assert json.dumps(ours["data"], sort_keys=True) == json.dumps(validated["data"], sort_keys=True)
        assert json.dumps(ours["layout"], sort_keys=True) == json.dumps(validated["layout"], sort_keys=True)


def test_typed_arrays_round_trip_and_64_bit_integers_become_narrower():
    floats = np.array([[0.5, np.nan], [1.5, 2.0]])
    spec = charts.typed_array(floats)
    assert spec["dtype"] == "f8" and spec["shape"] == "2, 2"
    np.testing.assert_array_equal(decode(spec), floats)
    ints = charts.typed_array(np.array([1, 2, 70_000], dtype="int64"))
    assert ints["dtype"] == "i4" and decode(ints).tolist() == [1, 2, 70_000]
    assert charts.typed_array(np.zeros(0)) == []


def test_figures_json_script_escapes_what_could_end_the_script_tag():
    html = charts.figures_json_script({"chart": {"data": [], "layout": {"title": "</script><script>alert(1)"}}})
    assert html.startswith('<script id="figures" type="application/json">') and html.count("</script>") == 1
    assert "<script>alert" not in html
    body = html[len('<script id="figures" type="application/json">') : -len("</script>")]
    assert json.loads(body)["chart"]["layout"]["title"] == "</script><script>alert(1)"


def test_volume_without_quality_shares_is_one_plot_named_by_its_unit():
    """An LLM app's requests have no data-quality shares: the chart kept an empty lower plot,
    its alert lines running down through it, and called the requests "predictions"."""
    markers = [Marker(at=WINDOWS[2], kind="alert", label="latency")]
    fig = strict_json(
        charts.volume_and_quality(
            windows=WINDOWS, volume=np.arange(6, dtype=float), quality={}, markers=markers, unit="requests"
        )
    )
    assert fig["layout"]["title"]["text"] == "Volume (requests per window)"
    assert "xaxis2" not in fig["layout"] and "yaxis2" not in fig["layout"]
    assert [t["name"] for t in fig["data"]] == ["requests"]
    assert [s["name"] for s in fig["layout"]["shapes"]] == ["marker-alert"]


def test_cost_per_thousand_draws_its_line_over_the_volume_bars_with_the_cost_axis_on_the_left():
    """The grey volume bars sat on the overlaying axis, so plotly drew them over the cost line."""
    from datetime import date
    from decimal import Decimal

    from monitoring.charts.cost import cost_per_thousand
    from monitoring.selectors.cost import CostPanel

    days = [date(2026, 11, 1) + timedelta(days=i) for i in range(3)]
    panel = CostPanel(
        model=None, start=days[0], end=days[-1], currency="EUR", days=days, by_category={},
        units=[1000, 2000, 1500], unit_label="predictions", per_thousand=[Decimal("2.5"), Decimal("1.25"), None],
        budget=None, month_days=[], month_cumulative=[], totals=[], other_currencies=[],
    )  # fmt: skip
    fig = strict_json(cost_per_thousand(panel))
    bars, line = fig["data"]
    assert bars["type"] == "bar" and "yaxis" not in bars and line["yaxis"] == "y2"
    assert fig["layout"]["yaxis2"]["overlaying"] == "y" and fig["layout"]["yaxis2"]["side"] == "left"
    assert fig["layout"]["yaxis2"]["title"]["text"] == "EUR" and fig["layout"]["yaxis"]["side"] == "right"
    assert line["legendrank"] < bars["legendrank"]  # the cost first in the legend
    # what is counted: every version's predictions (the serving cost pays for shadow traffic too),
    # unlike the dashboard's Volume chart of the version shown
    assert "every version's predictions, shadow traffic included" in fig["layout"]["title"]["text"]
