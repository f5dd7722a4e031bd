"""The monitoring half of the demo happens on its days: with real commits (as
``manage.py load_demo --sync`` runs) each day's health and alerts are computed that morning,
the churn drift alert opens on a day of the drift, and the incident that follows it (rollback
to v1, re-promotion of v2) happens that day and night, so the as-of page shows it."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from monitoring.demo import DAYS, DRIFT_FROM_DAY
from monitoring.models import Alert
from monitoring.oversight.demo import INCIDENT_HOURS
from monitoring.oversight.models import Incident
from registry import demo
from registry.models import AuditEvent
from registry.selectors.audit import inventory_as_of

# real commits, so the on-commit tasks run inline on their day; PostgreSQL: the flush after a
# transactional test may truncate the audit table there (tests/conftest.py)
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _churn_in_production(moment):
    admin = get_user_model().objects.get(username="admin")
    entry = next(e for e in inventory_as_of(user=admin, moment=moment) if e.model.name == demo.CHURN)
    return entry.version.version


def test_the_drift_alert_and_its_incident_happen_on_their_days_and_the_chain_stays_in_time_order():
    call_command("load_demo", "--no-progress", "--sync")
    drift_began = demo.moment((DRIFT_FROM_DAY - DAYS, 6))
    today = demo.moment((0, 0))

    critical = Alert.objects.filter(
        model__name=demo.CHURN, kind__in=["drift", "prediction_drift"], severity="critical"
    ).earliest("opened_at")
    assert drift_began < critical.opened_at < today and critical.opened_at.hour == 7  # a morning run
    incident = Incident.objects.get(model__name=demo.CHURN)
    found = incident.created_at - datetime.timedelta(hours=INCIDENT_HOURS["open"])
    assert drift_began < found < today and found.hour == 7 and found >= critical.opened_at
    assert incident.began_at == critical.opened_at and incident.closed_at < found + datetime.timedelta(hours=23)

    # the as-of page: v1 five weeks ago, v2 live from the first morning, v1 again the night of
    # the rollback, v2 today
    assert _churn_in_production(demo.moment((-DAYS, 0))) == 1
    assert _churn_in_production(demo.moment((-DAYS, 12))) == 2
    assert _churn_in_production(found + datetime.timedelta(hours=INCIDENT_HOURS["suspend"] + 1)) == 1
    assert _churn_in_production(today) == 2

    stamps = list(AuditEvent.objects.order_by("seq").values_list("timestamp", flat=True))
    assert stamps == sorted(stamps)
    call_command("verify_audit")
    count = len(stamps)
    call_command("load_demo", "--no-progress", "--sync")
    assert AuditEvent.objects.count() == count
