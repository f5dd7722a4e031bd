"""All writes of the registry app. Each public service is keyword-only, runs in one
transaction and records its audit event inside it (see ``audit.audit_record``)."""
