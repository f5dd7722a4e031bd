"""The demo's story, checked where the demo is loaded: by ``tests/monitoring/test_demo.py`` on
SQLite and by the demo tour (``tests/browser/test_demo_tour.py``) on PostgreSQL, so that each
database loads the four weeks once (about 100 s on PostgreSQL under the suite's load).

- a real inventory: the demo users and their roles, trained versions with lineage and metrics,
  an approved history, both review outcomes and work waiting;
- one unbroken audit chain written through the services, in time order, nothing of it at load
  time;
- the monitoring story on its days: each day's health and alerts computed that morning, the
  churn drift alert opening on a day of the drift, the incident that follows it (rollback to
  v1, re-promotion of v2) that day and night, so the as-of page shows it; live evidence of the
  shadow version; the LLM application's and the costs' days;
- the privacy officer's retention decisions and records of processing (data subjects, recipients,
  transfers per model), legal hold and one subject's erasure, on their days,
  the subject's rows gone where no hold applies and its id in clear nowhere;
- a second run that changes nothing.

Both callers load with ``manage.py load_demo --sync`` under ``midday_clock`` (the second run on
the same calendar day), with real commits."""

import datetime
import json
import re
from io import StringIO

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from monitoring import demo_fairness
from monitoring.demo import DAYS, DRIFT_FROM_DAY
from monitoring.demo_live import SHADOW_DAYS, SHADOW_VERSION
from monitoring.demo_privacy import ART30, CREDIT, HOLD, PURGE_AT, REQUESTER
from monitoring.models import Alert, ErasureRequest, GroundTruth, HealthStatus, MetricValue, Prediction, RetentionPolicy
from monitoring.models_llm import LLMRequest
from monitoring.oversight.demo import INCIDENT_HOURS
from monitoring.oversight.models import Finding, Incident, ReviewTrigger
from monitoring.selectors_privacy import records_header, records_of_processing
from monitoring.services.subjects import subject_hash
from registry import demo
from registry.choices import AuditSource, PromotionStatus, Stage
from registry.demo_llm import SUPPORT_ASSISTANT
from registry.models import AuditEvent, ModelVersion, PromotionRequest, RegisteredModel
from registry.selectors.audit import inventory_as_of
from registry.services.audit import event_payload
from registry.verify_export import GENESIS_HASH, event_hash


def _churn_in_production(moment):
    admin = get_user_model().objects.get(username="admin")
    entry = next(e for e in inventory_as_of(user=admin, moment=moment) if e.model.name == demo.CHURN)
    return entry.version.version


def _demo_events(**filters):
    return AuditEvent.objects.filter(request_id="load_demo", **filters)


def _row_counts() -> dict[str, int]:
    counts = {
        m._meta.label: m.objects.count()
        for app in ("registry", "auth", "monitoring")
        for m in apps.get_app_config(app).get_models()
    }
    counts["audit head"] = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    return counts


def _assert_inventory() -> None:
    users = {u.username: u for u in get_user_model().objects.all()}
    assert {"owner", "reviewer", "reviewer2", "auditor", "privacy", "admin"} <= set(users)
    assert users["owner"].check_password("demo-pass-123")
    assert users["admin"].is_superuser
    assert set(users["reviewer"].groups.values_list("name", flat=True)) == {"reviewer"}
    assert set(users["reviewer2"].groups.values_list("name", flat=True)) == {"reviewer"}
    assert set(users["auditor"].groups.values_list("name", flat=True)) == {"auditor"}
    assert set(users["privacy"].groups.values_list("name", flat=True)) == {"privacy"}

    churn = RegisteredModel.objects.get(name=demo.CHURN)
    diabetes = RegisteredModel.objects.get(name="diabetes-progression")
    assert churn.model_card_complete and diabetes.model_card_complete
    for model, metric_names in ((churn, {"roc_auc", "accuracy", "f1", "log_loss"}), (diabetes, {"rmse", "mae", "r2"})):
        versions = list(model.versions.order_by("version"))
        assert len(versions) >= 3
        production = [v for v in versions if v.stage == Stage.PRODUCTION]
        assert len(production) == 1
        for v in versions:
            assert metric_names <= set(v.metrics)
            assert v.has_lineage and len(v.source_commit) == 40
            assert v.training_data_hash.startswith("sha256:") and len(v.training_data_hash) == 7 + 64
            assert v.feature_schema
        # a proper, approved history: the production version got there through an applied request
        applied = PromotionRequest.objects.filter(version=production[0], target_stage=Stage.PRODUCTION).latest(
            "created_at"
        )
        assert applied.status == PromotionStatus.APPLIED
        assert applied.reviews.exclude(reviewer=applied.requested_by).exists()
    # real training: metrics in the range these models reach, and different per version
    churn_auc = [v.metrics["roc_auc"] for v in churn.versions.order_by("version")]
    assert all(0.65 < auc < 0.95 for auc in churn_auc) and len(set(churn_auc)) == len(churn_auc)
    assert all(30 < v.metrics["rmse"] < 80 for v in diabetes.versions.all())
    # both kinds of review outcome, and work waiting in the queue
    assert PromotionRequest.objects.filter(status=PromotionStatus.PENDING).exists()
    assert PromotionRequest.objects.filter(status=PromotionStatus.REJECTED).exists()
    assert ModelVersion.objects.filter(stage=Stage.ARCHIVED).count() >= 2


