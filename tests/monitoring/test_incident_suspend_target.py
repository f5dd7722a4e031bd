"""The incident page says what "Suspend" does to production before the owner presses it: which
version is in production, which one a rollback restores, and that retiring leaves none."""

from __future__ import annotations

import pytest
from django.utils import timezone

from monitoring.oversight.incidents import incident_open
from registry.choices import Stage
from registry.services.audit import CLI
from registry.services.promotions import promotion_approve, promotion_request
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def _promote(version, owner, reviewer):
    req = promotion_request(
        version=version, target_stage=Stage.PRODUCTION, requester=owner, justification="better", context=CLI
    )
    promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI)


def _incident(model, owner):
    return incident_open(
        model=model, actor=owner, severity="serious", aware_at=timezone.now(), summary="Scores off.", context=CLI
    )


def _suspend_note(client, incident) -> str:
    html = client.get(incident.get_absolute_url()).content.decode()
    start = html.index('id="suspend-effect"')
    return " ".join(html[start : html.index("</p>", start)].split())


def test_the_suspend_form_names_the_version_a_rollback_restores(churn, owner, reviewer, client_for):
    for _ in range(2):
        _promote(ModelVersionFactory(model=churn), owner, reviewer)
    note = _suspend_note(client_for(owner), _incident(churn, owner))
    assert "In production now: v2. Rolling back restores v1 and archives v2; retiring archives v2" in note


def test_the_suspend_form_says_when_there_is_nothing_to_roll_back_to(churn, owner, reviewer, client_for):
    _promote(ModelVersionFactory(model=churn), owner, reviewer)
    note = _suspend_note(client_for(owner), _incident(churn, owner))
    assert "In production now: v1. No earlier approved version to roll back to: only retiring" in note


def test_with_nothing_to_roll_back_to_the_suspend_form_starts_on_retiring(churn, owner, reviewer, client_for):
    _promote(ModelVersionFactory(model=churn), owner, reviewer)
    page = client_for(owner).get(_incident(churn, owner).get_absolute_url())
    assert page.context["forms"]["suspend"]["mode"].value() == "retire"
