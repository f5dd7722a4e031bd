"""Fixtures shared by the monitoring tests (the suite-wide ones are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.monitoring.llm_helpers import llm_model, llm_version


@pytest.fixture
def assistant(owner, team):
    """An LLM application named "assistant" (a module that needs another one defines its own)."""
    return llm_model(owner, team)


@pytest.fixture
def assistant_v1(assistant):
    return llm_version(assistant)
