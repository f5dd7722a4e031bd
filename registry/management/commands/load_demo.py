"""``manage.py load_demo [--sync] [--no-monitoring]``: the demo inventory, idempotently.

Phase 1 (registry): users, teams, two trained models with versions and promotion history.
Phase 2 (monitoring, when that app provides ``monitoring.demo``): reference data and
several weeks of predictions and labels with injected drift; the metrics are computed by
the Celery worker (enqueued), or inline with ``--sync``.
"""

from __future__ import annotations

import importlib
import time

from django.apps import apps
from django.core.management.base import BaseCommand
from django.test.utils import override_settings
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from mlops_portal.db import relaxed_commits
from registry import demo
from registry.demo_llm import replay_demo_until


def _monitoring_demo():
    """The monitoring half of the demo, if the monitoring app ships one (registry never
    imports monitoring at module level)."""
    if not apps.is_installed("monitoring"):
        return None
    try:
        return importlib.import_module("monitoring.demo")
    except ModuleNotFoundError as exc:
        if exc.name == "monitoring.demo":
            return None
        raise


class Command(BaseCommand):
    help = "Load the demo data (idempotent: a second run changes nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--sync", action="store_true", help="Compute monitoring metrics inline, not in a worker.")
        parser.add_argument("--no-monitoring", action="store_true", help="Only the registry part (no predictions).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bars.")
        parser.add_argument(
            "--send-mail", action="store_true", help="Send the workflow's notification e-mails (default: discarded)."
        )

    def handle(self, *args, sync, no_monitoring, no_progress, send_mail, **options):
        # demo data: a crash loses the last commits, the next run loads them again. One OpenMP
        # thread: the estimates' many small predictions (a few hundred rows each) ran 3.6x slower
        # on two threads on a busy machine; the limit covers the runtimes loaded now, so
        # scikit-learn's is loaded first.
        import sklearn.ensemble  # noqa: F401

        with relaxed_commits(), threadpool_limits(limits=1, user_api="openmp"):
            if send_mail:
                self._load(sync=sync, no_monitoring=no_monitoring, no_progress=no_progress)
            else:  # the demo's history would otherwise print a dozen notification mails to the console
                with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
                    self._load(sync=sync, no_monitoring=no_monitoring, no_progress=no_progress)

    def _load(self, *, sync: bool, no_monitoring: bool, no_progress: bool) -> None:
        started = time.monotonic()
        monitoring = None if no_monitoring else _monitoring_demo()
        total = demo.STEPS + (monitoring.STEPS if monitoring else 0)
        with tqdm(total=total, desc="Demo data", unit="step", disable=no_progress, leave=True) as bar:

            def progress(label: str) -> None:
                bar.set_postfix_str(label[:60])
                bar.update(1)

            # with monitoring, the registry's history after its first day is replayed day by day
            # among the monitoring days (``replay_demo_until``): the audit chain stays in time order
            until = demo.moment((-monitoring.DAYS, 5.5)) if monitoring is not None else None
            result = demo.load_demo(progress=progress, until=until)
            created = dict(result.created)
            if monitoring is not None:
                for what, n in monitoring.load_demo(progress=progress, sync=sync).items():
                    created[what] = created.get(what, 0) + n
                for what, n in replay_demo_until(None).created.items():  # anything left (none: all are past)
                    created[what] = created.get(what, 0) + n
        summary = ", ".join(f"{n} {what}" for what, n in created.items() if n) or "nothing new (already loaded)"
        self.stdout.write(self.style.SUCCESS(f"Demo data: {summary} in {time.monotonic() - started:.1f}s."))
