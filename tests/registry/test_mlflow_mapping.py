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
