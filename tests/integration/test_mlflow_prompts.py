"""MLflow's prompt registry, governed: prompts registered with MLflow's own client are imported
as LLM applications' versions (never as models), idempotently, and an approved promotion moves
the prompt's alias in MLflow."""

from __future__ import annotations

import json
import subprocess

import pytest

from monitoring.demo_llm_evaluations import upload_demo_evaluation
from registry.choices import Stage
from registry.models import AuditEvent, MlflowAliasViolation, ModelVersion, RegisteredModel
from registry.services.audit import CLI
from registry.services.inventory import model_update, version_update
from registry.services.mlflow_sync import mlflow_sync, portal_name
from registry.services.promotions import promotion_approve, promotion_request
from tests.integration.mlflow_fixtures import ROOT

pytestmark = [pytest.mark.integration]

MLFLOW_PYTHON = ROOT / ".venv-mlflow" / "bin" / "python"
SYSTEM = "You are the support assistant of {{product}}. Answer from the articles only."


def register_prompts(url: str, name: str) -> None:
    """What a team does with MLflow's own client: a text prompt with a model configuration (v1),
    then a chat prompt without one (v2), and the champion alias on v1."""
    script = f"""
import mlflow
mlflow.set_tracking_uri({url!r})
mlflow.genai.register_prompt(name={name!r}, template={SYSTEM!r}, commit_message="first wording",
    model_config={{"provider": "openai", "model_name": "gpt-4.1-mini", "temperature": 0.3, "max_tokens": 200}})
mlflow.genai.register_prompt(name={name!r}, commit_message="as a chat",
    template=[{{"role": "system", "content": {SYSTEM!r}}}, {{"role": "user", "content": "{{{{question}}}}"}}])
mlflow.genai.set_prompt_alias({name!r}, alias="champion", version=1)
"""
    done = subprocess.run([str(MLFLOW_PYTHON), "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def prompt_alias(url: str, name: str, alias: str) -> str:
    script = f"""
import mlflow
mlflow.set_tracking_uri({url!r})
print(mlflow.genai.load_prompt("prompts:/{name}@{alias}").version)
"""
    done = subprocess.run([str(MLFLOW_PYTHON), "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(autouse=True)
def _allow_loopback(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def prompt(mlflow_server, prefix) -> str:
    name = f"{prefix}-support-prompt"
    register_prompts(mlflow_server, name)
    return name


def test_prompts_are_imported_as_llm_app_versions_and_never_as_models(governed_server, registered, prompt):
    summary = mlflow_sync(server=governed_server, context=CLI)
    assert summary.errors == []
    # the ML model is imported as before; the prompt is one LLM application, not an ML model
    assert RegisteredModel.objects.get(name=portal_name(registered)).kind == "ml"
    model = RegisteredModel.objects.get(name=portal_name(prompt))
    assert model.kind == "llm_app" and model.owner == governed_server.default_owner
    assert RegisteredModel.objects.count() == 2
    v1, v2 = ModelVersion.objects.filter(model=model).select_related("llm").order_by("version")
    assert v1.llm.prompts == [{"name": prompt, "template": SYSTEM, "variables": ["product"]}]
    assert v1.llm.llm == {
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "parameters": {"temperature": 0.3, "max_tokens": 200},
    }
    assert v1.description == "first wording"
    assert [(p["name"], p["variables"]) for p in v2.llm.prompts] == [("system", ["product"]), ("user", ["question"])]
    assert v2.llm.llm == {"provider": "unspecified", "model": "unspecified", "parameters": {}}
    assert v1.llm.content_hash != v2.llm.content_hash
    # the version behind the alias is adopted as production at first import
    assert (v1.stage, v2.stage) == (Stage.PRODUCTION, Stage.NONE)
    # a second sync writes nothing
    before = AuditEvent.objects.count()
    again = mlflow_sync(server=governed_server, context=CLI)
    assert again.errors == [] and not again.changed
    assert AuditEvent.objects.count() == before


def test_an_approved_promotion_moves_the_prompt_alias_in_mlflow(
    governed_server, prompt, mlflow_server, owner, reviewer
):
    mlflow_sync(server=governed_server, context=CLI)
    model = RegisteredModel.objects.get(name=portal_name(prompt))
    card = {"intended_use": "Help-centre chat", "limitations": "No legal advice", "primary_metric": "correctness"}
    model_update(model=model, actor=owner, context=CLI, changes=card)
    v2 = model.versions.get(version=2)
    version_update(version=v2, actor=owner, context=CLI, changes={"metrics": {"correctness": 0.9}})
    for version in model.versions.all():  # the safety and quality gates' evidence, on one evaluation set
        upload_demo_evaluation(version, actor=owner, profile="good")
    request = promotion_request(
        version=v2, target_stage=Stage.PRODUCTION, requester=owner, justification="Chat format", context=CLI
    )
    promotion_approve(request=request, reviewer=reviewer, comment="Evaluation passed", context=CLI)
    summary = mlflow_sync(server=governed_server, context=CLI)
    assert summary.errors == [] and summary.aliases_written == 1
    assert prompt_alias(mlflow_server, prompt, "champion") == "2"
    event = AuditEvent.objects.get(model=model, action="mlflow.alias_set")
    assert event.after["mlflow_model"] == prompt and event.after["version"] == "2"
    assert not MlflowAliasViolation.objects.filter(model_link__model=model).exists()


def test_a_prompt_alias_moved_behind_the_portals_back_opens_a_violation(governed_server, prompt, mlflow_admin):
    mlflow_sync(server=governed_server, context=CLI)
    mlflow_admin.set_alias(prompt, "champion", "2")  # nobody approved version 2
    mlflow_sync(server=governed_server, context=CLI)
    violation = MlflowAliasViolation.objects.get(model_link__mlflow_name=prompt, resolved_at=None)
    assert (violation.found_version, violation.expected_version) == ("2", "1")
    assert json.loads(json.dumps(violation.alias)) == "champion"


def test_a_model_search_that_returns_prompts_still_never_imports_them_as_models(governed_server, prompt, prefix):
    # a search filter that selects the prompts themselves: the model sync sees them and skips them
    governed_server.search_filter = f"name LIKE '{prefix}%' AND tags.`mlflow.prompt.is_prompt` = 'true'"
    governed_server.save(update_fields=["search_filter"])
    summary = mlflow_sync(server=governed_server, context=CLI)
    assert summary.errors == []
    assert list(RegisteredModel.objects.values_list("name", "kind")) == [(portal_name(prompt), "llm_app")]
    assert ModelVersion.objects.filter(model__name=portal_name(prompt), llm__isnull=False).count() == 2
