"""The oversight part of the demo, idempotently (called from ``monitoring.demo.load_demo``).

``customer-churn`` gets a past incident tied to its drift: opened from its critical drift
alert (when the metrics were computed inline, ``load_demo --sync``; the beat's review sweep has
opened an unscheduled review from that alert by then), suspended by a governed rollback,
reported within its deadline, then closed after v2 went back to production through a new
approved promotion; the review, which the incident brought forward, is done and one finding is
open. ``diabetes-progression`` has a scheduled review coming due. Both have a saved plan.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

from django.contrib.auth import get_user_model
from django.db import transaction

from mlops_portal import clock
from monitoring.choices import ReviewStatus
from monitoring.models import Alert
from registry import demo as registry_demo
from registry.choices import Stage
from registry.models import RegisteredModel

from .findings import finding_create
from .incidents import (
    incident_close,
    incident_note,
    incident_open,
    incident_report,
    incident_resolve,
    incident_suspend,
)
from .models import Finding, Incident, MonitoringPlan, PeriodicReview
from .plan import plan_save
from .reviews import review_attest, review_open, reviews_sweep

logger = logging.getLogger(__name__)
CONTEXT = registry_demo.CONTEXT

CHURN_PLAN = (
    "Weekly look at drift of tenure, monthly charges and support calls; performance once labels "
    "arrive after 7 days (estimated before). A critical drift alert opens an unscheduled review with "
    "the retention team; retraining is triggered by the pipeline webhook."
)
DIABETES_PLAN = (
    "High risk (clinical decision support): RMSE tracked against the offline value with labels after "
    "14 days; quarterly revalidation signed by a validator outside the clinical team."
)


def _users() -> dict:
    names = ("owner", "reviewer", "reviewer2")
    return {u.username: u for u in get_user_model().objects.filter(username__in=names)}


def _plan(model: RegisteredModel, narrative: str, owner, created: dict) -> None:
    if not MonitoringPlan.objects.filter(model=model).exists():
        plan_save(model=model, actor=owner, narrative=narrative, context=CONTEXT)
        created["monitoring plans"] = created.get("monitoring plans", 0) + 1


# What the incident found is the drift the monitoring demo generates (``demo_training.churn_dataset``'s
# ``drift`` moves support_calls and days_since_last_login, nothing else): real customer behaviour.
REPROMOTE_JUSTIFICATION = (
    "The drift in support_calls and days_since_last_login is real customer behaviour, not a feed "
    "fault (both feeds checked against their sources overnight). v1 reads the same inputs at a lower "
    "ROC AUC, so v2 goes back to production, with offers capped to a share of the scored base."
)


def _repromote_request(model: RegisteredModel, version_number: int, users):
    """v2 back to production through a new promotion request (None: it is there already)."""
    from registry.services.promotions import promotion_request

    version = model.versions.get(version=version_number)
    if version.stage == Stage.PRODUCTION:
        return None
    return promotion_request(
        version=version,
        target_stage=Stage.PRODUCTION,
        requester=users["owner"],
        justification=REPROMOTE_JUSTIFICATION,
        context=CONTEXT,
    )


def _repromote_approve(req, users) -> None:
    """The reviewers' approvals of the re-promotion, as many as the policy asks for."""
    from registry.services.promotions import promotion_approve

    for name in ("reviewer", "reviewer2"):
        req.refresh_from_db()
        if req.status == "pending":
            comment = "Feed checks and the offer cap read; v1 has the lower ROC AUC. Approved."
            promotion_approve(request=req, reviewer=users[name], comment=comment, context=CONTEXT)


# The incident's steps, in hours after the morning run that found the critical drift: replayed
# at these times (back-dated, ``clock.at``), all before the next morning's run.
# The re-promotion is requested, reviewed 40 minutes later and the incident closed after it.
INCIDENT_HOURS = {
    "open": 2,
    "note": 3,
    "suspend": 4,
    "initial": 6,
    "resolve": 19,
    "final": 20,
    "repromote": 21,
    "approve": 21 + 40 / 60,
    "close": 21 + 50 / 60,
}


