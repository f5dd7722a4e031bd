"""The post-market section of the compliance report (and its own page): the table by month counts
days from daily windows, each column is the one metric its heading names, an LLM application gets
the columns that apply to it, and the last validation is one a validator signed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from monitoring.choices import Granularity, Metric, ReviewStatus, ReviewTriggerKind
from monitoring.fairness_monitoring import DI, EOD
from monitoring.llm_metrics import FEEDBACK_MEAN, LATENCY_P95, SAFETY_RATE
from monitoring.models import MetricValue
from monitoring.oversight.models import PeriodicReview
from monitoring.oversight.selectors import post_market_report
from registry.choices import Stage
from tests.factories import ModelVersionFactory
from tests.monitoring.helpers import metric_row
from tests.monitoring.llm_helpers import llm_model, llm_version

pytestmark = pytest.mark.django_db

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _months_table(client, name: str) -> str:
    html = client.get(reverse("monitoring:post_market", args=[name])).content.decode()
    return re.search(r'<table class="pm-months">(.*?)</table>', html, re.S).group(1)


def _days(version, n: int, figures: dict[str, float], *, hourly_too: bool = True):
    """``n`` days of November with these dataset-level figures in the daily window and, as the
    engine stores them, again in an hourly window of each day."""
    rows = []
    for day in range(n):
        start = NOV + day * DAY
        for metric, value in figures.items():
            rows.append(metric_row(version, start, metric, value, granularity=Granularity.DAILY))
            if hourly_too:
                rows.append(metric_row(version, start + timedelta(hours=12), metric, value + 0.05))
    MetricValue.objects.bulk_create(rows)


@pytest.fixture
def churn_live(churn):
    return ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)


def test_months_count_days_of_daily_windows_not_hourly_and_daily_windows(churn_live, owner, client_for):
    # the demo's November read "58 windows" for 29 days: the hourly and the daily windows both counted
    _days(churn_live, 3, {Metric.VOLUME: 100, Metric.PSI: 0.1})
    table = _months_table(client_for(owner), "churn")
    assert "<td>2026-11</td><td>3</td>" in table and "<th>Days</th>" in table
    assert "<td>0.100 / 0.100</td>" in table  # the daily PSI, not mixed with the hourly windows'
    report = post_market_report(churn_live.model, owner)
    assert [(r["month"].date().isoformat(), r["days"]) for r in report.months.rows] == [("2026-11-01", 3)]


def test_each_column_is_the_one_metric_its_heading_names(churn_live, owner, client_for):
    # the demo showed 0.825 under a roc_auc heading: the mean of every estimated.* metric
    _days(
        churn_live,
        2,
        {
            Metric.ROC_AUC: 0.80,
            "estimated.roc_auc": 0.745,
            "estimated.roc_auc.upper": 0.79,
            "estimated.accuracy": 0.905,
            DI: 0.82,
            EOD: 0.07,
            "fairness.selection_rate": 0.999,
        },
    )
    table = _months_table(client_for(owner), "churn")
    headings = re.findall(r"<th>(.*?)</th>", table)
    assert headings == [
        "Month",
        "Days",
        "Performance (roc_auc): min / mean",
        "Estimated roc_auc (mean)",
        "Fairness: disparate impact (min)",
        "Fairness: equalized odds difference (max)",
    ]  # no PSI column: no drift data, so no column of dashes
    assert "<td>2026-11</td><td>2</td><td>0.800 / 0.800</td><td>0.745</td><td>0.820</td><td>0.070</td>" in table


def test_a_staging_or_shadow_versions_windows_are_not_post_market_data(churn_live, owner):
    _days(churn_live, 2, {Metric.ROC_AUC: 0.80}, hourly_too=False)
    shadow = ModelVersionFactory(model=churn_live.model, stage=Stage.STAGING)
    _days(shadow, 5, {Metric.ROC_AUC: 0.60}, hourly_too=False)
    row = post_market_report(churn_live.model, owner).months.rows[0]
    assert row["days"] == 2
    assert [values for column, values in row["cells"]] == [[0.80, 0.80]]


def test_an_llm_applications_months_show_its_requests_latency_safety_and_feedback(owner, team, client_for):
    # the demo's support-assistant listed 512 windows a month, every value "—"
    version = llm_version(llm_model(owner, team, name="support-assistant"), stage=Stage.PRODUCTION)
    _days(version, 4, {Metric.VOLUME: 250, LATENCY_P95: 1800.4, SAFETY_RATE: 0.012, FEEDBACK_MEAN: 0.4})
    table = _months_table(client_for(owner), "support-assistant")
    headings = re.findall(r"<th>(.*?)</th>", table)
    assert headings == [
        "Month",
        "Days",
        "Requests",
        "Latency p95 (ms): worst day / mean of days",
        "Safety-flag rate (mean of days)",
        "User feedback, −1 to +1 (mean of days)",
    ]
    assert "<td>2026-11</td><td>4</td><td>1000</td><td>1800 / 1800</td><td>0.012</td><td>0.40</td>" in table
    assert "—" not in table


def _review(model, owner, *, completed_at, validator=None):
    return PeriodicReview.objects.create(
        model=model,
        owner=owner,
        trigger=ReviewTriggerKind.INCIDENT,
        status=ReviewStatus.COMPLETED,
        due_at=completed_at,
        opened_at=completed_at - 3 * DAY,
        attested_by=owner,
        attested_at=completed_at - DAY,
        validated_by=validator,
        validated_at=completed_at if validator else None,
        completed_at=completed_at,
    )


def test_last_validation_is_none_when_a_review_was_completed_without_a_validator(churn_live, owner, client_for):
    # the demo read "Last validation 2026-11-28": the completion date of a review nobody validated
    _review(churn_live.model, owner, completed_at=datetime(2026, 11, 28, 9, tzinfo=UTC))
    report = post_market_report(churn_live.model, owner)
    assert report.last_validation is None and report.validator is None
    html = client_for(owner).get(reverse("monitoring:post_market", args=["churn"])).content.decode()
    assert "<dt>Last validation</dt><dd>none: no validation has been signed</dd>" in html
    assert "<dt>Last review completed</dt><dd>2026-11-28</dd>" in html


def test_last_validation_is_the_latest_signed_one(churn_live, owner, reviewer):
    _review(churn_live.model, owner, completed_at=datetime(2026, 9, 1, 9, tzinfo=UTC), validator=reviewer)
    _review(churn_live.model, owner, completed_at=datetime(2026, 11, 28, 9, tzinfo=UTC))
    report = post_market_report(churn_live.model, owner)
    assert report.last_validation == datetime(2026, 9, 1, 9, tzinfo=UTC) and report.validator == "reviewer"
    assert report.last_completed == datetime(2026, 11, 28, 9, tzinfo=UTC)
