"""The "Connect a pipeline" snippets: curl, the Python client and its command line, filled with
this portal's URL, the model's name, its next version number and an example prediction built
from the feature schema of its latest version that has one (a placeholder schema when none has).

Every interpolated value is quoted for its language (``shlex.quote`` for the shell, ``repr``
for Python), so a feature named ``it's`` still gives a snippet that runs."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from datetime import datetime
from pprint import pformat
from typing import Any

from registry.choices import FeatureType, TaskType, TokenScope

# What a training and serving pipeline does through the API (DESIGN.md, "ML pipeline").
PIPELINE_SCOPES = [
    TokenScope.MODELS_READ,
    TokenScope.MODELS_WRITE,
    TokenScope.MONITORING_READ,
    TokenScope.MONITORING_WRITE,
    TokenScope.PROMOTIONS_REQUEST,
]
PLACEHOLDER_SCHEMA = [
    {"name": "feature_1", "type": FeatureType.NUMERIC.value},
    {"name": "feature_2", "type": FeatureType.CATEGORICAL.value},
]
EXAMPLE_PREDICTION = {TaskType.BINARY: 1, TaskType.MULTICLASS: "class_a", TaskType.REGRESSION: 12.5}
TOKEN_PLACEHOLDER = "mlp_…"
LINEAGE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass(frozen=True)
class PipelineSetup:
    """What the snippets are filled with."""

    base_url: str
    model: str
    next_version: int
    feature_schema: list[dict[str, Any]]
    task_type: str
    schema_is_placeholder: bool
    schema_from: int | None  # the version whose feature schema the snippets carry
    timestamp: datetime
    token: str | None = None


def pipeline_setup(
    *, base_url: str, model, latest_version, schema_version, timestamp: datetime, token: str | None
) -> PipelineSetup:
    """The snippets' values for ``model``: ``latest_version`` is its newest version, and
    ``schema_version`` its newest one with a feature schema (either None if there is none)."""
    schema = list(schema_version.feature_schema or []) if schema_version is not None else []
    return PipelineSetup(
        base_url=base_url.rstrip("/"),
        model=model.name,
        next_version=(latest_version.version + 1) if latest_version is not None else 1,
        feature_schema=schema or PLACEHOLDER_SCHEMA,
        task_type=latest_version.task_type if latest_version is not None else TaskType.BINARY.value,
        schema_is_placeholder=not schema,
        schema_from=schema_version.version if schema else None,
        timestamp=timestamp,
        token=token,
    )


def example_record(setup: PipelineSetup, prediction_id: str) -> dict[str, Any]:
    """One prediction the ingestion API accepts for the schema: every feature, a prediction of
    the task's kind and, for classifiers, a score."""
    features = {
        f["name"]: 1.0 if f.get("type", FeatureType.NUMERIC) == FeatureType.NUMERIC else "a"
        for f in setup.feature_schema
    }
    record = {
        "prediction_id": prediction_id,
        "timestamp": setup.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "features": features,
        "prediction": EXAMPLE_PREDICTION.get(setup.task_type, 1),
    }
    if setup.task_type != TaskType.REGRESSION:
        record["score"] = 0.8
    return record


def _lineage(setup: PipelineSetup) -> dict[str, Any]:
    return {
        "description": "Registered by the training pipeline.",
        "source_commit": LINEAGE_COMMIT,
        "training_run_id": "run-1",
        "training_data_ref": f"s3://your-bucket/{setup.model}/training.parquet",
        "feature_schema": setup.feature_schema,
        "task_type": setup.task_type,
    }


def _shell_env(setup: PipelineSetup) -> list[str]:
    token = (
        f"export MLOPS_PORTAL_TOKEN={shlex.quote(setup.token)}"
        if setup.token
        else f"# export MLOPS_PORTAL_TOKEN={TOKEN_PLACEHOLDER}   (create a token above: it is shown once)"
    )
    return [f"export MLOPS_PORTAL_URL={shlex.quote(setup.base_url)}", token]


def _curl(path: str, body: Any) -> str:
    url = '"$MLOPS_PORTAL_URL"' + shlex.quote(f"/api/v1/{path}")
    return (
        f"curl -sS --fail-with-body -X POST {url} \\\n"
        '  -H "Authorization: Bearer $MLOPS_PORTAL_TOKEN" -H "Content-Type: application/json" \\\n'
        f"  -d {shlex.quote(json.dumps(body, indent=2))}"
    )


def curl_snippets(setup: PipelineSetup) -> dict[str, str]:
    """``register``: a new version with the schema; ``batch``: one prediction for that version."""
    model = setup.model
    register = "\n".join([*_shell_env(setup), _curl(f"models/{model}/versions/", _lineage(setup))])
    batch_path = f"models/{model}/versions/{setup.next_version}/predictions/"
    batch = "\n".join([*_shell_env(setup), _curl(batch_path, [example_record(setup, "curl-example-1")])])
    return {"register": register, "batch": batch}


def python_snippet(setup: PipelineSetup) -> str:
    """Registers the next version with the Python client, then sends one prediction to it."""
    token = repr(setup.token) if setup.token else 'os.environ["MLOPS_PORTAL_TOKEN"]'
    lineage = {k: v for k, v in _lineage(setup).items() if k != "feature_schema"}
    lines = [
        *([] if setup.token else ["import os", ""]),
        "from mlops_portal_client import PortalClient",
        "",
        f"portal = PortalClient({setup.base_url!r}, token={token})",
        f"MODEL = {setup.model!r}",
        f"FEATURE_SCHEMA = {pformat(setup.feature_schema, width=100, sort_dicts=False)}",
        "",
        "version = portal.register_version(",
        "    MODEL,",
        *(f"    {key}={value!r}," for key, value in lineage.items()),
        "    feature_schema=FEATURE_SCHEMA,",
        ')["version"]',
        'print("registered version", version)',
        "",
        "# from your serving code: predictions in batches (resent safely after a lost answer)",
        f"rows = [{pformat(example_record(setup, 'python-example-1'), width=100, sort_dicts=False)}]",
        'print("sent", portal.log_predictions(MODEL, version, rows), "prediction(s)")',
    ]
    return "\n".join(lines)


HEALTH_EXITS = '"exit $?: 2 warning or no window computed yet, 3 critical"'  # a new model has no window yet


def cli_snippet(setup: PipelineSetup) -> str:
    """The command line: register, send a JSON Lines file, read the model's health."""
    model = shlex.quote(setup.model)
    record = json.dumps(example_record(setup, "cli-example-1"))
    lines = [
        *_shell_env(setup),
        f"echo {shlex.quote(json.dumps(setup.feature_schema))} > schema.json",
        "# your commit and training run id:",
        f"python -m mlops_portal_client register {model} --commit {LINEAGE_COMMIT} --run-id run-1 \\",
        f"  --task-type {shlex.quote(setup.task_type)} --schema @schema.json",
        f"echo {shlex.quote(record)} > predictions.jsonl",
        f"python -m mlops_portal_client predictions {model} {setup.next_version} predictions.jsonl",
        f"python -m mlops_portal_client health {model} || echo {HEALTH_EXITS}",
    ]
    return "\n".join(lines)


def pipeline_snippets(setup: PipelineSetup) -> dict[str, str]:
    """Every snippet the page shows, by key."""
    curl = curl_snippets(setup)
    return {
        "curl_register": curl["register"],
        "curl_batch": curl["batch"],
        "python": python_snippet(setup),
        "cli": cli_snippet(setup),
    }
