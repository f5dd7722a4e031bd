"""LLM applications' versions: registration with their parts (API and service), the content
hash, strict validation with nothing written, immutability, and permissions per role."""

from __future__ import annotations

import json

import pytest

from registry.models import AuditEvent, ModelVersion
from registry.models_llm import LLMAppVersion, llm_content_hash
from registry.services.audit import CLI
from registry.services.inventory import version_create
from registry.services.llm_versions import DuplicateLLMVersion, llm_parts_clean
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.registry.llm_parts import PARTS_V1, parts

from .test_api_inventory import assert_error, post_json

URL = "/api/v1/models/assistant/versions/"


@pytest.fixture
def assistant(db, owner, team):
    return RegisteredModelFactory(name="assistant", kind="llm_app", owner=owner, team=team)


def test_same_parts_give_the_same_hash_whatever_the_key_order():
    reordered = {
        "safety": {"blocked_topics": ["medical", "legal"], "rules": ["no-pii-in-answers", "refuse-legal-advice"]},
        "tools": [{"schema": PARTS_V1["tools"][0]["schema"], "name": "lookup_order"}],
        "retrieval": {"embedding_model": "text-embedding-3-small", "version": "2026-10", "name": "help-center"},
        "llm": {"parameters": {"max_tokens": 512, "temperature": 0.2}, "model": "gpt-4.1-mini", "provider": "openai"},
        "prompts": [{"template": p["template"], "name": p["name"]} for p in PARTS_V1["prompts"]],
    }
    a, b = llm_parts_clean(parts()), llm_parts_clean(reordered)
    assert llm_content_hash(a) == llm_content_hash(b)
    assert a["prompts"][0]["variables"] == ["product"]
    assert a["prompts"][1]["variables"] == ["question", "context"]
    edited = parts(llm={**PARTS_V1["llm"], "parameters": {"temperature": 0.3, "max_tokens": 512}})
    assert llm_content_hash(llm_parts_clean(edited)) != llm_content_hash(a)


def test_api_registers_the_parts_in_the_version_and_an_edit_is_a_new_version(owner, assistant, api_client_for):
    client = api_client_for(owner)
    response = post_json(client, URL, {"description": "first", **parts()})
    assert response.status_code == 201, response.content
    body = response.json()
    stored = LLMAppVersion.objects.get(version__model=assistant, version__version=1)
    assert body["content_hash"] == stored.content_hash == llm_content_hash(stored.parts)
    assert body["prompts"][1]["variables"] == ["question", "context"]
    assert body["llm"]["model"] == "gpt-4.1-mini" and stored.provider == "openai" and stored.model_id == "gpt-4.1-mini"
    assert body["tools"][0]["name"] == "lookup_order"
    event = AuditEvent.objects.filter(action="version.registered").latest("seq")
    assert event.after["content_hash"] == stored.content_hash

    edited = parts()
    edited["prompts"][0]["template"] = "You are a concise support assistant for {{product}}."
    second = post_json(client, URL, edited)
    assert second.status_code == 201, second.content
    assert second.json()["version"] == 2
    assert second.json()["content_hash"] != body["content_hash"]
    # reading back: the detail and the list carry the parts
    detail = client.get(f"{URL}2/").json()
    assert detail["prompts"][0]["template"].startswith("You are a concise")
    assert [v["content_hash"] for v in client.get(URL).json()["results"]] == [
        second.json()["content_hash"],
        body["content_hash"],
    ]


def test_identical_parts_are_a_409_naming_the_existing_version(owner, assistant, api_client_for):
    client = api_client_for(owner)
    first = post_json(client, URL, parts())
    assert first.status_code == 201
    again = post_json(client, URL, {"description": "same again", **json.loads(json.dumps(parts()))})
    error = assert_error(again, 409)
    assert error["details"]["existing_version"] == 1
    assert "version 1" in error["message"]
    assert ModelVersion.objects.filter(model=assistant).count() == 1


def test_service_refuses_a_duplicate_too(owner, assistant):
    version_create(model=assistant, actor=owner, context=CLI, **parts())
    with pytest.raises(DuplicateLLMVersion) as info:
        version_create(model=assistant, actor=owner, context=CLI, **parts())
    assert info.value.existing == 1


