"""Audit reads: the filtered, keyset-paginated audit log, per-model history, the
point-in-time ("as of") inventory and the data of the compliance report.

``AuditEventFilter`` is the one FilterSet shared by the audit log page, its export
button and the API (list and export).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from typing import Any

import django_filters
from django import forms as django_forms
from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from mlops_portal.filters import InvalidTime, UtcIsoDateTimeFilter, to_utc
from registry.choices import AuditSource, Decision, PromotionStatus, Stage
from registry.models import (
    AuditEvent,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
    Review,
    StageTransition,
)
from registry.rules import can_view_audit

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class AuditFilterForm(django_forms.Form):
    """The audit filters' form: a range that ends before it starts is an error on its end, not
    an empty answer that reads as "nothing happened"."""

    def clean(self):
        cleaned = super().clean()
        for start, end, what in (("since", "until", "time"), ("from_seq", "to_seq", "sequence number")):
            low, high = cleaned.get(start), cleaned.get(end)
            if low is not None and high is not None and high < low:
                self.add_error(end, f"The range ends before it starts: '{end}' is before '{start}' ({what}).")
        return cleaned


MAX_SEQ = 2**63 - 1  # the largest sequence number the column holds


class SeqFilter(django_filters.NumberFilter):
    """A sequence number: a whole number (``1.5`` is refused, not read as "from 2" and recorded
    in an export's manifest as ``"1.5"``)."""

    field_class = django_forms.IntegerField


class AuditEventFilter(django_filters.FilterSet):
    """Filters of the audit log (page, export and API): time range, model, actor, action, source."""

    since = UtcIsoDateTimeFilter(field_name="timestamp", lookup_expr="gte", label="From")
    until = UtcIsoDateTimeFilter(field_name="timestamp", lookup_expr="lt", label="Until")
    model = django_filters.CharFilter(method="filter_model", label="Model")
    actor = django_filters.CharFilter(method="filter_actor", label="Actor")
    action = django_filters.CharFilter(
        method="filter_action", label="Action", help_text="exact, or a prefix ending in '.'"
    )
    source = django_filters.ChoiceFilter(choices=AuditSource.choices, label="Source", empty_label="Any source")
    from_seq = SeqFilter(field_name="seq", lookup_expr="gte", min_value=1, max_value=MAX_SEQ, label="From seq")
    to_seq = SeqFilter(field_name="seq", lookup_expr="lte", min_value=1, max_value=MAX_SEQ, label="To seq")

    class Meta:
        model = AuditEvent
        fields: list[str] = []
        form = AuditFilterForm

    # Model and actor are matched by id when they exist, so the (model, seq) and (actor, seq)
    # indexes serve keyset pages on millions of rows; the name snapshot covers the rest
    # ("system", "anonymous", or names no longer in use).
    def filter_model(self, queryset, name, value):
        ids = list(RegisteredModel.objects.filter(name=value.strip()).values_list("pk", flat=True))
        return queryset.filter(model_id__in=ids) if ids else queryset.filter(model_name=value.strip())

    def filter_actor(self, queryset, name, value):
        ids = _account_ids(value)
        return queryset.filter(actor_id__in=ids) if ids else queryset.filter(actor_name=value.strip())

    def filter_action(self, queryset, name, value):
        value = value.strip()
        if value.endswith(".") or value.endswith("*"):
            return queryset.filter(action__startswith=value.rstrip("*"))
        return queryset.filter(action=value)

    def active_filters(self) -> dict[str, Any]:
        """The filters actually applied, as plain values (for the manifest and audit event). An
        actor that is an account also gives its id (``actor_ids``): the events are that account's,
        also those written under a former name, and ``verify_filtered`` checks them by id."""
        data = getattr(self.form, "cleaned_data", {}) or {}
        out = {}
        for key, value in data.items():
            if value in (None, "", []):
                continue
            if isinstance(value, datetime.datetime):
                value = value.isoformat()
            elif hasattr(value, "is_integer") and value.is_integer():
                value = int(value)
            out[key] = value
        if out.get("actor") and (ids := _account_ids(out["actor"])):
            out["actor_ids"] = ids
        return out


def _account_ids(username: str) -> list[int]:
    """The id of the account named ``username`` (a list: empty when there is none)."""
    User = get_user_model()
    return sorted(User.objects.filter(**{User.USERNAME_FIELD: username.strip()}).values_list("pk", flat=True))


def audit_event_queryset(*, user) -> QuerySet[AuditEvent]:
    """Every audit event, for auditors, privacy officers and admins; nothing for anyone else."""
    if not can_view_audit(user):
        return AuditEvent.objects.none()
    return AuditEvent.objects.all()


@dataclasses.dataclass
class KeysetPage:
    """One page of events (newest first) and the cursors around it. No COUNT(*)."""

    events: list[AuditEvent]
    older: int | None  # pass as ?before=
    newer: int | None  # pass as ?after=


def audit_event_page(queryset: QuerySet[AuditEvent], *, before=None, after=None, limit: int = PAGE_SIZE) -> KeysetPage:
    """Keyset pagination on seq. ``before``: events older than that seq; ``after``: newer.

    One query (limit + 1 rows) plus, when paging, one EXISTS for the other direction.
    """
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    if after is not None:
        rows = list(queryset.filter(seq__gt=after).order_by("seq")[: limit + 1])
        has_more_newer = len(rows) > limit
        events = list(reversed(rows[:limit]))
        newer = events[0].seq if has_more_newer and events else None
        older = events[-1].seq if events else after + 1
        if events and not queryset.filter(seq__lt=events[-1].seq).exists():
            older = None
        return KeysetPage(events=events, older=older, newer=newer)
    qs = queryset.filter(seq__lt=before) if before is not None else queryset
    rows = list(qs.order_by("-seq")[: limit + 1])
    events = rows[:limit]
    older = events[-1].seq if len(rows) > limit else None
    newer = None
    if before is not None:
        newer = events[0].seq if events else before - 1
        if not queryset.filter(seq__gt=newer).exists():
            newer = None
    return KeysetPage(events=events, older=older, newer=newer)


def event_diff_rows(event: AuditEvent) -> list[tuple[str, str, str, bool]]:
    """(field, before, after, changed) for the two-column diff of one event; values as JSON text."""
    before = event.before if isinstance(event.before, dict) else ({} if event.before is None else {"": event.before})
    after = event.after if isinstance(event.after, dict) else ({} if event.after is None else {"": event.after})
    keys = list(dict.fromkeys([*before.keys(), *after.keys()]))
    rows = []
    for key in keys:
        b = _json_text(before[key]) if key in before else ""
        a = _json_text(after[key]) if key in after else ""
        rows.append((key, b, a, b != a))
    return rows


def _json_text(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def model_history(*, user, model: RegisteredModel, before=None, limit: int = PAGE_SIZE) -> KeysetPage:
    """The audit events of one model, for anyone who may view the model."""
    visible = RegisteredModel.objects.visible_to(user).filter(pk=model.pk).values("pk")
    return audit_event_page(AuditEvent.objects.filter(model_id__in=visible), before=before, limit=limit)


# ---------------------------------------------------------------- point in time


# Extended ISO 8601 only (Python also accepts digit soups like '11111111111111' as basic format).
_ISO_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def parse_as_of_time(value: str | None) -> datetime.datetime:
    """ISO 8601 date-time (naive means UTC) or a date (midnight UTC), as the instant in UTC."""
    text = (value or "").strip()
    if not text:
        raise InvalidTime("Give a time, e.g. ?time=2026-01-31T12:00:00Z")
    if len(text) > 40 or not _ISO_SHAPE.match(text):
        raise InvalidTime(f"'{text[:60]}' is not an ISO 8601 date or date-time.")
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            if day is None:
                raise ValueError
            moment = datetime.datetime.combine(day, datetime.time.min)
    except ValueError as exc:
        raise InvalidTime(f"'{text[:60]}' is not an ISO 8601 date or date-time.") from exc
    return to_utc(moment)


@dataclasses.dataclass
class AsOfEntry:
    """What was in production for one model at a moment, and the evidence."""

    model: RegisteredModel
    version: ModelVersion | None = None
    since: datetime.datetime | None = None
    transition: StageTransition | None = None
    promotion: PromotionRequest | None = None
    approvals: list[Review] = dataclasses.field(default_factory=list)

    @property
    def requested_by(self):
        return self.promotion.requested_by if self.promotion else None

    @property
    def via_rollback(self) -> bool:
        return bool(self.transition and self.transition.kind == StageTransition.Kind.ROLLBACK)

    def as_dict(self) -> dict[str, Any]:
        t = self.transition
        p = self.promotion
        return {
            "model": self.model.name,
            "version": self.version.version if self.version else None,
            "in_production_since": self.since.isoformat() if self.since else None,
            "via": (t.kind if t else None),
            "transition": (
                {
                    "id": t.pk,
                    "kind": t.kind,
                    "from_stage": t.from_stage,
                    "actor": t.actor.get_username() if t.actor else None,
                    "reason": t.reason,
                    "at": t.created_at.isoformat(),
                }
                if t
                else None
            ),
            "promotion_request": (
                {
                    "id": p.pk,
                    "url": p.get_absolute_url(),
                    "requested_by": p.requested_by.get_username(),
                    "requested_at": p.created_at.isoformat(),
                    "justification": p.justification,
                    "status": p.status,
                }
                if p
                else None
            ),
            "requested_by": p.requested_by.get_username() if p else None,
            "approved_by": [r.reviewer.get_username() for r in self.approvals],
            "approvals": [
                {"reviewer": r.reviewer.get_username(), "at": r.created_at.isoformat(), "comment": r.comment}
                for r in self.approvals
            ],
        }


def _promotion_evidence(transition: StageTransition) -> PromotionRequest | None:
    """The promotion request behind a move into production: its own, or for a rollback (which
    has none) the latest earlier promotion of that version into production."""
    if transition.promotion_request_id:
        return transition.promotion_request
    earlier = (
        StageTransition.objects.filter(
            version_id=transition.version_id,
            to_stage=Stage.PRODUCTION,
            promotion_request__isnull=False,
            created_at__lte=transition.created_at,
        )
        .select_related("promotion_request__requested_by")
        .order_by("-created_at", "-id")
        .first()
    )
    return earlier.promotion_request if earlier else None


def inventory_as_of(*, user, moment: datetime.datetime) -> list[AsOfEntry]:
    """For each model the user may see that existed at ``moment``: the version in production
    then, since when, and the promotion request (requester, approvals) that put it there.

    Computed from StageTransition: a version was in production at T when its latest
    transition at or before T moved it to production. After a rollback, the evidence is
    the rollback itself plus the earlier promotion that first approved that version.
    """
    if not user.is_authenticated:
        return []
    models = list(
        RegisteredModel.objects.visible_to(user)
        .filter(created_at__lte=moment)
        .select_related("owner", "team")
        .order_by("name")
    )
    if not models:
        return []
    latest = StageTransition.objects.filter(version=OuterRef("pk"), created_at__lte=moment).order_by(
        "-created_at", "-id"
    )
    in_production = (
        ModelVersion.objects.filter(model__in=models)
        .annotate(stage_then=Subquery(latest.values("to_stage")[:1]), transition_id=Subquery(latest.values("id")[:1]))
        .filter(stage_then=Stage.PRODUCTION)
    )
    transitions = {
        t.pk: t
        for t in StageTransition.objects.filter(pk__in=[v.transition_id for v in in_production]).select_related(
            "actor", "version", "promotion_request__requested_by"
        )
    }
    best: dict[int, StageTransition] = {}
    for t in transitions.values():
        current = best.get(t.model_id)
        if current is None or (t.created_at, t.pk) > (current.created_at, current.pk):
            best[t.model_id] = t
    evidence = {model_id: _promotion_evidence(t) for model_id, t in best.items()}
    request_ids = [p.pk for p in evidence.values() if p is not None]
    approvals: dict[int, list[Review]] = {}
    for review in (
        Review.objects.filter(request_id__in=request_ids, decision=Decision.APPROVE, created_at__lte=moment)
        .select_related("reviewer")
        .order_by("created_at", "id")
    ):
        approvals.setdefault(review.request_id, []).append(review)
    entries = []
    for model in models:
        t = best.get(model.pk)
        if t is None:
            entries.append(AsOfEntry(model=model))
            continue
        promotion = evidence.get(model.pk)
        entries.append(
            AsOfEntry(
                model=model,
                version=t.version,
                since=t.created_at,
                transition=t,
                promotion=promotion,
                approvals=approvals.get(promotion.pk, []) if promotion else [],
            )
        )
    return entries


# ---------------------------------------------------------------- compliance report


@dataclasses.dataclass(frozen=True)
class Rollback:
    """One rollback: the transition that restored a version to production, and the version it
    replaced (the other half of the same rollback, None if that transition is missing)."""

    restored: StageTransition
    replaced: ModelVersion | None


def rollbacks_of(transitions: list[StageTransition]) -> list[Rollback]:
    """The rollbacks among a model's transitions, one per rollback: ``model_rollback`` writes two
    transitions of kind rollback at the same moment (the production version archived, the earlier
    one restored); the restoring one is the rollback, the archived one names what it replaced."""
    kind = StageTransition.Kind.ROLLBACK
    left = {
        t.created_at: t.version
        for t in transitions
        if t.kind == kind and t.from_stage == Stage.PRODUCTION and t.to_stage != Stage.PRODUCTION
    }
    return [
        Rollback(restored=t, replaced=left.get(t.created_at))
        for t in transitions
        if t.kind == kind and t.to_stage == Stage.PRODUCTION
    ]


@dataclasses.dataclass
class ComplianceReport:
    """Everything the per-model compliance report shows, read once."""

    model: RegisteredModel
    generated_at: datetime.datetime
    versions: list[ModelVersion]
    production: ModelVersion | None
    promotions: list[PromotionRequest]
    rollbacks: list[Rollback]
    transitions: list[StageTransition]
    audit_count: int
    audit_first: dict | None
    audit_last: dict | None
    head_seq: int
    head_hash: str

    @property
    def approved_promotions(self) -> list[PromotionRequest]:
        return [p for p in self.promotions if p.status in (PromotionStatus.APPROVED, PromotionStatus.APPLIED)]


_REVIEWS = Review.objects.select_related("reviewer").order_by("created_at")


def compliance_report_data(*, user, model: RegisteredModel) -> ComplianceReport | None:
    """The compliance report of one model, or None if the user may not view it."""
    if not RegisteredModel.objects.visible_to(user).filter(pk=model.pk).exists():
        return None
    versions = list(model.versions.select_related("created_by", "llm").order_by("-version"))
    promotions = list(
        PromotionRequest.objects.filter(version__model=model)
        .select_related("version", "requested_by", "overridden_by")
        .prefetch_related(
            Prefetch("reviews", queryset=Review.objects.select_related("reviewer").order_by("created_at"))
        )
        .order_by("created_at", "id")
    )
    transitions = list(
        StageTransition.objects.filter(model=model)
        .select_related("version", "actor", "promotion_request")
        .order_by("created_at", "id")
    )
    events = AuditEvent.objects.filter(model_id=model.pk)
    fields = ("seq", "timestamp", "prev_hash", "hash")
    first = events.order_by("seq").values(*fields).first()
    last = events.order_by("-seq").values(*fields).first()
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first() or (0, "")
    return ComplianceReport(
        model=model,
        generated_at=timezone.now(),
        versions=versions,
        production=next((v for v in versions if v.stage == Stage.PRODUCTION), None),
        promotions=promotions,
        rollbacks=rollbacks_of(transitions),
        transitions=transitions,
        audit_count=events.count(),
        audit_first=first,
        audit_last=last,
        head_seq=head[0],
        head_hash=head[1],
    )


__all__ = [
    "AsOfEntry",
    "AuditEventFilter",
    "ComplianceReport",
    "InvalidTime",
    "KeysetPage",
    "Rollback",
    "audit_event_page",
    "audit_event_queryset",
    "compliance_report_data",
    "event_diff_rows",
    "inventory_as_of",
    "model_history",
    "parse_as_of_time",
    "to_utc",
]
