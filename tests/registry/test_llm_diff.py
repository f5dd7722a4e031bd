"""The diff of an LLM application's version against production: the prompt's text diff,
changed parameters, hosted model, tools added or removed, retrieval and safety changes; on the
version page and in the API."""

from __future__ import annotations

import copy

import pytest

from registry.choices import Stage
from registry.demo_llm import support_assistant_versions
from registry.models import ModelVersion
from registry.selectors.llm import llm_comparison_base, llm_version_diff
from registry.services.audit import CLI
from registry.services.inventory import version_create
from tests.factories import RegisteredModelFactory

from .test_api_inventory import assert_error

URL = "/api/v1/models/support-assistant/versions/"


@pytest.fixture
def assistant(db, owner, team):
    model = RegisteredModelFactory(name="support-assistant", kind="llm_app", owner=owner, team=team)
    for spec in support_assistant_versions():
        version_create(model=model, actor=owner, context=CLI, **spec)
    ModelVersion.objects.filter(model=model, version=2).update(stage=Stage.PRODUCTION)
    return model


def _version(number):
    return ModelVersion.objects.select_related("llm", "model").get(model__name="support-assistant", version=number)


def test_v2_against_v1_shows_the_prompt_text_diff_the_hosted_model_and_the_parameters(assistant):
    diff = llm_version_diff(_version(2), _version(1))
    assert diff["changed"] is True and diff["against"] == 1
    system, answer = diff["prompts"]
    assert (system["name"], system["status"]) == ("system", "changed")
    assert answer["status"] == "unchanged" and answer["diff"] == []
    removed = [line for line in system["diff"] if line.startswith("-") and not line.startswith("---")]
    added = [line for line in system["diff"] if line.startswith("+") and not line.startswith("+++")]
    assert "-You are the support assistant of {{product}}." in removed
    assert "+Answer briefly and in plain words, using only the help-centre articles below." in added
    # unchanged lines are context, not changes
    assert not any("Never ask for passwords" in line for line in removed + added)
    assert diff["llm"]["provider"] is None
    assert diff["llm"]["model"] == {"old": "gpt-4.1-mini", "new": "gpt-4.1"}
    assert diff["llm"]["hosted_model"] == {"old": "openai/gpt-4.1-mini", "new": "openai/gpt-4.1"}
    assert diff["llm"]["parameters"] == [{"name": "temperature", "status": "changed", "old": 0.4, "new": 0.2}]
    assert diff["tools"] == [] and diff["retrieval"] is None
    assert diff["safety"] == {
        "rules_added": [],
        "rules_removed": [],
        "rules_changed": [],
        "topics_added": [],
        "topics_removed": [],
    }


def test_v3_against_production_shows_the_tool_added_and_the_safety_loosened(assistant):
    v3 = _version(3)
    base = llm_comparison_base(v3)
    assert base.version == 2  # the production version
    diff = llm_version_diff(v3, base)
    assert [(t["name"], t["status"]) for t in diff["tools"]] == [("issue_refund", "added")]
    assert diff["safety"]["rules_removed"] == ["no-account-actions"]
    assert diff["safety"]["topics_removed"] == ["billing disputes"]
    assert all(p["status"] == "unchanged" for p in diff["prompts"])
    assert diff["llm"]["parameters"] == [] and diff["llm"]["hosted_model"] is None


