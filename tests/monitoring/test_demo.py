"""The monitoring half of the demo happens on its days: with real commits (as
``manage.py load_demo --sync`` runs) each day's health and alerts are computed that morning,
the churn drift alert opens on a day of the drift, and the incident that follows it (rollback
to v1, re-promotion of v2) happens that day and night, so the as-of page shows it."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from monitoring import demo_fairness
from monitoring.demo import DAYS, DRIFT_FROM_DAY
from monitoring.demo_live import SHADOW_DAYS, SHADOW_VERSION
from monitoring.models import Alert
from monitoring.oversight.demo import INCIDENT_HOURS
from monitoring.oversight.models import Incident
from registry import demo
from registry.models import AuditEvent, ModelVersion, PromotionRequest
from registry.selectors.audit import inventory_as_of

# real commits, so the on-commit tasks run inline on their day; PostgreSQL: the flush after a
# transactional test may truncate the audit table there (tests/conftest.py)
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _churn_in_production(moment):
    admin = get_user_model().objects.get(username="admin")
    entry = next(e for e in inventory_as_of(user=admin, moment=moment) if e.model.name == demo.CHURN)
    return entry.version.version


def _demo_events(**filters):
    return AuditEvent.objects.filter(request_id="load_demo", **filters)


def test_the_drift_alert_and_its_incident_happen_on_their_days_and_the_chain_stays_in_time_order():
    started = timezone.now()
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

    # nothing of the demo is written at load time: every event of it is in the past
    late = AuditEvent.objects.filter(timestamp__gte=started)
    assert list(late.values_list("action", "model_name")) == []
    weeks_ago = today - datetime.timedelta(weeks=5)
    credit = _demo_events(model_name=demo_fairness.MODEL)
    for action in ("model.created", "version.registered", "promotion.requested", "promotion.applied"):
        assert (
            credit.filter(action=action).exists() and not credit.filter(action=action, timestamp__gt=weeks_ago).exists()
        )
    v4 = ModelVersion.objects.get(model__name=demo.CHURN, version=SHADOW_VERSION)
    assert v4.stage == "staging" and v4.created_at < demo.moment((-SHADOW_DAYS, 0))
    shadow = _demo_events(action="predictions.ingested", object_id=str(v4.pk))
    assert shadow.count() == SHADOW_DAYS and shadow.earliest("timestamp").timestamp < demo.moment((1 - SHADOW_DAYS, 0))
    requested = _demo_events(
        action="promotion.requested",
        object_id__in=[str(pk) for pk in PromotionRequest.objects.filter(version=v4).values_list("pk", flat=True)],
    )
    repromoted = _demo_events(action="promotion.applied", model_name=demo.CHURN).latest("seq")
    policy = _demo_events(action="policy.updated").get()
    assert repromoted.timestamp < policy.timestamp < today and requested.count() == 2
    batches = sorted(_demo_events(action="llm_requests.ingested").values_list("timestamp", flat=True))
    assert len(batches) == 28 and batches[0] < demo.moment((-26, 0)) and batches[-1] <= today
    assert len({b.date() for b in batches}) == 28
    costs = _demo_events(action="cost.recorded")
    assert len({stamp.date() for stamp in costs.values_list("timestamp", flat=True)}) == DAYS  # one import a day
    assert (
        costs.earliest("timestamp").timestamp < demo.moment((1 - DAYS, 0))
        and costs.latest("timestamp").timestamp < today
    )
    assert _demo_events(action="budget.changed").latest("timestamp").timestamp < today

    stamps = list(AuditEvent.objects.order_by("seq").values_list("timestamp", flat=True))
    assert stamps == sorted(stamps)
    call_command("verify_audit")
    count = len(stamps)
    call_command("load_demo", "--no-progress", "--sync")
    assert AuditEvent.objects.count() == count
