"""The demo's steps, shared by ``registry.demo`` and its other models (``demo_llm``,
``demo_credit``): when a step happens (``When``, ``moment``), what a run created (``DemoResult``),
registering a version and replaying a promotion history through the services (audit source
``cli``). Each step looks for what it would create first, so a second run writes nothing."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from mlops_portal import clock
from registry.choices import AuditSource, PromotionStatus
from registry.models import ModelVersion, PromotionRequest, RegisteredModel
from registry.services.audit import AuditContext
from registry.services.inventory import version_create

CONTEXT = AuditContext(source=AuditSource.CLI, request_id="load_demo")

# When something happened: (days relative to today, hour of that day in UTC). The demo's
# history is replayed at these past times (see ``registry.demo.load_demo``), months before the
# monitoring traffic, which starts at 06:00 five weeks ago (``monitoring.demo``).
When = tuple[int, float]


def moment(when: When) -> datetime.datetime:
    """``(days, hour)``: that many days from today (midnight UTC), at that hour."""
    days, hour = when
    today = datetime.datetime.combine(timezone.now().astimezone(datetime.UTC).date(), datetime.time(), datetime.UTC)
    return today + datetime.timedelta(days=days, hours=hour)


SNAPSHOT_DAYS_BEFORE = 4  # a version is trained on the data snapshot taken this many days before it is registered


def snapshot_date(registered: When) -> str:
    """The date (``YYYY-MM-DD``) of the training-data snapshot of a version registered at ``registered``."""
    return (moment(registered) - datetime.timedelta(days=SNAPSHOT_DAYS_BEFORE)).date().isoformat()


@dataclass
class DemoResult:
    """What a run created, by kind (empty on a second run)."""

    created: dict[str, int] = field(default_factory=dict)

    def add(self, what: str, n: int = 1) -> None:
        self.created[what] = self.created.get(what, 0) + n


@dataclass
class PromotionStep:
    """One step of a model's promotion history, replayed through the promotion services."""

    version: int
    target: str
    justification: str
    reviews: list[tuple[str, str, str]]  # (reviewer username, "approve"|"reject", comment)
    at: tuple[When, ...] = ()  # when it was requested, then when each review was given


def register_version(name: str, number: int, fields: Callable[[], dict[str, Any]], *, users, context, result) -> None:
    """v``number`` of model ``name`` by ``users["owner"]``, through ``version_create`` with ``fields()``
    (asked for only when the version is missing: training takes time); counted in ``result``."""
    model = RegisteredModel.objects.get(name=name)
    if model.versions.filter(version=number).exists():
        return
    version_create(model=model, actor=users["owner"], context=context, **fields())
    if result is not None:
        result.add("versions")


def history_steps(name: str, history: list[PromotionStep], users, result: DemoResult) -> list:
    """Model ``name``'s promotion history as steps of the schedule: (when requested, label, replay)."""
    return [
        (step.at[0], f"{name} v{step.version}: to {step.target}", functools.partial(_replay, name, step, users, result))
        for step in history
    ]


def _replay(name: str, step: PromotionStep, users, result: DemoResult) -> None:
    version = ModelVersion.objects.get(model__name=name, version=step.version)
    if PromotionRequest.objects.filter(version=version, target_stage=step.target).exists():
        return
    with transaction.atomic():  # a step happens whole or not at all, so a re-run can finish it
        _replay_step(step, version, users, result)


def _replay_step(step: PromotionStep, version: ModelVersion, users, result: DemoResult) -> None:
    """Request the promotion as the owner, then each review, through the promotion services."""
    from registry.services.promotions import promotion_approve, promotion_reject, promotion_request

    requested, *reviewed = (moment(when) for when in step.at)
    with clock.at(requested):
        req = promotion_request(
            version=version,
            target_stage=step.target,
            requester=users["owner"],
            justification=step.justification,
            context=CONTEXT,
        )
    result.add("promotion requests")
    for (username, decision, comment), at in zip(step.reviews, reviewed, strict=True):
        req.refresh_from_db()
        if req.status != PromotionStatus.PENDING:
            break
        review = promotion_approve if decision == "approve" else promotion_reject
        with clock.at(at):
            review(request=req, reviewer=users[username], comment=comment, context=CONTEXT)
        result.add("reviews")
