"""The manager of the raw tables partitioned by day on PostgreSQL (``Prediction`` on
``timestamp``, ``GroundTruth`` on ``received_at``): ORM writes make sure the rows' daily
partitions exist first, as ingestion does; a no-op on SQLite."""

from datetime import datetime

from django.db import models


class PartitionedQuerySet(models.QuerySet):
    time_field = "timestamp"

    def _ensure_partitions(self, stamps) -> None:
        from monitoring.services import partitions

        partitions.ensure_for_datetimes(table=self.model._meta.db_table, stamps=stamps)

    def create(self, **kwargs):
        if kwargs.get(self.time_field) is not None:
            self._ensure_partitions([kwargs[self.time_field]])
        return super().create(**kwargs)

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        self._ensure_partitions([getattr(o, self.time_field) for o in objs if getattr(o, self.time_field) is not None])
        return super().bulk_create(objs, *args, **kwargs)

    def update(self, **kwargs):
        if isinstance(kwargs.get(self.time_field), datetime):  # a row moved to another day
            self._ensure_partitions([kwargs[self.time_field]])
        return super().update(**kwargs)


class LabelQuerySet(PartitionedQuerySet):
    time_field = "received_at"
