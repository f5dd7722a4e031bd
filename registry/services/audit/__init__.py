"""The audit log: one package, one module per job.

* ``context``: who acts and through what (``AuditContext``, ``WORKER``, ``CLI``, ``acting_as``);
* ``writer``: the chain writer (``audit_record``) and the values it stores;
* ``rows``: the chain's rows as named ``ChainRow`` tuples, read in seq order;
* ``verify``: recomputing the chain (``audit_verify``), and comparing it with a checkpoint;
* ``checkpoint``: the head written outside the table (file, URL);
* ``export``: streamed CSV / JSON Lines exports with their manifest.

Import the names from here (``from registry.services.audit import audit_record``).
"""

from django.db import transaction

from .checkpoint import Checkpoint, CheckpointError, checkpoint_last, checkpoint_write
from .context import CLI, WORKER, AuditContext, acting_as, current_actor
from .export import (
    EXPORT_FORMATS,
    AuditExport,
    audit_export,
    audit_export_rows,
    compliance_report_record_export,
    file_digest,
)
from .rows import ChainRow
from .verify import VerifyResult, audit_verify
from .writer import audit_head, audit_record, audit_save, diff, event_payload, model_snapshot

__all__ = [
    "AuditContext",
    "AuditExport",
    "CLI",
    "ChainRow",
    "Checkpoint",
    "CheckpointError",
    "EXPORT_FORMATS",
    "WORKER",
    "VerifyResult",
    "acting_as",
    "current_actor",
    "audit_export",
    "audit_export_rows",
    "audit_head",
    "audit_record",
    "audit_save",
    "audit_verify",
    "checkpoint_last",
    "checkpoint_write",
    "compliance_report_record_export",
    "file_digest",
    "diff",
    "event_payload",
    "model_snapshot",
    "transaction",
]
