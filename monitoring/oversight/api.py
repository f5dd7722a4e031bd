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
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from mlops_portal.api.errors import Conflict
from mlops_portal.api.parsers import LimitedJSONParser
from mlops_portal.api.permissions import HasScope
from monitoring.models import Alert
from registry.selectors.inventory import model_get
from registry.services.audit import AuditContext

from . import findings, incidents, plan, reviews, selectors
from . import serializers as s
from .filters import IncidentFilterSet
from .incidents import IncidentConflict

READ, INCIDENTS, REVIEWS = "monitoring:read", "incidents:write", "reviews:write"


class OversightAPIView(generics.GenericAPIView):
    permission_classes = [IsAuthenticated, HasScope]
    parser_classes = [LimitedJSONParser]
    required_scopes = {"POST": INCIDENTS, "*": READ}
    filter_backends: list = []

    def audit_context(self) -> AuditContext:
        return AuditContext.from_request(self.request, source="api")

    def body(self, serializer_class) -> dict:
        if not isinstance(self.request.data, dict):
            raise exceptions.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

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
        data = self.body(s.IncidentCreateSerializer)
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


def _action_view(name: str, body_class, call, summary: str):
    """POST /incidents/{id}/<name>/: parse the body, call the service, answer the incident."""

    class ActionView(OversightAPIView):
        serializer_class = body_class

        @extend_schema(summary=summary, request=body_class, responses=s.IncidentDetailSerializer)
        def post(self, request, pk: int):
            incident = selectors.incident_get(user=request.user, pk=pk)
            data = self.body(body_class)
            call(incident=incident, actor=request.user, context=self.audit_context(), **data)
            fresh = selectors.incident_get(user=request.user, pk=pk)
            return Response(s.IncidentDetailSerializer(fresh).data)

    ActionView.__name__ = ActionView.__qualname__ = f"Incident{name.title()}View"
    return ActionView


IncidentNoteView = _action_view("note", s.NoteSerializer, incidents.incident_note, "Add an investigation note")
IncidentSuspendView = _action_view(
    "suspend", s.SuspendSerializer, incidents.incident_suspend, "Suspend use: governed rollback or retirement"
)
IncidentReportView = _action_view(
    "report", s.ReportSerializer, incidents.incident_report, "File the initial or final Art. 73 report"
)
IncidentResolveView = _action_view("resolve", s.ResolveSerializer, incidents.incident_resolve, "Record the root cause")
IncidentCloseView = _action_view("close", s.CloseSerializer, incidents.incident_close, "Close the incident")


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
        data = self.body(s.ReviewOpenSerializer)
        review = reviews.review_open(
            model=model,
            actor=request.user,
            reason=data["reason"],
            due_at=data.get("due_at"),
            context=self.audit_context(),
        )
        return Response(s.PeriodicReviewSerializer(review).data, status=status.HTTP_201_CREATED)


class ReviewAttestView(OversightAPIView):
    serializer_class = s.AttestSerializer
    required_scopes = {"POST": REVIEWS, "*": READ}

    @extend_schema(
        summary="The owner attests card and intended use",
        request=s.AttestSerializer,
        responses=s.PeriodicReviewSerializer,
    )
    def post(self, request, pk: int):
        review = selectors.review_get(user=request.user, pk=pk)
        review = reviews.review_attest(
            review=review, actor=request.user, context=self.audit_context(), **self.body(s.AttestSerializer)
        )
        return Response(s.PeriodicReviewSerializer(review).data)


class ReviewValidateView(OversightAPIView):
    serializer_class = s.ValidateSerializer
    required_scopes = {"POST": REVIEWS, "*": READ}

    @extend_schema(
        summary="A validator signs the revalidation", request=s.ValidateSerializer, responses=s.PeriodicReviewSerializer
    )
    def post(self, request, pk: int):
        review = selectors.review_get(user=request.user, pk=pk)
        review = reviews.review_validate(
            review=review, actor=request.user, context=self.audit_context(), **self.body(s.ValidateSerializer)
        )
        return Response(s.PeriodicReviewSerializer(review).data)


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
        data = self.body(s.FindingCreateSerializer)
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


class FindingRemediateView(OversightAPIView):
    serializer_class = s.RemediateSerializer
    required_scopes = {"POST": REVIEWS, "*": READ}

    @extend_schema(
        summary="Answer with remediation evidence", request=s.RemediateSerializer, responses=s.FindingSerializer
    )
    def post(self, request, pk: int):
        finding = selectors.finding_get(user=request.user, pk=pk)
        data = self.body(s.RemediateSerializer)
        finding = findings.finding_remediate(finding=finding, actor=request.user, context=self.audit_context(), **data)
        return Response(s.FindingSerializer(finding).data)


class FindingRetestView(OversightAPIView):
    serializer_class = s.RetestSerializer
    required_scopes = {"POST": REVIEWS, "*": READ}

    @extend_schema(summary="Retest: close, or send back", request=s.RetestSerializer, responses=s.FindingSerializer)
    def post(self, request, pk: int):
        finding = selectors.finding_get(user=request.user, pk=pk)
        data = self.body(s.RetestSerializer)
        finding = findings.finding_retest(
            finding=finding,
            actor=request.user,
            passed=data["passed"],
            comment=data.get("comment", ""),
            context=self.audit_context(),
        )
        return Response(s.FindingSerializer(finding).data)
