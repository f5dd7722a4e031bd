"""The audit log: append-only, hash-chained events. Imported by ``registry.models``."""

from django.conf import settings
from django.db import models

from .choices import AuditSource


def _unconstrained_reference(to) -> models.ForeignKey:
    """An audit event's link to a user or model, without a database constraint: the event is
    append-only and outlives what it names (its ``*_name`` column keeps the name)."""
    return models.ForeignKey(
        to, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )


class AuditEvent(models.Model):
    """Append-only, hash-chained record of every state change.

    ``hash = sha256(prev_hash || canonical_json(event))``. The database refuses
    UPDATE and DELETE (trigger installed by migration). Write only through
    ``registry.services.audit.audit_record``.
    """

    seq = models.PositiveBigIntegerField(primary_key=True)
    timestamp = models.DateTimeField(db_index=True)
    actor = _unconstrained_reference(settings.AUTH_USER_MODEL)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    model = _unconstrained_reference("registry.RegisteredModel")
    model_name = models.CharField(max_length=100, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=10, choices=AuditSource.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    token = models.CharField(max_length=32, blank=True, default="", db_default="")  # context.token_public_id
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["model", "seq"]),
            models.Index(fields=["actor", "seq"]),
            models.Index(fields=["action", "seq"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_repr}"