BAD_BODIES = [
    ({**parts(), "prompts": []}, "prompts"),
    ({**parts(), "prompts": "hello"}, "prompts"),
    ({**parts(), "prompts": [{"name": "a", "template": "x", "colour": "red"}]}, "prompts"),
    ({**parts(), "prompts": [{"name": "a", "template": "x"}, {"name": "a", "template": "y"}]}, "prompts"),
    ({**parts(), "prompts": [{"name": "a", "template": "{{x}}", "variables": ["y"]}]}, "prompts"),
    ({**parts(), "prompts": [{"name": "a", "template": "x" * 50_001}]}, "prompts"),
    ({**parts(), "prompts": [{"name": 7, "template": "x"}]}, "prompts"),
    ({k: v for k, v in parts().items() if k != "llm"}, "llm"),
    ({**parts(), "llm": {"provider": "openai"}}, "llm"),
    ({**parts(), "llm": {"provider": "openai", "model": "m", "parameters": {"temperature": 5}}}, "llm"),
    ({**parts(), "llm": {"provider": "openai", "model": "m", "parameters": {"max_tokens": "many"}}}, "llm"),
    ({**parts(), "llm": {"provider": "openai", "model": "m", "parameters": {"seed": 10**30}}}, "llm"),
    ({**parts(), "llm": {"provider": "openai", "model": "m", "extra": 1}}, "llm"),
    ({**parts(), "llm": ["openai"]}, "llm"),
    ({**parts(), "retrieval": {"name": "idx", "embedding_model": "e"}}, "retrieval"),
    ({**parts(), "retrieval": {"name": "idx", "version": "1", "embedding_model": "e", "k": 3}}, "retrieval"),
    ({**parts(), "tools": [{"name": "t", "schema": "not an object"}]}, "tools"),
    ({**parts(), "tools": [{"name": "t", "schema": {"type": "thing"}}]}, "tools"),
    ({**parts(), "tools": [{"name": "t", "schema": {}}, {"name": "t", "schema": {}}]}, "tools"),
    ({**parts(), "tools": [{"name": "bad name!", "schema": {}}]}, "tools"),
    ({**parts(), "safety": {"rules": [1]}}, "safety"),
    ({**parts(), "safety": {"rules": [], "blocked_topics": ["a", "a"]}}, "safety"),
    ({**parts(), "safety": {"rules": [], "extra": []}}, "safety"),
    ({k: v for k, v in parts().items() if k != "safety"}, "safety"),
    ({**parts(), "feature_schema": [{"name": "age", "type": "numeric"}]}, "feature_schema"),
    ({**parts(), "task_type": "regression"}, "task_type"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_bodies_are_a_400_naming_the_part_and_write_nothing(owner, assistant, api_client_for, body, field):
    client = api_client_for(owner)
    before = AuditEvent.objects.count()
    response = post_json(client, URL, body)
    assert_error(response, 400, field=field)
    assert not ModelVersion.objects.filter(model=assistant).exists()
    assert not LLMAppVersion.objects.exists()
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    "raw",
    [
        '{"prompts": [{"name": "a", "template": "x\\u0000"}], "llm": {"provider": "p", "model": "m"}, "safety": {}}',
        '{"prompts": [{"name": "a", "template": "x"}], "llm": {"provider": "p", "model": "m",'
        ' "parameters": {"temperature": NaN}}, "safety": {}}',
        '{"prompts": [{"name": "a", "template": "x"}], "llm": {"provider": "p", "model": "m",'
        ' "parameters": {"top_k": 1e999}}, "safety": {}}',
    ],
)
def test_nul_characters_and_nan_are_refused(owner, assistant, api_client_for, raw):
    response = api_client_for(owner).post(URL, data=raw, content_type="application/json")
    assert_error(response, 400)
    assert not LLMAppVersion.objects.exists()


def test_an_ml_model_refuses_llm_parts_naming_them(owner, churn, api_client_for):
    body = {"artifact_uri": "s3://x/model.pkl", "prompts": PARTS_V1["prompts"], "llm": PARTS_V1["llm"]}
    error = assert_error(post_json(api_client_for(owner), "/api/v1/models/churn/versions/", body), 400)
    assert set(error["details"]) == {"prompts", "llm"}
    assert not ModelVersion.objects.filter(model=churn).exists()


def test_ml_versions_still_need_a_reference_and_show_null_parts(owner, churn, api_client_for):
    client = api_client_for(owner)
    assert_error(post_json(client, "/api/v1/models/churn/versions/", {"description": "x"}), 400, field="artifact_uri")
    created = post_json(client, "/api/v1/models/churn/versions/", {"artifact_uri": "s3://x/model.pkl"})
    assert created.status_code == 201
    assert created.json()["content_hash"] is None and created.json()["prompts"] is None


def test_llm_versions_need_no_artifact_and_pass_the_lineage_gate(owner, assistant, api_client_for):
    from registry.selectors.promotions import _lineage_gate

    response = post_json(api_client_for(owner), URL, parts())
    assert response.status_code == 201
    version = ModelVersion.objects.select_related("llm", "model").get(model=assistant)
    assert version.has_lineage
    assert _lineage_gate(version, {"require_lineage": True})["status"] == "pass"


@pytest.mark.parametrize("field", ["prompts", "llm", "safety", "tools", "retrieval"])
def test_patch_may_not_change_the_parts(owner, assistant, api_client_for, field):
    client = api_client_for(owner)
    created = post_json(client, URL, parts()).json()
    response = post_json(client, f"{URL}1/", {field: PARTS_V1[field], "description": "x"}, method="patch")
    error = assert_error(response, 400)
    assert "immutable" in error["message"]
    assert client.get(f"{URL}1/").json()["content_hash"] == created["content_hash"]
    # metadata may still change
    ok = post_json(client, f"{URL}1/", {"description": "edited"}, method="patch")
    assert ok.status_code == 200 and ok.json()["content_hash"] == created["content_hash"]


ROLES = ["owner", "reviewer", "auditor", "admin", "outsider"]


@pytest.mark.parametrize("role", ROLES)
def test_permissions_per_role(roles, role, owner, assistant, api_client_for):
    version_create(model=assistant, actor=owner, context=CLI, **parts())
    client = api_client_for(roles[role])
    read = client.get(f"{URL}1/")
    diff = client.get(f"{URL}1/diff/?against=1")
    edited = parts(llm={"provider": "openai", "model": "gpt-4.1"})
    write = post_json(client, URL, edited)
    if role == "outsider":
        assert_error(read, 404)
        assert_error(diff, 404)
        assert_error(write, 403)  # its token cannot hold models:write
        return
    assert read.status_code == 200 and read.json()["content_hash"]
    assert diff.status_code == 200 and diff.json()["changed"] is False
    if role in ("owner", "admin"):
        assert write.status_code == 201, write.content
    else:
        assert_error(write, 403)
        assert ModelVersion.objects.filter(model=assistant).count() == 1


def test_version_page_shows_parts_for_each_role(roles, owner, assistant, client_for):
    version_create(model=assistant, actor=owner, context=CLI, **parts())
    for role in ROLES:
        response = client_for(roles[role]).get("/models/assistant/versions/1/")
        if role == "outsider":
            assert response.status_code == 404
        else:
            assert response.status_code == 200
            assert b"lookup_order" in response.content and b"gpt-4.1-mini" in response.content


def test_factory_ml_versions_are_untouched(churn):
    version = ModelVersionFactory(model=churn)
    assert getattr(version, "llm", None) is None


def test_null_optional_parts_are_absent_parts(owner, assistant, api_client_for):
    body = {**parts(), "retrieval": None, "tools": None}
    response = post_json(api_client_for(owner), URL, body)
    assert response.status_code == 201, response.content
    assert response.json()["retrieval"] is None and response.json()["tools"] == []


def test_the_html_form_registers_an_llm_version_prefilled_with_the_latest_parts(owner, assistant, client_for):
    client = client_for(owner)
    page = client.get("/models/assistant/versions/new/")
    assert page.status_code == 200 and b"feature_schema" not in page.content
    version_create(model=assistant, actor=owner, context=CLI, **parts())
    form = client.get("/models/assistant/versions/new/").context["form"]
    assert form.initial["llm"]["model"] == "gpt-4.1-mini"
    posted = {name: json.dumps(value) for name, value in parts().items()}
    # the same parts again: refused, naming the version
    again = client.post("/models/assistant/versions/new/", {**posted, "description": "same"})
    assert again.status_code == 400 and "identical to version 1" in again.content.decode()
    posted["llm"] = json.dumps({"provider": "openai", "model": "gpt-4.1", "parameters": {"temperature": 0.2}})
    created = client.post("/models/assistant/versions/new/", {**posted, "description": "bigger model", "metrics": ""})
    assert created.status_code == 302
    assert LLMAppVersion.objects.get(version__version=2).model_id == "gpt-4.1"
    bad = client.post("/models/assistant/versions/new/", {**posted, "tools": '[{"name": "x"}]'})
    assert bad.status_code == 400 and ModelVersion.objects.filter(model=assistant).count() == 2


def test_the_html_form_does_not_carry_the_latest_versions_metrics_into_the_next(owner, assistant, client_for):
    """Evaluation results belong to the version they were measured on: a new version starts
    without metrics (as an ML version does), whatever its parts are prefilled with."""
    version_create(model=assistant, actor=owner, context=CLI, metrics={"correctness": 0.91}, **parts())
    client = client_for(owner)
    page = client.get("/models/assistant/versions/new/")
    form = page.context["form"]
    assert form.initial["llm"]["model"] == "gpt-4.1-mini" and not form.initial.get("metrics")
    assert "0.91" not in page.content.decode()
    posted = {name: json.dumps(value) for name, value in parts().items()}
    posted["llm"] = json.dumps({**PARTS_V1["llm"], "parameters": {"temperature": 0.7, "max_tokens": 512}})
    posted["metrics"] = form["metrics"].value() or ""
    assert client.post("/models/assistant/versions/new/", posted).status_code == 302
    assert ModelVersion.objects.get(model=assistant, version=2).metrics == {}
