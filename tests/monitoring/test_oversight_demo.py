"""The oversight demo on the registry demo's inventory: the churn incident's whole story, a
completed review and an open finding, diabetes' review coming due; a second run adds nothing."""

from __future__ import annotations

import pytest
from django.utils import timezone

from monitoring.oversight.demo import load_oversight_demo
from monitoring.oversight.models import Finding, Incident, MonitoringPlan, PeriodicReview
from registry import demo as registry_demo
from registry.choices import Stage
from registry.models import ModelVersion


@pytest.mark.django_db
def test_oversight_demo_tells_the_churn_incident_and_is_idempotent(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        registry_demo.load_demo()
        created = load_oversight_demo()
    assert created == {"monitoring plans": 2, "incidents": 1, "reviews": 2, "findings": 1}

    incident = Incident.objects.get(model__name=registry_demo.CHURN)
    kinds = list(incident.events.values_list("kind", flat=True))
    assert kinds == ["opened", "note", "suspended", "report_initial", "resolved", "report_final", "closed"]
    assert incident.status == "closed" and incident.reported_at <= incident.deadline
    suspended = incident.events.get(kind="suspended").data
    assert suspended["mode"] == "rollback" and suspended["from_version"] == 2
    production = ModelVersion.objects.filter(model=incident.model, stage=Stage.PRODUCTION)
    assert [v.version for v in production] == [2]  # the fixed version, approved back into production

    churn_review = PeriodicReview.objects.get(model=incident.model)
    assert churn_review.status == "completed" and churn_review.trigger == "incident"
    assert Finding.objects.get(model=incident.model).status == "open"
    coming = PeriodicReview.objects.get(model__name=registry_demo.DIABETES)
    assert coming.status == "open" and coming.due_at > timezone.now() and coming.needs_validator
    assert MonitoringPlan.objects.count() == 2

    with django_capture_on_commit_callbacks(execute=True):
        assert load_oversight_demo() == {}
    assert Incident.objects.count() == 1 and PeriodicReview.objects.count() == 2
