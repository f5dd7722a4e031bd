"""Fixtures shared by the monitoring tests (the suite-wide ones are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.monitoring.helpers import csv_bytes, reference_frame
from tests.monitoring.llm_helpers import llm_model, llm_version


@pytest.fixture
def assistant(owner, team):
    """An LLM application named "assistant" (a module that needs another one defines its own)."""
    return llm_model(owner, team)


@pytest.fixture
def assistant_v1(assistant):
    return llm_version(assistant)


@pytest.fixture
def profiled(churn_v1, owner, django_capture_on_commit_callbacks):
    """churn v1 with a computed reference profile (the Celery task runs eagerly on commit)."""
    from monitoring.services.ingestion import reference_upload
    from registry.services.audit import CLI

    with django_capture_on_commit_callbacks(execute=True):
        reference_upload(
            version=churn_v1, body=csv_bytes(reference_frame(3000)), content_type="text/csv", actor=owner, context=CLI
        )
    churn_v1.refresh_from_db()
    return churn_v1


@pytest.fixture
def seeded(owner, team):
    """The model "fraud" with three days of dashboard data (seed_dashboard), owned by ``owner``."""
    from monitoring.management.commands.seed_dashboard_bench import seed_dashboard

    return seed_dashboard(name="fraud", days=3, features=4, owner=owner, team=team)


@pytest.fixture
def other_model(db):
    """A model of another team: the owner fixture must not see it."""
    from tests.factories import RegisteredModelFactory, TeamFactory, UserFactory

    stranger = UserFactory(username="stranger")
    return RegisteredModelFactory(name="pricing", owner=stranger, team=TeamFactory(slug="pricing-team"))
