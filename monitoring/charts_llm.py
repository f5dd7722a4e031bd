"""The LLM panels of the model dashboard (``monitoring.selectors.llm.LLMPanels`` → figures):
latency p50/p95, tokens in/out, cost per day, feedback score and safety-flag rate over time,
with the dashboard's promotion/rollback/alert markers and the model's LLM thresholds as dashed
lines. Built with the dashboard's figure helpers (``monitoring.charts.base``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from .charts.base import (
    BRAND,
    CRITICAL,
    MUTED,
    WARNING,
    empty_figure,
    figure,
    iso,
    line_trace,
    marker_lines,
    threshold_line,
    trace,
    warning_and_critical,
)
from .llm_metrics import FEEDBACK_MEAN, LATENCY_P50, LATENCY_P95, SAFETY_RATE, TOKENS_IN, TOKENS_OUT
from .selectors.dashboard_scope import Marker
from .selectors.llm import LLMPanels

NO_WINDOWS = "No request windows in this range yet."
CHART_IDS = ("chart-llm-latency", "chart-llm-tokens", "chart-llm-cost", "chart-llm-feedback", "chart-llm-safety")


def _line(x: list[str], y: np.ndarray, name: str, colour: str, hover: str) -> dict:
    mode = "lines+markers" if len(x) < 60 else "lines"
    return line_trace(x, y, name=name, colour=colour, hover=hover, width=2, mode=mode)


def _with_markers(traces, *, title: str, windows: Sequence[datetime], markers, shapes=(), **layout) -> dict:
    marker_shapes, annotations = marker_lines(markers, windows=windows)
    return figure(traces, title=title, shapes=[*shapes, *marker_shapes], annotations=annotations, **layout)


def latency_over_time(
    *, windows, p50: np.ndarray, p95: np.ndarray, warning: float, critical: float, markers: Sequence[Marker] = ()
) -> dict:
    if not len(windows):
        return empty_figure("Latency", NO_WINDOWS)
    x = iso(windows)
    traces = [
        _line(x, p50, "p50", MUTED, "p50 %{y:,.0f} ms<extra></extra>"),
        _line(x, p95, "p95", BRAND, "p95 %{y:,.0f} ms<extra></extra>"),
    ]
    shapes = warning_and_critical(warning, critical, label="p95 {kind} {value:,.0f} ms")
    return _with_markers(
        traces,
        title="Latency (ms): p50 and p95",
        windows=windows,
        markers=markers,
        shapes=shapes,
        yaxis={"title": {"text": "ms"}, "rangemode": "tozero"},
    )


def tokens_over_time(*, windows, tokens_in: np.ndarray, tokens_out: np.ndarray, markers=()) -> dict:
    if not len(windows):
        return empty_figure("Tokens", NO_WINDOWS)
    x = iso(windows)
    traces = [
        trace("bar", x=x, y=tokens_in.astype("float64"), name="tokens in", marker={"color": "#93c5fd"}),
        trace("bar", x=x, y=tokens_out.astype("float64"), name="tokens out", marker={"color": BRAND}),
    ]
    return _with_markers(traces, title="Tokens in and out", windows=windows, markers=markers, barmode="stack")


def cost_per_day(*, days, amounts, currency: str, note: str = "", markers=()) -> dict:
    """Cost per day from the daily cost records; an unknown cost is a gap, never 0."""
    if not len(days):
        return empty_figure("Inference cost per day", note or "No cost computed in this range yet.")
    stamps = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in days]
    values = np.array([float(a) for a in amounts], dtype="float64")  # drawn as floats; the records keep Decimal
    traces = [
        trace(
            "bar",
            x=[d.isoformat() for d in days],
            y=values,
            name=f"cost ({currency})",
            marker={"color": BRAND},
            hovertemplate=f"%{{x}}: %{{y:,.4f}} {currency}<extra></extra>",
        )
    ]
    shapes, annotations = marker_lines(markers, windows=stamps)
    if note:  # days with requests but no price: said, never drawn as 0
        annotations.append({"text": note, "xref": "paper", "yref": "paper", "x": 0, "y": -0.3, "showarrow": False})
    return figure(
        traces,
        title=f"Inference cost per day ({currency})",
        shapes=shapes,
        annotations=annotations,
        yaxis={"title": {"text": currency}, "rangemode": "tozero"},
    )


def feedback_over_time(*, windows, mean: np.ndarray, floor: float, markers=()) -> dict:
    if not len(windows) or np.all(np.isnan(mean)):
        return empty_figure("User feedback", "No feedback in this range.")
    x = iso(windows)
    traces = [_line(x, mean, "mean feedback", BRAND, "mean feedback %{y:+.2f}<extra></extra>")]
    shapes = [threshold_line(floor, colour=WARNING, label=f"floor {floor:+.2f}")]
    return _with_markers(
        traces,
        title="User feedback (mean, -1 to +1)",
        windows=windows,
        markers=markers,
        shapes=shapes,
        yaxis={"range": [-1.05, 1.05]},
    )


def safety_over_time(*, windows, rate: np.ndarray, warning: float, critical: float, markers=()) -> dict:
    if not len(windows):
        return empty_figure("Safety flags", NO_WINDOWS)
    x = iso(windows)
    traces = [_line(x, rate, "flagged share", CRITICAL, "%{y:.1%} of requests flagged<extra></extra>")]
    shapes = warning_and_critical(warning, critical, label="{kind} {value:.1%}")
    return _with_markers(
        traces,
        title="Safety-flag rate (share of requests with a flag)",
        windows=windows,
        markers=markers,
        shapes=shapes,
        yaxis={"tickformat": ".1%", "rangemode": "tozero"},
    )


def llm_figures(panels: LLMPanels | None) -> dict[str, dict]:
    """The LLM panels' figures keyed by their element ids ({} for models that are not LLM apps)."""
    if panels is None:
        return {}
    w, s, c, m = panels.windows, panels.series, panels.config, panels.markers
    nan = np.full(len(w), np.nan)
    return {
        "chart-llm-latency": latency_over_time(
            windows=w,
            p50=s.get(LATENCY_P50, nan),
            p95=s.get(LATENCY_P95, nan),
            warning=c.llm_latency_p95_warning_ms,
            critical=c.llm_latency_p95_critical_ms,
            markers=m,
        ),
        "chart-llm-tokens": tokens_over_time(
            windows=w, tokens_in=s.get(TOKENS_IN, nan), tokens_out=s.get(TOKENS_OUT, nan), markers=m
        ),
        "chart-llm-cost": cost_per_day(
            days=panels.cost_days,
            amounts=panels.cost_amounts,
            currency=panels.currency,
            note=panels.cost_note,
            markers=m,
        ),
        "chart-llm-feedback": feedback_over_time(
            windows=w, mean=s.get(FEEDBACK_MEAN, nan), floor=c.llm_feedback_floor, markers=m
        ),
        "chart-llm-safety": safety_over_time(
            windows=w,
            rate=s.get(SAFETY_RATE, nan),
            warning=c.llm_safety_flag_rate_warning,
            critical=c.llm_safety_flag_rate_critical,
            markers=m,
        ),
    }


__all__ = ["CHART_IDS", "llm_figures"]
