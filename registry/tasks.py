"""Celery tasks of the registry app: thin wrappers over services, taking ids, idempotent."""

from __future__ import annotations

from celery import shared_task

from registry.choices import DeliveryStatus
from registry.services import webhooks


@shared_task(bind=True, max_retries=webhooks.MAX_ATTEMPTS - 1, acks_late=True, ignore_result=True)
def webhook_deliver(self, delivery_id: int) -> str:
    """Send one webhook delivery; on failure retry with exponential backoff (30 s, 60 s, …)."""
    retries = self.request.retries or 0
    final = retries >= self.max_retries
    countdown = webhooks.backoff_seconds(retries)
    status = webhooks.webhook_deliver(delivery_id=delivery_id, final_attempt=final, next_retry_in=countdown)
    if status == DeliveryStatus.PENDING and not final:
        raise self.retry(countdown=countdown)
    return status


# --- MLflow registry sync -----------------------------------------------------------------


@shared_task(acks_late=True, ignore_result=True, time_limit=900, soft_time_limit=840)
def mlflow_sync_all() -> int:
    """Periodic: write back decisions and import from every enabled MLflow server."""
    from registry.models import MlflowServer
    from registry.services.audit import WORKER
    from registry.services.mlflow_sync import mlflow_sync

    servers = list(MlflowServer.objects.filter(enabled=True).select_related("team", "default_owner"))
    for server in servers:
        mlflow_sync(server=server, context=WORKER)
    return len(servers)


@shared_task(acks_late=True, ignore_result=True, time_limit=300)
def mlflow_writeback_model(model_id: int) -> None:
    """Right after a production change in the portal: move the alias on the model's MLflow server."""
    from registry.mlflow_client import MlflowUnavailable
    from registry.models import MlflowModelLink
    from registry.services.audit import WORKER
    from registry.services.mlflow_sync import mlflow_writeback

    link = MlflowModelLink.objects.select_related("server").filter(model_id=model_id, server__enabled=True).first()
    if link is None:
        return
    try:
        mlflow_writeback(server=link.server, context=WORKER)
    except MlflowUnavailable:
        pass  # recorded on the version link; the periodic sync retries


# --- Audit chain checkpoints --------------------------------------------------------------


@shared_task(acks_late=True, ignore_result=True, time_limit=120, soft_time_limit=90)
def audit_checkpoint() -> int:
    """Periodic: record the audit chain's head outside the table (file and/or URL)."""
    from registry.services.audit import checkpoint_write

    return checkpoint_write().checkpoint.seq
