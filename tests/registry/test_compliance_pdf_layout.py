"""The compliance PDF's versions table fits an A4 page: the offline-metrics column is on the page,
wide enough to read, however long the lineage strings and however many metrics."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from registry.selectors.audit import compliance_report_data
from registry.views.audit import compliance_report_document
from tests.factories import ModelVersionFactory

MM = 96 / 25.4  # CSS pixels per millimetre: WeasyPrint lays pages out in CSS pixels
A4_WIDTH, RIGHT_MARGIN = 210 * MM, 14 * MM


@pytest.fixture
def long_version(churn, owner):
    return ModelVersionFactory(
        model=churn,
        artifact_uri="s3://acme-ml-artifacts/customer-churn/gradient-boosting/2026-08-31T12-00-00/model.joblib",
        training_run_id="mlflow-run-7f3c2a9e4b1d4e0f8a6c5b3d2e1f0a9b",
        training_data_ref="s3://acme-ml-data/customer-churn/snapshots/2026-08-31/customers_with_features.parquet",
        metrics={
            "roc_auc": 0.8731245512,
            "average_precision_at_top_decile": 0.6123456789,
            "brier_score": 0.1123456789,
            "log_loss": 0.3345678901,
            "expected_calibration_error": 0.0213456789,
            "accuracy": 0.8412345678,
        },
    )


def test_the_versions_table_and_its_metrics_column_fit_on_a4(long_version, owner):
    request = RequestFactory().get("/")
    request.user = owner
    report = compliance_report_data(user=owner, model=long_version.model)
    document = compliance_report_document(request, {"report": report, "model": long_version.model})
    page = next(p for p in document.pages if f"metrics-v{long_version.version}" in p.anchors)
    assert page.width == pytest.approx(A4_WIDTH, abs=1)
    content_right = page.width - RIGHT_MARGIN
    # anchors: each element's border box (x1, y1, x2, y2) in CSS pixels from the page's top-left
    table = page.anchors["report-versions"]
    metrics = page.anchors[f"metrics-v{long_version.version}"]
    assert table[2] <= content_right + 1, f"the table ends {(table[2] - content_right) / MM:.0f} mm past the margin"
    assert metrics[2] <= content_right + 1
    assert metrics[2] - metrics[0] >= 25 * MM, "the metrics column is too narrow to read"
