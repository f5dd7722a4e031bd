"""Compute dirty monitoring windows now (inline, without a worker) or queue them for the workers.

manage.py monitoring_compute                 # compute every dirty window here, then health
manage.py monitoring_compute --model churn   # first mark all of churn's windows dirty (recompute)
manage.py monitoring_compute --queue         # hand the dirty windows to the Celery workers

A window whose data fails the computation is recorded as failed (with its reason) and
reported; it does not stop the others, and the command still exits 0.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models.functions import TruncHour
from django.utils import timezone

from monitoring import tasks
from monitoring.models import DirtyWindow, Prediction, WindowFailure
from monitoring.services.health import health_evaluate
from monitoring.services.window_marks import dirty_windows_sweep
from monitoring.services.windows import window_compute, windows_mark_dirty
from registry.models import RegisteredModel


class Command(BaseCommand):
    help = "Compute (or queue) dirty monitoring windows; optionally recompute one model from scratch."

    def add_arguments(self, parser):
        parser.add_argument("--model", help="Mark every window of this model's versions dirty first.")
        parser.add_argument("--queue", action="store_true", help="Queue on the Celery broker instead of computing.")

    def handle(self, *args, model=None, queue=False, **options):
        if model:
            found = RegisteredModel.objects.filter(name=model).first()
            if found is None:
                raise CommandError(f"No model named '{model}'.")
            with transaction.atomic():
                for version in found.versions.all():
                    hours = (
                        Prediction.objects.filter(version=version)
                        .annotate(h=TruncHour("timestamp"))
                        .values_list("h", flat=True)
                        .distinct()
                    )
                    windows_mark_dirty(version_id=version.pk, hours=list(hours), slices=None)
        if queue:
            n = tasks.monitoring_sweep_dirty_windows.delay()
            self.stdout.write(f"Queued the sweep ({DirtyWindow.objects.count()} dirty windows): {n}")
            return
        started = timezone.now()
        done = 0
        models: set[int] = set()
        while True:
            claimed = dirty_windows_sweep(limit=1000)
            if not claimed:
                break
            for version_id, start, granularity in claimed:
                window_compute(version_id=version_id, window_start=start, granularity=granularity)
                done += 1
            models.update(
                RegisteredModel.objects.filter(versions__pk__in={c[0] for c in claimed}).values_list("pk", flat=True)
            )
        for model_obj in RegisteredModel.objects.filter(pk__in=models):
            health = health_evaluate(model=model_obj)
            self.stdout.write(f"{model_obj.name}: {health.status}")
        failed = WindowFailure.objects.filter(failed_at__gte=started).select_related("version__model")
        for failure in failed.order_by("version_id", "granularity", "window_start"):
            self.stdout.write(
                self.style.WARNING(
                    f"FAILED {failure.version} {failure.granularity} {failure.window_start.isoformat()}: "
                    f"{failure.reason}"
                )
            )
        self.stdout.write(self.style.SUCCESS(f"Computed {done} windows ({failed.count()} failed)."))
