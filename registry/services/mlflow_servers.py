"""MLflow servers as an admin configures them: where the portal imports models from, into which
team and under which owner, and which alias it moves with production. Every change is audited,
never the server's token (only whether one is set)."""

from __future__ import annotations

from django.db import transaction

from registry.models import MlflowServer

from .audit import AuditContext, audit_record, diff

SERVER_FIELDS = ("name", "tracking_url", "team", "default_owner", "alias", "search_filter", "enabled")


def _state(server: MlflowServer) -> dict:
    return {
        "name": server.name,
        "tracking_url": server.tracking_url,
        "team": server.team.slug if server.team_id else None,
        "default_owner": server.default_owner.get_username() if server.default_owner_id else None,
        "alias": server.alias,
        "search_filter": server.search_filter,
        "enabled": server.enabled,
        "token_set": bool(server.token),
    }


@transaction.atomic
def mlflow_server_save(*, server: MlflowServer, actor, context: AuditContext) -> MlflowServer:
    """Create or change a server: ``mlflow_server.created`` with its settings, or
    ``mlflow_server.changed`` with those that changed (a new token shows as ``token_changed``)."""
    old = MlflowServer.objects.select_related("team", "default_owner").get(pk=server.pk) if server.pk else None
    server.full_clean()
    server.save()
    after = _state(server)
    if old is None:
        audit_record(actor=actor, action="mlflow_server.created", obj=server, context=context, after=after)
        return server
    was, now = diff(_state(old), after)
    if old.token != server.token and "token_set" not in now:
        was["token_changed"], now["token_changed"] = False, True
    if now:
        audit_record(actor=actor, action="mlflow_server.changed", obj=server, context=context, before=was, after=now)
    return server


@transaction.atomic
def mlflow_server_delete(*, server: MlflowServer, actor, context: AuditContext) -> None:
    audit_record(actor=actor, action="mlflow_server.deleted", obj=server, context=context, before=_state(server))
    server.delete()