def _assert_one_chain_through_the_services() -> None:
    events = list(AuditEvent.objects.order_by("seq"))
    assert {e.source for e in events} <= {AuditSource.CLI, AuditSource.WORKER}
    assert {
        "team.created",
        "model.created",
        "version.registered",
        "promotion.requested",
        "promotion.approved",
        "promotion.applied",
        "stage.changed",
        "promotion.rejected",
        "reference.uploaded",
        "predictions.ingested",
        "labels.ingested",
    } <= {e.action for e in events}
    prev = GENESIS_HASH
    for event in events:
        assert event.prev_hash == prev
        assert event.hash == event_hash(prev, event_payload(event))
        prev = event.hash
    stamps = [e.timestamp for e in events]
    assert stamps == sorted(stamps)
    call_command("verify_audit")


def _assert_monitoring() -> None:
    """Weeks of traffic: churn (drift injected) ends red with an open alert, diabetes (the same
    patients as in training: no drift) green; churn v4 in shadow, its request to production
    carrying paired evidence; production's windows carry estimated performance before labels."""
    churn = RegisteredModel.objects.get(name=demo.CHURN)
    assert Prediction.objects.filter(version__model=churn).count() >= 10_000
    assert HealthStatus.objects.get(model=churn).status == "critical"
    assert HealthStatus.objects.get(model__name="diabetes-progression").status == "ok"
    assert Alert.objects.filter(model=churn, severity="critical").exists()
    shadow = churn.versions.get(version=SHADOW_VERSION)
    assert shadow.stage == Stage.STAGING
    request = PromotionRequest.objects.get(version=shadow, target_stage=Stage.PRODUCTION)
    assert request.status == PromotionStatus.PENDING
    assert (request.live_evidence.get("pairs") or 0) > 1000
    assert (request.live_evidence.get("labelled_pairs") or 0) > 0
    live = churn.versions.get(stage=Stage.PRODUCTION)
    assert MetricValue.objects.filter(version=live, metric__startswith="estimated.").exists()