def test_removed_and_added_prompts_parameters_tools_and_retrieval(owner, assistant):
    spec = support_assistant_versions()[2]
    spec["prompts"] = [spec["prompts"][0], {"name": "follow_up", "template": "Anything else about {{topic}}?"}]
    spec["llm"] = copy.deepcopy(spec["llm"])
    del spec["llm"]["parameters"]["max_tokens"]
    spec["llm"]["parameters"]["top_p"] = 0.9
    spec["tools"] = [spec["tools"][1]]
    spec["retrieval"] = None
    v4 = version_create(model=assistant, actor=owner, context=CLI, **spec)
    diff = llm_version_diff(_version(v4.version), _version(2))
    statuses = {p["name"]: p["status"] for p in diff["prompts"]}
    assert statuses == {"system": "unchanged", "follow_up": "added", "answer": "removed"}
    follow_up = next(p for p in diff["prompts"] if p["name"] == "follow_up")
    assert "+Anything else about {{topic}}?" in follow_up["diff"] and follow_up["variables_added"] == ["topic"]
    assert {(c["name"], c["status"]) for c in diff["llm"]["parameters"]} == {
        ("max_tokens", "removed"),
        ("top_p", "added"),
    }
    assert [(t["name"], t["status"]) for t in diff["tools"]] == [
        ("issue_refund", "added"),
        ("lookup_subscription", "removed"),
    ]
    assert diff["retrieval"]["new"] is None and diff["retrieval_labels"]["new"] == "none"


def test_a_tool_schema_change_is_a_changed_tool(owner, assistant):
    spec = support_assistant_versions()[1]
    spec["tools"][0]["schema"]["properties"]["customer_id"]["pattern"] = "^C[0-9]+$"
    v4 = version_create(model=assistant, actor=owner, context=CLI, **spec)
    diff = llm_version_diff(_version(v4.version), _version(2))
    (tool,) = diff["tools"]
    assert tool["status"] == "changed" and any('"pattern"' in line for line in tool["diff"] if line.startswith("+"))


def test_the_production_version_compares_with_the_previous_one(owner, assistant):
    assert llm_comparison_base(_version(2)).version == 1
    assert llm_comparison_base(_version(1)).version == 2  # any other version: with production
    ModelVersion.objects.filter(model=assistant).update(stage=Stage.NONE)
    assert llm_comparison_base(_version(3)).version == 2  # no production: the previous version
    assert llm_comparison_base(_version(1)) is None


def test_the_version_page_renders_the_diff(owner, assistant, client_for):
    page = client_for(owner).get("/models/support-assistant/versions/3/").content.decode()
    assert "Changes against v2 (production)" in page
    assert "issue_refund</code>: added" in page
    assert "Rules removed: no-account-actions" in page
    page = client_for(owner).get("/models/support-assistant/versions/2/").content.decode()
    assert "openai/gpt-4.1-mini</code> → <code>openai/gpt-4.1</code>" in page
    assert 'class="diff-del">-You are the support assistant of {{product}}.' in page
    assert "temperature" in page


def test_the_diff_api(owner, assistant, api_client_for, churn):
    client = api_client_for(owner)
    default = client.get(f"{URL}3/diff/")
    assert default.status_code == 200 and default.json()["against"] == 2
    explicit = client.get(f"{URL}2/diff/?against=1").json()
    assert explicit["llm"]["model"] == {"old": "gpt-4.1-mini", "new": "gpt-4.1"}
    assert client.get(f"{URL}1/diff/").json()["against"] == 2
    assert_error(client.get(f"{URL}2/diff/?against=abc"), 400, field="against")
    assert_error(client.get(f"{URL}2/diff/?against=9"), 404)
    ModelVersion.objects.create(model=churn, version=1)
    assert_error(client.get("/api/v1/models/churn/versions/1/diff/"), 404)
    assert_error(client.get(f"{URL}2/diff/?against=0"), 400, field="against")
    ModelVersion.objects.filter(model=assistant).update(stage=Stage.NONE)
    assert client.get(f"{URL}1/diff/").json() == {"version": 1, "against": None, "changed": None}


def test_the_demo_registers_support_assistant_through_the_services(owner, team):
    from registry.demo_llm import SUPPORT_ASSISTANT, register_support_assistant

    model = register_support_assistant(users={"owner": owner}, teams={"customer-analytics": team}, context=CLI)
    again = register_support_assistant(users={"owner": owner}, teams={"customer-analytics": team}, context=CLI)
    assert model == again and model.name == SUPPORT_ASSISTANT and model.kind == "llm_app"
    assert "Art. 50 transparency applies" in model.ai_act_category and model.model_card_complete
    hashes = list(model.versions.order_by("version").values_list("llm__content_hash", flat=True))
    assert len(hashes) == len(set(hashes)) == 3