def _critical_drift(model: RegisteredModel):
    """The model's critical drift alerts, of its inputs or of its predictions."""
    return Alert.objects.filter(model=model, kind__in=["drift", "prediction_drift"], severity="critical")


def _churn_incident(
    model: RegisteredModel, users, created: dict, found: dt.datetime | None = None, advance=None
) -> None:
    if Incident.objects.filter(model=model).exists():
        return
    owner = users["owner"]
    alert = _critical_drift(model).order_by("opened_at").first()
    wall = dt.datetime.now(dt.UTC)  # the real time, not the story's: has the incident's day passed?
    began = alert.opened_at if alert else wall - dt.timedelta(days=3)
    replay = found is not None and found + dt.timedelta(hours=24) < wall

    def at(step: str):
        if not replay:
            return contextlib.nullcontext()
        moment = found + dt.timedelta(hours=INCIDENT_HOURS[step])
        if advance is not None:
            advance(moment)  # the demo's other steps due before this one first (the chain's time order)
        return clock.at(moment)

    with at("open"):
        incident = incident_open(
            model=model,
            actor=owner,
            severity="serious",
            aware_at=min((found if replay else began) + dt.timedelta(hours=2), wall),
            began_at=began,
            alerts=[alert] if alert else [],
            summary="Churn scores rose across the customer base as support calls went up and logins went "
            "down; the retention team's fixed score threshold sent offers to far more customers than planned.",
            affected="About 1,200 customers were sent retention offers outside the campaign's plan "
            "(no legal effect on them).",
            context=CONTEXT,
        )
    with at("note"):
        incident_note(
            incident=incident,
            actor=owner,
            text="Drift concentrated in support_calls and days_since_last_login: customers call support more "
            "often and log in less; the other inputs are stable.",
            context=CONTEXT,
        )
    with at("suspend"):
        reason = "Stop offers from the shifted scores while the inputs are checked"
        incident_suspend(incident=incident, actor=owner, mode="rollback", reason=reason, context=CONTEXT)
    with at("initial"):
        incident_report(incident=incident, actor=owner, kind="initial", context=CONTEXT)
    with at("resolve"):
        incident_resolve(
            incident=incident,
            actor=owner,
            root_cause="Not a data fault: the support-desk and login feeds match their sources. Customers "
            "really call support more and log in less (support_calls and days_since_last_login), so v2's churn "
            "scores rose with them and the fixed score threshold sent offers to far more customers.",
            corrective_actions="Offers capped to a share of the scored base instead of a fixed score; v2 back "
            "in production (v1 reads the same inputs at a lower ROC AUC); both inputs watched weekly.",
            context=CONTEXT,
        )
    with at("final"):
        incident_report(incident=incident, actor=owner, kind="final", context=CONTEXT)
    with at("repromote"):
        req = _repromote_request(model, 2, users)
    with at("approve"):
        if req is not None:
            _repromote_approve(req, users)
    with at("close"):
        comment = "v2 back in production through an approved promotion; offers capped."
        incident_close(incident=incident, actor=owner, comment=comment, context=CONTEXT)
    created["incidents"] = created.get("incidents", 0) + 1


def churn_incident_after_its_alert(found: dt.datetime, advance=None) -> dict[str, int]:
    """The churn incident as soon as its critical drift alert is open (the monitoring demo
    calls this after each day's run, ``found``), so it happens at its time in the chain.
    ``advance(moment)``: the caller's other steps due by ``moment``, run before each step of the
    incident's (which then are each their own transaction, so those steps commit in between)."""
    created: dict[str, int] = {}
    users = _users()
    churn = RegisteredModel.objects.filter(name=registry_demo.CHURN).first()
    if len(users) == 3 and churn and _critical_drift(churn).exists():
        with transaction.atomic() if advance is None else contextlib.nullcontext():
            _churn_incident(churn, users, created, found=found, advance=advance)
        if created.get("incidents"):  # the review the incident triggered is done before the next run
            reviewed = found + dt.timedelta(hours=INCIDENT_HOURS["repromote"] + 1)
            if advance is not None:
                advance(reviewed)
            with transaction.atomic(), clock.at(reviewed):
                _churn_review_and_finding(churn, users, created)
    return created


