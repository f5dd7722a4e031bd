"""Pages write stored identifiers for people: an audit event's object type, a purge receipt's
table and method, an alert's kind, a plan's signals and thresholds as labels; counts with their
noun; acknowledged alerts counted as acknowledged (``registry/templatetags/display.py``)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from monitoring.choices import AlertKind, AlertSeverity, AlertStatus
from monitoring.models import Alert
from monitoring.oversight.incidents import incident_open
from registry.choices import Stage
from registry.services.audit import CLI
from tests.factories import AlertFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _render(source: str, **context) -> str:
    return Template("{% load display %}" + source).render(Context(context))


@pytest.mark.parametrize(
    ("source", "value", "expected"),
    [
        ("{{ v|object_label }}", "registry.modelversion", "Model version"),
        ("{{ v|object_label }}", "monitoring.llmrequest", "LLM request"),
        ("{{ v|object_label }}", "nowhere.thing_kind", "Thing kind"),
        ("{{ v|table_label }}", "monitoring_llmrequest", "LLM requests"),
        ("{{ v|table_label }}", "monitoring_prediction", "Predictions"),
        ("{{ v|purge_method }}", "range_delete", "rows deleted"),
        ("{{ v|purge_method }}", "partition_drop", "day partition dropped"),
        ("{{ v|humanize }}", "drifted_share_warning", "drifted share warning"),
        ("{{ v|humanize|capfirst }}", "llm_latency", "LLM latency"),
    ],
)
def test_filters_write_identifiers_as_labels(source, value, expected):
    assert _render(source, v=value) == expected


def test_the_audit_log_names_the_object_type_by_its_model(auditor, churn_v1, client_for):
    from registry.services.inventory import version_update

    version_update(version=churn_v1, actor=churn_v1.model.owner, context=CLI, changes={"description": "d"})
    html = client_for(auditor).get(reverse("registry:audit_log")).content.decode()
    rows = [_text(row) for row in re.findall(r'<tr id="event-\d+">.*?</tr>', html, re.S)]
    row = next(row for row in rows if "version.updated" in row)
    assert "Model version" in row and "registry.modelversion" not in row


def test_the_report_counts_one_feature_in_the_singular(auditor, churn, client_for):
    ModelVersionFactory(model=churn, feature_schema=[{"name": "age", "type": "numeric"}])
    text = _text(client_for(auditor).get(reverse("registry:compliance_report", args=["churn"])).content.decode())
    assert "1 feature" in text and "1 features" not in text


def test_the_incident_page_names_its_alerts_kind_by_its_label(churn, owner, client_for):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    opened = timezone.now() - dt.timedelta(hours=3)
    alert = Alert.objects.create(
        model=churn,
        kind=AlertKind.PREDICTION_DRIFT,
        severity="critical",
        title="t",
        opened_at=opened,
        updated_at=opened,
    )
    incident = incident_open(
        model=churn, actor=owner, severity="serious", aware_at=opened, summary="s", alerts=[alert], context=CLI
    )
    text = _text(client_for(owner).get(incident.get_absolute_url()).content.decode())
    assert f"#{alert.pk} critical prediction drift" in text and "prediction_drift" not in text


def test_the_plan_names_signals_and_thresholds_in_words(churn_v1, owner, client_for):
    html = client_for(owner).get(reverse("monitoring:plan", args=["churn"])).content.decode()
    table = _text(re.search(r'<section class="card plan-signals">.*?</table>', html, re.S).group(0))
    assert "Data drift" in table and "drifted share warning: 0.2" in table
    assert "data_drift" not in table and "drifted_share_warning" not in table


def test_the_dashboard_counts_acknowledged_alerts_apart_from_open_ones(churn, owner, client_for):
    AlertFactory(model=churn, status=AlertStatus.ACKNOWLEDGED, severity=AlertSeverity.CRITICAL)
    AlertFactory(model=churn, status=AlertStatus.ACKNOWLEDGED, kind=AlertKind.PERFORMANCE)
    text = _text(client_for(owner).get(reverse("monitoring:model_dashboard", args=["churn"])).content.decode())
    assert "2 active alerts (2 acknowledged)" in text and "2 open alerts" not in text
    AlertFactory(model=churn, kind=AlertKind.DATA_QUALITY)
    text = _text(client_for(owner).get(reverse("monitoring:model_dashboard", args=["churn"])).content.decode())
    assert "3 active alerts (2 acknowledged)" in text
