"""Celery tasks of the registry app: thin wrappers over services, taking ids, idempotent.

Services queue these tasks (``mlops_portal.queue.enqueue_on_commit``); the tasks import the
services inside their body, so there is no import circle between the two.
"""

from __future__ import annotations

from celery import shared_task

WEBHOOK_MAX_RETRIES = 5  # after the first try: 6 attempts in all
WEBHOOK_BACKOFF_SECONDS = 30  # first retry after up to 30 s, then 60, 120, … (full jitter)
WEBHOOK_BACKOFF_MAX_SECONDS = 3600


class WebhookNotDelivered(Exception):
    """The receiver did not take the delivery (non-2xx, unreachable, refused): try again later."""


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(WebhookNotDelivered,),
    retry_backoff=WEBHOOK_BACKOFF_SECONDS,
    retry_backoff_max=WEBHOOK_BACKOFF_MAX_SECONDS,
    retry_jitter=True,
    max_retries=WEBHOOK_MAX_RETRIES,
    time_limit=120,
    soft_time_limit=100,
)
def webhook_deliver(self, delivery_id: int) -> str:
    """Send one webhook delivery; Celery retries it with exponential backoff and jitter."""
    from registry.choices import DeliveryStatus
    from registry.services.webhooks import webhook_deliver as deliver

    final = (self.request.retries or 0) >= self.max_retries
    status = deliver(delivery_id=delivery_id, final_attempt=final)
    if status == DeliveryStatus.PENDING:
        raise WebhookNotDelivered(f"delivery {delivery_id} not delivered yet")
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


@shared_task(acks_late=True, ignore_result=True, time_limit=300, soft_time_limit=270)
def mlflow_writeback_model(model_id: int) -> None:
    """Right after a production change in the portal: move the alias on the model's MLflow server.

    Both limits are set: a hard limit below the project's soft limit without its own soft limit
    makes Celery refuse to queue the task (``ValueError``)."""
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