def reviews_sweep_after_the_run() -> dict[str, int]:
    """The beat's review sweep (``reviews.reviews_sweep``, every 15 minutes), as it runs after a
    morning's run: the unscheduled review a critical drift alert opens, on its day."""
    touched = reviews_sweep()
    return {"reviews": touched} if touched else {}


def diabetes_review_due(run: dt.datetime) -> dict[str, int]:
    """diabetes-progression's scheduled review (high risk: every 90 days), opened by the morning
    run of the monitoring demo's last day, due ten days later."""
    created: dict[str, int] = {}
    users = _users()
    diabetes = RegisteredModel.objects.filter(name=registry_demo.DIABETES).first()
    if len(users) == 3 and diabetes is not None:
        with transaction.atomic(), clock.at(run + dt.timedelta(hours=1)):
            _diabetes_review(diabetes, users, created)
    return created


def demo_plans() -> dict[str, int]:
    """The post-market monitoring plans of churn and diabetes, written when their monitoring is
    configured (the monitoring demo calls this at that time)."""
    created: dict[str, int] = {}
    models = {m.name: m for m in RegisteredModel.objects.filter(name__in=[registry_demo.CHURN, registry_demo.DIABETES])}
    with transaction.atomic():
        for name, narrative in ((registry_demo.CHURN, CHURN_PLAN), (registry_demo.DIABETES, DIABETES_PLAN)):
            if name in models:
                _plan(models[name], narrative, models[name].owner, created)
    return created


def _churn_review_and_finding(model: RegisteredModel, users, created: dict) -> None:
    owner, reviewer = users["owner"], users["reviewer"]
    review = PeriodicReview.objects.filter(model=model).exclude(status=ReviewStatus.COMPLETED).first()
    if review is not None:
        review_attest(
            review=review,
            actor=owner,
            card_true=True,
            intended_use_true=True,
            comment="Card and intended use re-read after the incident.",
            context=CONTEXT,
        )
        created["reviews"] = created.get("reviews", 0) + 1
    if not Finding.objects.filter(model=model).exists():
        finding_create(
            model=model,
            actor=reviewer,
            severity="medium",
            description="No runbook for drift that is real customer behaviour rather than a data fault: the "
            "rollback to v1, which reads the same support_calls and days_since_last_login, could not help.",
            owner=owner,
            due_at=clock.now() + dt.timedelta(days=30),
            review=PeriodicReview.objects.filter(model=model).order_by("-opened_at").first(),
            context=CONTEXT,
        )
        created["findings"] = created.get("findings", 0) + 1


def _diabetes_review(model: RegisteredModel, users, created: dict) -> None:
    if PeriodicReview.objects.filter(model=model).exists():
        return
    review_open(
        model=model,
        actor=model.owner,
        reason="Scheduled review (high risk: every 90 days).",
        due_at=clock.now() + dt.timedelta(days=10),
        trigger="scheduled",
        context=CONTEXT,
    )
    created["reviews"] = created.get("reviews", 0) + 1


def load_oversight_demo() -> dict[str, int]:
    """Create the oversight demo data; returns what was created, by kind (empty on a re-run)."""
    created: dict[str, int] = {}
    users = _users()
    models = {m.name: m for m in RegisteredModel.objects.filter(name__in=[registry_demo.CHURN, registry_demo.DIABETES])}
    if len(users) < 3 or len(models) < 2:
        return created  # not the demo's inventory: leave it alone
    churn, diabetes = models[registry_demo.CHURN], models[registry_demo.DIABETES]
    with transaction.atomic():
        _plan(churn, CHURN_PLAN, churn.owner, created)
        _plan(diabetes, DIABETES_PLAN, diabetes.owner, created)
    with transaction.atomic():
        _churn_incident(churn, users, created)
    with transaction.atomic():
        _churn_review_and_finding(churn, users, created)
    with transaction.atomic():
        _diabetes_review(diabetes, users, created)
    return created