def _assert_privacy() -> None:
    """Churn's 400 days and the assistant's 21 set before churn's first run, the nightly purges'
    receipts (the purged days' aggregates kept), credit-approval's hold ten days ago, and
    yesterday's erasure: churn's rows of the subject gone, credit-approval's held with the hold's
    reason and article, each step audited on its day as the privacy officer's; the subject id in
    clear in no row of the subjects' tables and no audit event."""
    churn = RegisteredModel.objects.get(name=demo.CHURN)
    assert RetentionPolicy.objects.get(model=churn).raw_days == 400
    hold = RetentionPolicy.objects.get(model__name=CREDIT)
    assert hold.legal_hold and hold.legal_hold_article == HOLD["legal_hold_article"]
    first_run, today = demo.moment((-DAYS, 6)), demo.moment((0, 0))
    changes = list(_demo_events(action="retention.changed").order_by("seq"))
    assert {e.actor_name for e in changes} == {"privacy"} and len(changes) == len(ART30) + 1
    assert [e.model_name for e in changes] == [*ART30, CREDIT]  # each model's records, then the hold
    assert changes[-2].timestamp < first_run and today - datetime.timedelta(days=11) < changes[-1].timestamp
    # the records of processing name every model's data subjects, recipients and transfers (Art. 30(1)(c)-(e))
    records = records_of_processing(user=get_user_model().objects.get(username="privacy"))
    assert {r["model"] for r in records} == set(ART30) and records_header(records)["incomplete_records"] == 0
    by_model = {r["model"]: r for r in records}
    assert "customers of the subscription service" in by_model[demo.CHURN]["data_subject_categories"]
    assert by_model[demo.CHURN]["third_country_transfers"] == "none"
    assert "United States" in by_model[SUPPORT_ASSISTANT]["third_country_transfers"]
    # the nightly purges of the last week: one day of the assistant's requests each, a receipt each
    receipts = list(AuditEvent.objects.filter(action="retention.purged").order_by("seq"))
    assert [(e.model_name, e.timestamp.time()) for e in receipts] == [(SUPPORT_ASSISTANT, PURGE_AT)] * 7
    assert all(e.after["rows"] > 0 and e.after["table"] == "monitoring_llmrequest" for e in receipts)
    cutoff = today - datetime.timedelta(days=21)
    assert receipts[-1].timestamp == today + datetime.timedelta(hours=2, minutes=30)
    assert not LLMRequest.objects.filter(timestamp__lt=cutoff).exists()
    assert LLMRequest.objects.filter(timestamp__gte=cutoff).exists()
    purged_day = MetricValue.objects.filter(  # the aggregates of a purged day stay
        version__model__name=SUPPORT_ASSISTANT, granularity="daily", window_start=today - datetime.timedelta(days=28)
    )
    assert purged_day.filter(metric="volume", value__gt=0).exists()
    request = ErasureRequest.objects.get()
    assert request.status == "held" and today - datetime.timedelta(days=1) < request.requested_at < today
    outcomes = {o.model.name: o for o in request.outcomes.select_related("model")}
    assert set(outcomes) == {demo.CHURN, CREDIT}
    assert (outcomes[demo.CHURN].status, outcomes[demo.CHURN].predictions, outcomes[demo.CHURN].labels) == (
        "erased",
        2,
        2,
    )
    assert outcomes[CREDIT].status == "held" and outcomes[CREDIT].hold_reason == HOLD["legal_hold_reason"]
    assert (outcomes[CREDIT].predictions, outcomes[CREDIT].labels) == (1, 1)
    hashed = subject_hash(REQUESTER)
    assert not Prediction.objects.filter(subject_hash=hashed).exclude(version__model__name=CREDIT).exists()
    assert not GroundTruth.objects.filter(subject_hash=hashed).exclude(model__name=CREDIT).exists()
    assert Prediction.objects.filter(version__model=churn).exclude(subject_hash=None).count() >= 10_000
    erased = _demo_events(action="erasure.completed").get()
    assert erased.actor_name == "privacy" and erased.timestamp == request.requested_at
    assert not [e.pk for e in AuditEvent.objects.all() if REQUESTER in json.dumps([e.before, e.after, e.object_repr])]


def _assert_lineage_before_registration() -> None:
    """Each version's training data is a snapshot dated before the version was registered."""
    for version in ModelVersion.objects.exclude(training_data_ref=""):
        dated = re.search(r"\d{4}-\d{2}-\d{2}", version.training_data_ref)
        if dated:
            snapshot = datetime.date.fromisoformat(dated.group())
            assert snapshot < version.created_at.date(), (str(version), version.training_data_ref, version.created_at)


CLAIMS = {r"(higher|better)( ROC)? AUC|ROC AUC up": ("roc_auc", 1), r"lower RMSE": ("rmse", -1)}


def _assert_justifications_match_the_metrics() -> None:
    """A request to production that claims a better metric than production's has it (production
    as of the moment it was requested)."""
    admin = get_user_model().objects.get(username="admin")
    for req in PromotionRequest.objects.filter(target_stage=Stage.PRODUCTION).select_related("version__model"):
        for claim, (metric, sign) in CLAIMS.items():
            if not re.search(claim, req.justification, re.IGNORECASE):
                continue
            inventory = inventory_as_of(user=admin, moment=req.created_at)
            live = next((e.version for e in inventory if e.model.pk == req.version.model_id), None)
            if live is not None:
                difference = req.version.metrics[metric] - live.metrics[metric]
                assert sign * difference > 0, (str(req.version), req.justification)


