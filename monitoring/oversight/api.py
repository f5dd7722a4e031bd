"""Oversight API under /api/v1/: incidents and their actions, the monitoring plan, reviews and
findings. Reads need ``monitoring:read``; incident writes ``incidents:write``; review and
finding writes ``reviews:write``. A model or object you may not see is a 404; a forbidden
action a 403; an action that does not fit the state a 409 (``Conflict``)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.response import Response

from mlops_portal.api.errors import Conflict
from monitoring.api.views import MonitoringAPIView
from monitoring.models import Alert
from registry.selectors.inventory import model_get

from . import findings, incidents, plan, reviews, selectors
from . import serializers as s
from .filters import IncidentFilterSet
from .incidents import IncidentConflict

READ, INCIDENTS, REVIEWS = "monitoring:read", "incidents:write", "reviews:write"


class OversightAPIView(MonitoringAPIView):
    required_scopes = {"POST": INCIDENTS, "*": READ}

    def handle_exception(self, exc):
        if isinstance(exc, IncidentConflict):
            exc = Conflict(exc.message)
        return super().handle_exception(exc)


# --------------------------------------------------------------------------- incidents


class IncidentListView(OversightAPIView, generics.ListCreateAPIView):
    serializer_class = s.IncidentSerializer

    @extend_schema(
        summary="Incidents on the models you may see",
        parameters=[
            OpenApiParameter("model", str),
            OpenApiParameter("severity", str, enum=["serious", "widespread", "death", "malfunction"]),
            OpenApiParameter("status", str, enum=["open", "reported", "resolved", "closed"]),
            OpenApiParameter("active", bool),
            OpenApiParameter("overdue", bool),
            OpenApiParameter("aware_after", OpenApiTypes.DATETIME, description="ISO 8601 date-time"),
            OpenApiParameter("aware_before", OpenApiTypes.DATETIME, description="ISO 8601 date-time"),
        ],
    )
    def get(self, request):
        return super().get(request)

    def get_queryset(self):
        filterset = IncidentFilterSet(
            self.request.query_params, queryset=selectors.incident_list(user=self.request.user), request=self.request
        )
        if not filterset.is_valid():
            raise exceptions.ValidationError(filterset.errors)
        return filterset.qs

    @extend_schema(
        summary="Open an incident (its Art. 73 deadline is computed)",
        request=s.IncidentCreateSerializer,
        responses={201: s.IncidentDetailSerializer},
    )
    def post(self, request):
        data = self.validated(s.IncidentCreateSerializer)
        model = model_get(user=request.user, name=data["model"])
        alert_ids = data.get("alerts") or []
        alerts = list(Alert.objects.filter(pk__in=alert_ids, model=model))
        if len(alerts) != len(set(alert_ids)):
            raise exceptions.ValidationError({"alerts": ["Unknown alert, or an alert of another model."]})
        incident = incidents.incident_open(
            model=model,
            actor=request.user,
            severity=data["severity"],
            aware_at=data["aware_at"],
            summary=data["summary"],
            began_at=data.get("began_at"),
            alerts=alerts,
            affected=data.get("affected", ""),
            context=self.audit_context(),
        )
        return Response(s.IncidentDetailSerializer(incident).data, status=status.HTTP_201_CREATED)


class IncidentDetailView(OversightAPIView):
    serializer_class = s.IncidentDetailSerializer

    @extend_schema(summary="One incident with its timeline", responses=s.IncidentDetailSerializer)
    def get(self, request, pk: int):
        incident = selectors.incident_get(user=request.user, pk=pk)
        return Response(s.IncidentDetailSerializer(incident).data)


# --------------------------------------------------------------------------- actions on incidents, reviews, findings

# what an action answers with (the object as it is after the action), and the scope it needs
ACTION_TARGETS = {
    "incident": (selectors.incident_get, s.IncidentDetailSerializer, INCIDENTS),
    "review": (selectors.review_get, s.PeriodicReviewSerializer, REVIEWS),
    "finding": (selectors.finding_get, s.FindingSerializer, REVIEWS),
}


def _action_view(kind: str, name: str, body_class, call, summary: str):
    """POST /<kind>s/{id}/<name>/: parse the body, call the service on the object (passed as
    ``<kind>=``), answer the object as it is now."""
    get, answer, scope = ACTION_TARGETS[kind]

    class ActionView(OversightAPIView):
        serializer_class = body_class
        required_scopes = {"POST": scope, "*": READ}

        @extend_schema(summary=summary, request=body_class, responses=answer)
        def post(self, request, pk: int):
            target = get(user=request.user, pk=pk)
            call(**{kind: target}, actor=request.user, context=self.audit_context(), **self.validated(body_class))
            return Response(answer(get(user=request.user, pk=pk)).data)

    ActionView.__name__ = ActionView.__qualname__ = f"{kind.title()}{name.title()}View"
    return ActionView


IncidentNoteView = _action_view(
    "incident", "note", s.NoteSerializer, incidents.incident_note, "Add an investigation note"
)
IncidentSuspendView = _action_view(
    "incident",
    "suspend",
    s.SuspendSerializer,
    incidents.incident_suspend,
    "Suspend use: governed rollback or retirement",
)
IncidentReportView = _action_view(
    "incident", "report", s.ReportSerializer, incidents.incident_report, "File the initial or final Art. 73 report"
)
IncidentResolveView = _action_view(
    "incident", "resolve", s.ResolveSerializer, incidents.incident_resolve, "Record the root cause"
)
IncidentCloseView = _action_view("incident", "close", s.CloseSerializer, incidents.incident_close, "Close the incident")
ReviewAttestView = _action_view(
    "review", "attest", s.AttestSerializer, reviews.review_attest, "The owner attests card and intended use"
)
ReviewValidateView = _action_view(
    "review", "validate", s.ValidateSerializer, reviews.review_validate, "A validator signs the revalidation"
)
FindingRemediateView = _action_view(
    "finding", "remediate", s.RemediateSerializer, findings.finding_remediate, "Answer with remediation evidence"
)
FindingRetestView = _action_view(
    "finding", "retest", s.RetestSerializer, findings.finding_retest, "Retest: close, or send back"
)


# --------------------------------------------------------------------------- plan, reviews, findings


class MonitoringPlanView(OversightAPIView):
    serializer_class = s.MonitoringPlanSerializer

    @extend_schema(summary="A model's post-market monitoring plan (Art. 72)", responses=s.MonitoringPlanSerializer)
    def get(self, request, name: str):
        model = model_get(user=request.user, name=name)
        return Response(s.MonitoringPlanSerializer(plan.plan_current(model)).data)


class ReviewListView(OversightAPIView, generics.ListCreateAPIView):
    serializer_class = s.PeriodicReviewSerializer
    required_scopes = {"POST": REVIEWS, "*": READ}

    def get_queryset(self):
        model = model_get(user=self.request.user, name=self.kwargs["name"])
        return selectors.review_list(user=self.request.user, model=model).order_by("-opened_at", "-id")

    @extend_schema(
        summary="Open an unscheduled review",
        request=s.ReviewOpenSerializer,
        responses={201: s.PeriodicReviewSerializer},
    )
    def post(self, request, name: str):
        model = model_get(user=request.user, name=name)
        data = self.validated(s.ReviewOpenSerializer)
        review = reviews.review_open(
            model=model,
            actor=request.user,
            reason=data["reason"],
            due_at=data.get("due_at"),
            context=self.audit_context(),
        )
        return Response(s.PeriodicReviewSerializer(review).data, status=status.HTTP_201_CREATED)


class FindingListView(OversightAPIView, generics.ListCreateAPIView):
    serializer_class = s.FindingSerializer
    required_scopes = {"POST": REVIEWS, "*": READ}

    def get_queryset(self):
        model = model_get(user=self.request.user, name=self.kwargs["name"])
        return selectors.finding_list(user=self.request.user, model=model)

    @extend_schema(
        summary="Record a finding (validator)", request=s.FindingCreateSerializer, responses={201: s.FindingSerializer}
    )
    def post(self, request, name: str):
        model = model_get(user=request.user, name=name)
        data = self.validated(s.FindingCreateSerializer)
        owner = get_user_model().objects.filter(username=data["owner"]).first()
        review = None
        if data.get("review"):
            review = selectors.review_list(user=request.user, model=model).filter(pk=data["review"]).first()
            if review is None:
                raise ValidationError({"review": "No such review of this model."})
        finding = findings.finding_create(
            model=model,
            actor=request.user,
            severity=data["severity"],
            description=data["description"],
            owner=owner,
            due_at=data["due_at"],
            review=review,
            context=self.audit_context(),
        )
        return Response(s.FindingSerializer(finding).data, status=status.HTTP_201_CREATED)
