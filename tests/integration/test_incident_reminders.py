"""The real worker and beat send an incident's deadline reminders at 50% and 80%, each once.

The schedule is the one the migration installs (django-celery-beat's database scheduler); the
test writes it again with a 2-second interval so the run takes seconds, not minutes.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from monitoring.oversight.incidents import incident_open
from monitoring.oversight.models import IncidentEvent, IncidentReminder
from registry.models import AuditEvent
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory

from .conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TASK = "monitoring.oversight.tasks.incident_reminders_send"
SCHEDULE = "oversight: incident deadline reminders"  # monitoring/migrations/0001_squashed_0014_…


def test_worker_and_beat_send_each_reminder_once(services, churn, owner):
    # the migration's row (its name and task), every 2 s instead of every minute; written
    # here because an earlier transactional test's flush empties the table the migration filled
    every_two, _ = IntervalSchedule.objects.get_or_create(every=2, period="seconds")
    PeriodicTask.objects.update_or_create(name=SCHEDULE, defaults={"task": TASK, "interval": every_two})
    ModelVersionFactory(model=churn, stage="production")
    period = dt.timedelta(days=2)  # widespread: Art. 73(3)
    # 50% has passed; 80% comes 25 seconds from now
    aware_at = timezone.now() - period * 0.8 + dt.timedelta(seconds=25)
    incident = incident_open(
        model=churn, actor=owner, severity="widespread", aware_at=aware_at, summary="Outage", context=CLI
    )
    assert incident.deadline == aware_at + period
    worker = services.worker()
    services.beat()

    wait_until(lambda: IncidentReminder.objects.filter(incident=incident, percent=50).exists(), timeout=60, what="50%")
    assert not IncidentReminder.objects.filter(incident=incident, percent=80).exists()
    wait_until(lambda: IncidentReminder.objects.filter(incident=incident, percent=80).exists(), timeout=90, what="80%")
    time.sleep(6)  # a few more beat runs: nothing is sent twice
    assert sorted(IncidentReminder.objects.filter(incident=incident).values_list("percent", flat=True)) == [50, 80]
    assert IncidentEvent.objects.filter(incident=incident, kind="reminder").count() == 2
    reminders = AuditEvent.objects.filter(action="incident.reminder", object_id=str(incident.pk))
    assert sorted(e.after["percent"] for e in reminders) == [50, 80]
    assert {e.source for e in reminders} == {"worker"}
    wait_until(lambda: "reminder 80%" in worker.log(), timeout=20, what="the 80% e-mail in the worker's log")
    log = worker.log()
    assert log.count(f"Incident #{incident.pk} on churn: reminder 50%") == 1
    assert log.count(f"Incident #{incident.pk} on churn: reminder 80%") == 1
