"""The Python client and the command line against the real running portal (live_server,
PostgreSQL): what a CI pipeline does instead of curl, and the exit codes it relies on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlops_portal_client import PortalClient, PortalError
from registry.choices import PromotionStatus, Stage
from registry.models import AuditEvent, ModelVersion, PromotionRequest
from registry.rules import usable_scopes
from registry.services.audit import CLI
from registry.services.tokens import token_create

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _token(user, scopes=None) -> str:
    """A token with ``scopes`` or every scope the user's roles can use."""
    scopes = scopes or usable_scopes(user)
    return token_create(user=user, name="ci", scopes=scopes, expires_at=None, actor=user, context=CLI)[1]


def cli(live_server, token: str, *args: str, url: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlops_portal_client", "--url", url or live_server.url, "--token", token, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


LINEAGE = {
    "source_commit": "c0ffee" * 6 + "abcd",
    "training_run_id": "run-42",
    "training_data_ref": "s3://data/churn/2026-11.parquet",
    "training_data_hash": "sha256:" + "ab" * 32,
    "metrics": {"roc_auc": 0.9, "accuracy": 0.84},
    "feature_schema": [{"name": "tenure", "type": "numeric"}, {"name": "plan", "type": "categorical"}],
    "task_type": "binary",
}


def test_client_registers_a_model_and_a_version_with_lineage(live_server, owner, team):
    portal = PortalClient(live_server.url, _token(owner))
    portal.ensure_model(
        "fraud", team=team.slug, description="Flags fraud", intended_use="Review queue", limitations="EU only"
    )
    created = portal.register_version("fraud", **LINEAGE)
    assert created["version"] == 1
    stored = ModelVersion.objects.get(model__name="fraud", version=1)
    assert stored.training_run_id == "run-42" and stored.metrics["roc_auc"] == 0.9
    assert portal.get_version("fraud", 1)["source_commit"] == LINEAGE["source_commit"]
    # ensure_model is idempotent: the second call reads, it does not register again
    portal.ensure_model("fraud", team=team.slug)
    assert AuditEvent.objects.filter(action="model.created", model_name="fraud").count() == 1


def test_client_registers_llm_versions_and_reads_their_diff(live_server, owner, team):
    from tests.registry.llm_parts import parts

    portal = PortalClient(live_server.url, _token(owner), retries=0)
    portal.register_model("assistant", kind="llm_app", team=team.slug)
    first = portal.register_version("assistant", **parts())
    second = portal.register_version("assistant", **parts(llm={"provider": "openai", "model": "gpt-4.1"}))
    assert first["content_hash"] != second["content_hash"]
    diff = portal.version_diff("assistant", 2, against=1)
    assert diff["llm"]["model"] == {"old": "gpt-4.1-mini", "new": "gpt-4.1"}
    with pytest.raises(PortalError) as caught:
        portal.register_version("assistant", **parts())
    assert caught.value.status == 409 and caught.value.details["existing_version"] == 1


def test_client_raises_the_apis_error_for_bad_input(live_server, owner, team):
    portal = PortalClient(live_server.url, _token(owner), retries=0)
    with pytest.raises(PortalError) as caught:
        portal.register_version("no-such-model", **LINEAGE)
    assert caught.value.status == 404 and caught.value.code == "not_found"
    with pytest.raises(PortalError) as caught:
        portal.register_model("Bad Name!", team=team.slug)
    assert caught.value.status == 400 and "name" in caught.value.details


def test_cli_promote_exit_codes_follow_the_decision(live_server, churn, churn_v1, owner, reviewer):
    owner_token, reviewer_token = _token(owner), _token(reviewer)
    pending = cli(live_server, owner_token, "promote", "churn", "1", "--to", "production", "--reason", "Better AUC")
    assert pending.returncode == 2, pending.stderr
    request = PromotionRequest.objects.get(version=churn_v1)
    assert request.status == PromotionStatus.PENDING

    # the requester cannot approve their own request, even from the command line's client
    with pytest.raises(PortalError) as caught:
        PortalClient(live_server.url, owner_token, retries=0).request(
            "POST", f"promotions/{request.pk}/approve/", json_body={"comment": "mine"}
        )
    assert caught.value.status == 403

    PortalClient(live_server.url, reviewer_token).request(
        "POST", f"promotions/{request.pk}/approve/", json_body={"comment": "Evidence checked"}
    )
    done = cli(live_server, owner_token, "status", str(request.pk))
    assert done.returncode == 0, done.stderr
    churn_v1.refresh_from_db()
    assert churn_v1.stage == Stage.PRODUCTION


def test_cli_wait_reports_a_rejection_with_exit_code_3(live_server, churn, churn_v1, owner, reviewer):
    owner_token = _token(owner)
    pending = cli(live_server, owner_token, "promote", "churn", "1", "--to", "staging", "--reason", "Try it")
    request = PromotionRequest.objects.get(version=churn_v1)
    PortalClient(live_server.url, _token(reviewer)).request(
        "POST", f"promotions/{request.pk}/reject/", json_body={"comment": "Lineage incomplete"}
    )
    waited = cli(live_server, owner_token, "status", str(request.pk))
    assert (pending.returncode, waited.returncode) == (2, 3)


def test_cli_refused_and_unreachable_have_distinct_exit_codes(live_server, churn, owner):
    token = _token(owner)
    refused = cli(live_server, token, "promote", "churn", "99", "--reason", "x")
    assert refused.returncode == 4 and "error" in refused.stderr
    unreachable = cli(live_server, token, "health", "churn", url="http://127.0.0.1:9")
    assert unreachable.returncode == 5


def test_client_uploads_reference_and_logs_predictions_and_labels(live_server, churn, owner):
    import pandas as pd

    from monitoring.models import GroundTruth, Prediction, ReferenceProfile
    from registry.services.inventory import version_create

    version = version_create(model=churn, actor=owner, context=CLI, **LINEAGE)
    portal = PortalClient(live_server.url, _token(owner))
    reference = pd.DataFrame({"tenure": [1.0, 5.0, 12.0, 30.0] * 25, "plan": ["basic", "pro", "pro", "max"] * 25})
    portal.upload_reference("churn", version.version, reference)
    stored = ReferenceProfile.objects.get(version=version)
    assert stored.n_rows == 100 and stored.source_format == "parquet"

    rows = [
        {
            "prediction_id": f"p-{i}",
            "timestamp": "2026-11-20T10:00:00Z",
            "features": {"tenure": float(i), "plan": "pro"},
            "prediction": 1,
            "score": 0.7,
        }
        for i in range(7)
    ]
    assert portal.log_predictions("churn", version.version, rows, batch_size=3) == 7
    assert Prediction.objects.filter(version=version).count() == 7
    assert portal.log_labels("churn", [{"prediction_id": f"p-{i}", "label": i % 2} for i in range(7)]) == 7
    assert GroundTruth.objects.filter(model=churn).count() == 7
    assert portal.health("churn").status in {"ok", "warning", "critical", "no_data"}


def test_cli_health_of_a_model_without_data_is_not_ok(live_server, churn, owner):
    """A model with no computed window exited 0, which the README defines as "health ok"."""
    result = cli(live_server, _token(owner), "health", "churn")
    assert result.returncode == 2 and "no_data" in result.stdout, (result.returncode, result.stdout, result.stderr)


def test_cli_sends_a_csv_file_as_text_csv_in_batches_parsed_with_the_models_schema(live_server, churn, owner, tmp_path):
    """The CSV used to be turned into flat JSON records: 'tenure_months: Unknown field', exit 4."""
    from monitoring.models import GroundTruth, IngestBatch, Prediction
    from registry.services.inventory import version_create

    schema = [{"name": "tenure_months", "type": "numeric"}, {"name": "plan", "type": "categorical"}]
    version = version_create(
        model=churn, actor=owner, context=CLI, **{**LINEAGE, "feature_schema": schema, "task_type": "binary"}
    )
    predictions = tmp_path / "predictions.csv"
    predictions.write_text(
        "prediction_id,timestamp,tenure_months,plan,prediction,score\n"
        + "".join(f'p-{i},2026-11-20T10:00:00Z,{i},"pro, yearly",{i % 2},0.{i}\n' for i in range(5)),
        encoding="utf-8",
    )
    token = _token(owner)
    sent = cli(live_server, token, "predictions", "churn", str(version.version), str(predictions), "--batch-size", "2")
    assert sent.returncode == 0, sent.stderr
    assert '"sent": 5' in sent.stdout
    stored = Prediction.objects.get(version=version, prediction_id="p-3")
    assert stored.features == {"tenure_months": 3.0, "plan": "pro, yearly"} and stored.score == 0.3
    assert [b.summary["format"] for b in IngestBatch.objects.filter(version=version)] == ["csv"] * 3

    labels = tmp_path / "labels.csv"
    labels.write_text("prediction_id,label\n" + "".join(f"p-{i},{i % 2}\n" for i in range(5)), encoding="utf-8")
    sent = cli(live_server, token, "labels", "churn", str(labels))
    assert sent.returncode == 0, sent.stderr
    # class labels are stored as text, whatever the format (a JSON 1 too)
    assert GroundTruth.objects.get(model=churn, prediction_id="p-3").label == "1"
    assert GroundTruth.objects.filter(model=churn).count() == 5
