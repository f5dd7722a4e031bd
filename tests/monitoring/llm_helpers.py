"""Test data for LLM applications: a model of kind llm_app, versions with a provider model, request records."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from registry.choices import ModelKind, Stage, TaskType
from registry.models import StageTransition
from registry.models_llm import LLMAppVersion, llm_content_hash
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import as_json  # noqa: F401  (the LLM tests import it from here)

NOW = datetime.now(UTC).replace(microsecond=0)
STAMP = (NOW - timedelta(hours=1)).isoformat()


def llm_model(owner, team, name: str = "assistant"):
    return RegisteredModelFactory(name=name, owner=owner, team=team, kind=ModelKind.LLM_APP, primary_metric="")


def llm_version(model, *, provider: str = "openai", model_id: str = "gpt-4.1-mini", **kwargs):
    version = ModelVersionFactory(model=model, feature_schema=[], task_type=TaskType.BINARY, metrics={}, **kwargs)
    prompts = [{"name": "system", "template": "Be helpful."}]
    parts = {"prompts": prompts, "llm": {"provider": provider, "model": model_id}}
    LLMAppVersion.objects.create(
        version=version,
        prompts=parts["prompts"],
        llm=parts["llm"],
        provider=provider,
        model_id=model_id,
        content_hash=llm_content_hash({**parts, "llm": {**parts["llm"], "v": version.version}}),
    )
    return version


def support_assistant(owner, team):
    """support-assistant: v1 (gpt-4.1-mini) went to production 81 days ago, v2 (gpt-4.1) replaced it 21 days ago."""
    model = llm_model(owner, team, name="support-assistant")
    v1 = llm_version(model, model_id="gpt-4.1-mini")
    v2 = llm_version(model, model_id="gpt-4.1", stage=Stage.PRODUCTION)
    switch = timezone.now() - timedelta(days=21)
    for version, from_stage, at in ((v1, Stage.NONE, switch - timedelta(days=60)), (v2, Stage.STAGING, switch)):
        transition = StageTransition.objects.create(
            model=model, version=version, from_stage=from_stage, to_stage=Stage.PRODUCTION, actor=owner, reason="go"
        )
        StageTransition.objects.filter(pk=transition.pk).update(created_at=at)
    return model


def request_record(i: int = 0, **overrides) -> dict:
    rec = {
        "request_id": f"q{i}",
        "timestamp": STAMP,
        "tokens_in": 100 + i,
        "tokens_out": 50 + i,
        "latency_ms": 400.0 + i,
        "feedback": 1,
        "safety_flags": [],
    }
    rec.update(overrides)
    return rec


def as_ndjson(records) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


def as_csv(records) -> bytes:
    out = io.StringIO()
    names = list(records[0])
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for rec in records:
        row = dict(rec)
        if isinstance(row.get("safety_flags"), list):
            row["safety_flags"] = ";".join(row["safety_flags"])
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue().encode()
