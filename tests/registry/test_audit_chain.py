import pytest
from django.db import IntegrityError, connection, transaction

from registry.choices import Stage
from registry.models import AuditEvent
from registry.services.audit import CLI, audit_record, event_payload
from registry.verify_export import GENESIS_HASH, event_hash
from tests.factories import ModelVersionFactory


def test_audit_events_chain_from_genesis(churn, owner):
    with transaction.atomic():
        first = audit_record(actor=owner, action="model.created", obj=churn, context=CLI, after={"name": "churn"})
        second = audit_record(
            actor=owner, action="model.updated", obj=churn, context=CLI, before={"a": 1}, after={"a": 2}
        )
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert second.seq == first.seq + 1
    stored = AuditEvent.objects.get(seq=second.seq)
    assert event_hash(stored.prev_hash, event_payload(stored)) == stored.hash
    assert stored.model_name == "churn"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_audit_record_refuses_to_run_outside_a_transaction(churn, owner):
    with pytest.raises(RuntimeError):
        audit_record(actor=owner, action="x", obj=churn, context=CLI)


def test_database_refuses_update_and_delete_of_audit_events(churn, owner):
    with transaction.atomic():
        event = audit_record(actor=owner, action="model.created", obj=churn, context=CLI)
    with pytest.raises(Exception, match="append-only"):
        with transaction.atomic():
            AuditEvent.objects.filter(seq=event.seq).update(action="tampered")
    with pytest.raises(Exception, match="append-only"):
        with transaction.atomic():
            AuditEvent.objects.filter(seq=event.seq).delete()
    assert connection.vendor in ("postgresql", "sqlite")


def test_database_allows_only_one_production_version_per_model(churn):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
