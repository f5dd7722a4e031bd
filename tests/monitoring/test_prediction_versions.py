"""A prediction always names a model version that exists, on both databases: a row naming
another is refused, a version that still has predictions cannot be deleted, and Django's
cascade deletes a version's predictions with it. On PostgreSQL the check is made once per
statement by the keys' trigger and a constraint trigger on the versions table (migration
0031), not by a foreign key checked once per row; SQLite keeps its foreign key."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from monitoring.models import Prediction
from registry.models import ModelVersion
from tests.factories import ModelVersionFactory
from tests.monitoring.helpers import T0, ingest_predictions, prediction_records

pytestmark = pytest.mark.django_db


def a_row(version_id: int, prediction_id: str) -> Prediction:
    return Prediction(version_id=version_id, prediction_id=prediction_id, timestamp=T0, features={}, received_at=T0)


def test_rows_naming_a_version_that_does_not_exist_are_refused_with_the_batch(churn_v1):
    missing = ModelVersion.objects.order_by("-pk").first().pk + 1000
    with pytest.raises(IntegrityError), transaction.atomic():
        Prediction.objects.bulk_create([a_row(churn_v1.pk, "fine"), a_row(missing, "orphan")])
        connection.check_constraints()
    assert not Prediction.objects.exists()


def test_a_version_with_predictions_cannot_be_deleted_behind_the_orms_back(churn):
    version = ModelVersionFactory(model=churn)
    Prediction.objects.bulk_create([a_row(version.pk, "p1")])
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {ModelVersion._meta.db_table} WHERE id = %s", [version.pk])
        connection.check_constraints()
    assert ModelVersion.objects.filter(pk=version.pk).exists()


def test_deleting_a_version_deletes_its_predictions_and_leaves_the_others(churn, churn_v1, owner):
    ingest_predictions(churn_v1, prediction_records(5, prefix="kept"), owner)
    gone = ModelVersionFactory(model=churn)
    Prediction.objects.bulk_create([a_row(gone.pk, f"gone{i}") for i in range(3)])
    with transaction.atomic():
        gone.delete()
        connection.check_constraints()
    assert not Prediction.objects.filter(version_id=gone.pk).exists()
    assert Prediction.objects.filter(version=churn_v1).count() == 5