def _assert_reviews_take_their_time() -> None:
    """Nobody approves or rejects a request in the second it was made."""
    for req in PromotionRequest.objects.prefetch_related("reviews"):
        for review in req.reviews.all():
            assert review.created_at - req.created_at >= datetime.timedelta(minutes=5), (str(req.version), req.pk)


def _assert_incident_names_the_drift(incident: Incident, drift_began: datetime.datetime) -> None:
    """The incident's texts name the input whose PSI is highest in the drift window (production's
    daily windows from the drift's start to the morning the incident was found), and no input
    that stayed below the PSI warning (0.1) there."""
    found = incident.created_at - datetime.timedelta(hours=INCIDENT_HOURS["open"])
    rows = MetricValue.objects.filter(
        version__model=incident.model,
        version__version=2,
        granularity="daily",
        metric="psi",
        window_start__gte=drift_began.replace(hour=0),
        window_start__lt=found,
    ).exclude(feature__startswith="__")
    highest: dict[str, float] = {}
    for feature, value in rows.values_list("feature", "value"):
        highest[feature] = max(highest.get(feature, 0.0), value or 0.0)
    notes = [e.text + json.dumps(e.data) for e in incident.events.all()]
    findings = list(Finding.objects.filter(model=incident.model).values_list("description", flat=True))
    told = " ".join([incident.summary, incident.root_cause, incident.corrective_actions, *notes, *findings])
    named = {feature for feature in highest if re.search(rf"\b{feature}\b", told)}
    assert max(highest, key=highest.get) in named, (highest, named)
    assert all(highest[feature] >= 0.1 for feature in named), (highest, named)


def _assert_repromotion_as_it_happened(incident: Incident) -> None:
    """v2's way back: requested after the root cause was found, approved a while later, before the
    incident closed; a claim of shadow traffic only with the shadow days behind it."""
    req = PromotionRequest.objects.filter(
        version__model=incident.model, version__version=2, target_stage=Stage.PRODUCTION
    ).latest("created_at")
    assert incident.suspended_at < incident.resolved_at < req.created_at < incident.closed_at
    approved = req.reviews.get()
    assert req.created_at + datetime.timedelta(minutes=10) <= approved.created_at < incident.closed_at
    shadow_days = {
        stamp.date()
        for stamp in Prediction.objects.filter(
            version=req.version, timestamp__gte=incident.suspended_at, timestamp__lt=req.created_at
        ).values_list("timestamp", flat=True)
    }
    if "shadow" in req.justification.lower():
        assert len(shadow_days) >= (7 if "week" in req.justification.lower() else 1), req.justification


def _assert_critical_alert_opened_a_review(critical: Alert, incident: Incident, found: datetime.datetime) -> None:
    """The beat's sweep (every 15 minutes) opens an unscheduled review from the drift alert once
    it is critical (the morning run that found it, the Oversight page's rule), before the
    incident, which brings that review forward."""
    trigger = ReviewTrigger.objects.select_related("review").get(alert=critical)
    review = trigger.review
    assert review.trigger == "drift_alert" and review.model_id == critical.model_id
    assert critical.opened_at <= found < review.opened_at <= found + datetime.timedelta(minutes=15)
    assert review.opened_at < incident.created_at
    assert ReviewTrigger.objects.get(incident=incident).review_id == review.pk


def load() -> tuple[datetime.datetime, str]:
    """``manage.py load_demo --sync`` as ``make run`` runs it: (when it started, what it printed)."""
    started, out = timezone.now(), StringIO()
    call_command("load_demo", "--no-progress", "--sync", stdout=out)
    return started, out.getvalue()


def assert_story(started: datetime.datetime, output: str) -> None:
    """Everything above, on the demo ``load`` loaded at ``started``."""
    assert "Demo data:" in output
    _assert_inventory()
    _assert_one_chain_through_the_services()
    _assert_monitoring()
    _assert_privacy()
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
    _assert_incident_names_the_drift(incident, drift_began)
    _assert_repromotion_as_it_happened(incident)
    _assert_critical_alert_opened_a_review(critical, incident, found)
    _assert_lineage_before_registration()
    _assert_justifications_match_the_metrics()
    _assert_reviews_take_their_time()

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


def assert_second_run_changes_nothing() -> None:
    first = _row_counts()
    _, output = load()
    assert _row_counts() == first
    assert "nothing new" in output
