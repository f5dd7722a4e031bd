"""Rows stamp their creation and last change with the project's clock (``mlops_portal.clock``),
not the wall clock: a change made at a past moment (the demo's history, an import) carries that
moment on the row, as its audit event does. Each case failed while the field was ``auto_now``."""

from __future__ import annotations

import datetime as dt

import pytest

from mlops_portal import clock
from monitoring.oversight.incidents import incident_note, incident_open
from monitoring.services.config import monitoring_config_update
from registry.choices import RiskTier, Stage
from registry.models import AuditEvent, PromotionPolicy
from registry.services.audit import CLI
from registry.services.inventory import model_update
from registry.services.policies import policy_update
from registry.services.tokens import token_create
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db
CREATED = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
CHANGED = CREATED + dt.timedelta(days=12, hours=4)


def _event_time(action: str) -> dt.datetime:
    return AuditEvent.objects.filter(action=action).order_by("-seq").values_list("timestamp", flat=True).first()


def test_a_models_last_change_is_the_clocks_time(churn, owner):
    with clock.at(CHANGED):
        model_update(model=churn, actor=owner, context=CLI, changes={"description": "Back-dated."})
    churn.refresh_from_db()
    assert churn.updated_at == CHANGED == _event_time("model.updated")


def test_a_promotion_policys_last_change_is_the_clocks_time(admin_user):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.HIGH)
    with clock.at(CHANGED):
        policy_update(policy=policy, actor=admin_user, changes={"approvals_required": 3}, context=CLI)
    policy.refresh_from_db()
    assert policy.updated_at == CHANGED


def test_a_monitoring_configs_creation_and_change_are_the_clocks_times(churn, owner):
    with clock.at(CREATED):
        config = monitoring_config_update(model=churn, actor=owner, context=CLI, changes={"psi_warning": 0.15})
    with clock.at(CHANGED):
        monitoring_config_update(model=churn, actor=owner, context=CLI, changes={"psi_warning": 0.12})
    config.refresh_from_db()
    assert (config.created_at, config.updated_at) == (CREATED, CHANGED)


def test_an_incidents_last_change_is_the_clocks_time_of_its_last_note(churn, owner):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    with clock.at(CREATED):
        incident = incident_open(
            model=churn, actor=owner, severity="serious", aware_at=CREATED, summary="Scores inflated.", context=CLI
        )
    assert incident.updated_at == CREATED
    with clock.at(CHANGED):
        incident_note(incident=incident, actor=owner, text="Upstream fix deployed.", context=CLI)
    incident.refresh_from_db()
    assert (incident.created_at, incident.updated_at) == (CREATED, CHANGED)


def test_a_tokens_creation_is_the_clocks_time(owner):
    with clock.at(CREATED):
        token, _ = token_create(user=owner, name="pipeline", scopes=["models:read"], expires_at=None, actor=owner,
                                context=CLI)  # fmt: skip
    token.refresh_from_db()
    assert token.created_at == CREATED == _event_time("token.created")
