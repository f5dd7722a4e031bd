"""Per-model compliance report: HTML (printable) and PDF (WeasyPrint), sections mapped to the EU AI Act."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.db import transaction
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from registry.models import AuditEvent, ModelVersion
from registry.selectors.audit import compliance_report_data
from registry.services.audit import CLI, audit_record
from tests.monitoring.llm_helpers import llm_model, llm_version
from tests.pdf import pdf_parts
from tests.registry.test_as_of import timeline  # noqa: F401  (fixture)


def _pdf_page_count(pdf: bytes) -> int:
    """Count page objects, looking inside compressed object streams too."""
    return sum(len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", part)) for part in pdf_parts(pdf))


@pytest.fixture
def audited(timeline, churn, owner):  # noqa: F811
    with transaction.atomic():
        audit_record(actor=owner, action="model.created", obj=churn, context=CLI, after={"name": "churn"})
        audit_record(actor=owner, action="model.updated", obj=churn, context=CLI, before={"a": 1}, after={"a": 2})
    return timeline


def test_report_maps_sections_to_the_eu_ai_act_and_shows_the_evidence(audited, auditor, client_for, churn):
    response = client_for(auditor).get(reverse("registry:compliance_report", args=["churn"]))
    assert response.status_code == 200
    page = response.content.decode()
    for heading in ("Art. 11", "Annex IV", "Art. 12", "Art. 14", "Art. 72"):
        assert heading in page
    assert churn.intended_use in page and churn.limitations in page
    assert "0123456789abcdef0123456789abcdef01234567" in page  # lineage: source commit
    assert f"Request #{audited['r2'].pk}" in page
    assert "Approve</strong> by reviewer2" in page
    assert "Lineage recorded" in page and "gate-pass" in page  # gate results
    assert "latency spike" in page  # the rollback
    assert "Monitoring: see dashboard" in page
    assert reverse("monitoring:model_dashboard", args=["churn"]) in page
    first = AuditEvent.objects.filter(model_name="churn").order_by("seq").first()
    last = AuditEvent.objects.filter(model_name="churn").order_by("-seq").first()
    assert first.hash in page and first.prev_hash in page and last.hash in page


@pytest.mark.parametrize("role", ["owner", "reviewer", "auditor", "admin"])
def test_report_is_visible_to_whoever_can_view_the_model(audited, roles, client_for, role):
    assert client_for(roles[role]).get(reverse("registry:compliance_report", args=["churn"])).status_code == 200


def test_outsider_gets_404_for_report_and_pdf(audited, outsider, client_for, last_seq):
    client = client_for(outsider)
    before = last_seq()
    assert client.get(reverse("registry:compliance_report", args=["churn"])).status_code == 404
    assert client.get(reverse("registry:compliance_report_pdf", args=["churn"])).status_code == 404
    assert not AuditEvent.objects.filter(seq__gt=before, action="audit.report_exported").exists()


def test_unknown_model_report_is_404(auditor, client_for):
    assert client_for(auditor).get(reverse("registry:compliance_report", args=["nope"])).status_code == 404


def test_pdf_is_a_real_pdf_with_pages_and_the_download_is_audited(audited, auditor, client_for, churn, last_seq):
    client = client_for(auditor)
    before = last_seq()
    response = client.get(reverse("registry:compliance_report_pdf", args=["churn"]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    pdf = response.content
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert _pdf_page_count(pdf) >= 2  # a multi-page report
    event = AuditEvent.objects.get(seq__gt=before, action="audit.report_exported")
    assert event.actor == auditor and event.model_id == churn.pk and event.after["format"] == "pdf"
    assert event.source == "ui"
    # the log proves which file left: a PDF whose digest is not in it is not the portal's
    assert event.after["sha256"] == hashlib.sha256(pdf).hexdigest() and event.after["bytes"] == len(pdf)
    assert response["X-Audit-Seq"] == str(event.seq)


def test_report_of_a_model_without_history_renders(churn, owner, client_for):
    page = client_for(owner).get(reverse("registry:compliance_report", args=["churn"])).content.decode()
    assert "No promotion requests." in page and "No rollbacks." in page


def test_report_lists_each_rollback_once_by_the_version_it_restored(audited, auditor, client_for, churn):
    # section 3.2 listed "v2 restored to archived" beside "v1 restored to production" for one rollback
    report = compliance_report_data(user=auditor, model=churn)
    assert [(r.restored.version.version, r.replaced.version) for r in report.rollbacks] == [(1, 2)]
    page = client_for(auditor).get(reverse("registry:compliance_report", args=["churn"])).content.decode()
    section = re.search(r"<h3>3.2 Rollbacks</h3>\s*<ul[^>]*>(.*?)</ul>", page, re.S).group(1)
    items = re.findall(r"<li>(.*?)</li>", section, re.S)
    assert len(items) == 1
    assert "v1 restored to production, replacing v2, by reviewer: “latency spike”" in items[0]
    assert "restored to archived" not in section


def _pdf_html(user, model) -> str:
    """What WeasyPrint lays out for the PDF (the view's template, rendered as the PDF view does)."""
    request = RequestFactory().get("/")
    request.user = user
    context = {"report": compliance_report_data(user=user, model=model), "model": model, "pdf": True}
    return render_to_string("registry/compliance_report_pdf.html", context, request=request)


def test_report_describes_an_llm_applications_versions_and_rounds_their_metrics(owner, team, client_for):
    # the report read "Binary classification, 0 features" and "correctness = 0.813024"
    model = llm_model(owner, team, name="support-assistant")
    version = llm_version(model, model_id="gpt-4.1")
    metrics = {"correctness": 0.813024, "safety_pass_rate": 0.991667}
    ModelVersion.objects.filter(pk=version.pk).update(metrics=metrics, training_data_ref="", training_data_hash="")
    page = client_for(owner).get(reverse("registry:compliance_report", args=[model.name])).content.decode()
    for html in (page, _pdf_html(owner, model)):
        described = re.search(r'<td>v1<div class="muted">(.*?)</div></td>', html, re.S).group(1)
        assert described == "LLM application, <code>openai/gpt-4.1</code>"
        metrics = re.search(r'<td id="metrics-v1">(.*?)</td>', html, re.S).group(1)
        assert metrics == "correctness = 0.8130<br>safety_pass_rate = 0.9917<br>"
        assert "not trained (hosted model)" in html and "features" not in described
        assert "default LLM thresholds (never changed)" in html


def test_a_tabular_models_versions_keep_their_task_and_round_metrics_as_the_model_page(churn_v1, owner, client_for):
    page = client_for(owner).get(reverse("registry:compliance_report", args=["churn"])).content.decode()
    assert '<td>v1<div class="muted">Binary classification, 3 features</div></td>' in page
    assert re.search(r'<td id="metrics-v1">(.*?)</td>', page).group(1) == "roc_auc = 0.8500<br>accuracy = 0.8000<br>"
