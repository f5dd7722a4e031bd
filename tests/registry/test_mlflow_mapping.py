"""How MLflow's registry entities map onto the portal's (no server needed)."""

from registry.choices import TaskType
from registry.mlflow_client import alias_version, tags_dict
from registry.services.mlflow_sync import _lineage, portal_name, portal_tags


def test_mlflow_names_become_valid_portal_slugs():
    assert portal_name("Churn Classifier (EU)") == "churn-classifier-eu"
    assert portal_name("fraud_v2") == "fraud_v2"
    assert portal_name("!!!") == "model"


def test_mlflow_tags_become_portal_tags_without_mlflow_internals():
    assert portal_tags({"domain": "retention", "pii": "", "mlflow.user": "x", "gdpr": "true"}) == [
        "domain-retention",
        "gdpr",
        "pii",
    ]


def test_lineage_takes_commit_params_and_finite_metrics_from_the_run():
    run = {
        "data": {
            "params": [{"key": "training_data", "value": "s3://d/x.parquet"}],
            "tags": [{"key": "mlflow.source.git.commit", "value": "abc123"}],
            "metrics": [{"key": "rmse", "value": 3.2}, {"key": "bad", "value": float("nan")}],
        }
    }
    fields = _lineage({"version": "3", "run_id": "r1", "source": "runs:/r1/model", "description": "d"}, run)
    assert fields["source_commit"] == "abc123"
    assert fields["training_data_ref"] == "s3://d/x.parquet"
    assert fields["metrics"] == {"rmse": 3.2}
    assert fields["task_type"] == TaskType.REGRESSION
    assert fields["artifact_uri"] == "runs:/r1/model"


def test_aliases_and_tags_are_read_from_mlflow_lists():
    entity = {"aliases": [{"alias": "champion", "version": "4"}], "tags": [{"key": "a", "value": "b"}]}
    assert alias_version(entity, "champion") == "4"
    assert alias_version(entity, "challenger") == ""
    assert tags_dict(entity) == {"a": "b"}


def test_prompts_are_recognised_by_their_tag_and_mapped_to_llm_parts():
    from registry.services.llm_versions import llm_parts_clean
    from registry.services.mlflow_prompts import is_prompt, prompt_version_fields

    assert is_prompt({"tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]})
    assert not is_prompt({"tags": [{"key": "mlflow.prompt.is_prompt", "value": "false"}]})
    assert not is_prompt({"name": "churn"})
    config = '{"provider": "anthropic", "model_name": "claude-x", "temperature": 0.1, "stop": ["\\n"], "x": NaN}'
    text = {
        "description": "v1",
        "tags": [
            {"key": "mlflow.prompt.text", "value": "Hi {{ name }}"},
            {"key": "_mlflow_prompt_type", "value": "text"},
            {"key": "_mlflow_prompt_model_config", "value": config},
        ],
    }
    fields = prompt_version_fields("greeting", text)
    assert fields["prompts"] == [{"name": "greeting", "template": "Hi {{ name }}"}]
    assert fields["llm"] == {"provider": "anthropic", "model": "claude-x", "parameters": {"temperature": 0.1}}
    assert llm_parts_clean(fields)["prompts"][0]["variables"] == ["name"]
    chat = {
        "tags": [
            {
                "key": "mlflow.prompt.text",
                "value": '[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]',
            },
            {"key": "_mlflow_prompt_type", "value": "chat"},
        ]
    }
    fields = prompt_version_fields("greeting", chat)
    assert [p["name"] for p in fields["prompts"]] == ["user", "user-2"]
    assert fields["llm"] == {"provider": "unspecified", "model": "unspecified", "parameters": {}}
    assert fields["safety"] == {"rules": [], "blocked_topics": []}


def test_an_mlflow_description_longer_than_a_card_holds_is_cut_to_the_limit():
    from registry.limits import CARD_TEXT_MAX_LENGTH
    from registry.services.mlflow_sync import remote_description

    long = "x" * (CARD_TEXT_MAX_LENGTH + 10)
    assert _lineage({"version": "1", "description": long}, {})["description"] == "x" * CARD_TEXT_MAX_LENGTH
    assert remote_description({"description": long}) == "x" * CARD_TEXT_MAX_LENGTH
    assert remote_description({"description": None}) == ""
