"""Downloads of the records of processing (GDPR Art. 30): every model's purpose, categories of
data, retention and who sees it. A download is audited as the audit export and the compliance
report are, with the file's SHA-256 and size; the page that shows them is not a download."""

from __future__ import annotations

from django.db import transaction

from registry.models import AuditEvent
from registry.services.audit import AuditContext, audit_record, file_digest


@transaction.atomic
def records_of_processing_record_export(
    *, actor, context: AuditContext, fmt: str, records: int, content: bytes
) -> AuditEvent:
    """Record ``privacy.records_exported``: the format, how many records (one per model) and the
    file's ``sha256`` and ``bytes``; a copy whose digest is not in the chain is not the portal's."""
    return audit_record(
        actor=actor,
        action="privacy.records_exported",
        context=context,
        object_type="monitoring.records_of_processing",
        object_repr=f"records of processing ({fmt})",
        after={"format": fmt, "records": records, **file_digest(content)},
    )
