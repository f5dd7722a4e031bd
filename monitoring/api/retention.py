"""Retention, legal holds, erasure requests and records of processing over the API.

* ``GET/PATCH /api/v1/models/{name}/retention/``: ``raw_days``, ``legal_hold``,
  ``legal_hold_reason``, ``legal_hold_article``, and the records of processing's entries
  ``data_subject_categories``, ``recipients``, ``third_country_transfers`` (GDPR Art. 30(1)(c)-(e);
  strings up to 2,000 characters, "" is not recorded). Read with ``monitoring:read`` by anyone who may
  see the model (others get 404); changed with ``privacy:write`` by a privacy officer or an
  admin. A ``raw_days`` below 183 on a high-risk model is a 400 naming the floor; ``null``
  returns the model to its risk tier's default (``RETENTION_DEFAULT_DAYS``). Read, ``raw_days``
  is the policy's days or the tier's default, and the read-only ``raw_days_source`` says which
  (``"policy"`` or ``"tier default"``); ``effective_raw_days`` adds the high-risk floor.
* ``POST /api/v1/erasure-requests/`` (``privacy:write``) with ``subject_id`` → 201 with the
  request's id, status and per-model counts (or "held" with reason and article);
  ``GET /api/v1/erasure-requests/`` and ``…/{id}/`` for privacy officers, admins and auditors.
* ``GET /api/v1/records-of-processing/?format=json|csv`` (``audit:read``): GDPR Art. 30 records;
  each download is audited (``privacy.records_exported``, with the body's SHA-256), and the
  ``X-Audit-Seq`` header names that event.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from mlops_portal.api.parsers import StrictSerializer
from monitoring.models import ErasureRequest, RetentionPolicy
from monitoring.models_retention import ART30_FIELDS, MAX_ART30_LENGTH, MAX_RAW_DAYS
from monitoring.selectors_privacy import (
    erasure_request_get,
    erasure_request_list,
    records_csv,
    records_header,
    records_of_processing,
)
from monitoring.services.erasure import erasure_request_create, erasure_results
from monitoring.services.records import records_of_processing_record_export
from monitoring.services.retention import (
    RAW_DAYS_POLICY,
    RAW_DAYS_TIER_DEFAULT,
    effective_raw_days,
    policy_raw_days,
    raw_days_source,
    retention_policy_get,
    retention_policy_update,
)
from monitoring.services.subjects import MAX_SUBJECT_LENGTH
from registry.api.promotions import PromotionScope
from registry.rules import can_manage_retention, can_request_erasure, can_view_privacy
from registry.stepup import step_up_check

from .views import ModelSettingsView, MonitoringAPIView

PRIVACY_WRITE = "privacy:write"


class RetentionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    raw_days = serializers.SerializerMethodField()  # the policy's days, or the tier's default (never null)
    raw_days_source = serializers.SerializerMethodField()
    effective_raw_days = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)  # null: the tier's default, never set

    class Meta:
        model = RetentionPolicy
        fields = [
            "model",
            "raw_days",
            "raw_days_source",
            "effective_raw_days",
            "legal_hold",
            "legal_hold_reason",
            "legal_hold_article",
            *ART30_FIELDS,
            "updated_at",
        ]

    def get_raw_days(self, policy) -> int:
        return policy_raw_days(policy)

    @extend_schema_field({"type": "string", "enum": [RAW_DAYS_POLICY, RAW_DAYS_TIER_DEFAULT]})
    def get_raw_days_source(self, policy) -> str:
        return raw_days_source(policy)

    def get_effective_raw_days(self, policy) -> int:
        return effective_raw_days(policy)


class RetentionWriteSerializer(StrictSerializer):
    raw_days = serializers.IntegerField(
        min_value=1, max_value=MAX_RAW_DAYS, required=False, allow_null=True, help_text="null: the risk tier's default."
    )
    legal_hold = serializers.BooleanField(required=False)
    legal_hold_reason = serializers.CharField(max_length=2000, allow_blank=True, required=False)
    legal_hold_article = serializers.CharField(max_length=200, allow_blank=True, required=False)
    data_subject_categories = serializers.CharField(max_length=MAX_ART30_LENGTH, allow_blank=True, required=False)
    recipients = serializers.CharField(max_length=MAX_ART30_LENGTH, allow_blank=True, required=False)
    third_country_transfers = serializers.CharField(max_length=MAX_ART30_LENGTH, allow_blank=True, required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict) and "legal_hold" in data and not isinstance(data["legal_hold"], bool):
            raise serializers.ValidationError({"legal_hold": ["Expected true or false."]})
        if isinstance(data, dict) and isinstance(data.get("raw_days"), bool | float | str):
            raise serializers.ValidationError({"raw_days": ["Expected an integer."]})
        return super().to_internal_value(data)


class ErasureRequestWriteSerializer(StrictSerializer):
    subject_id = serializers.CharField(max_length=MAX_SUBJECT_LENGTH, trim_whitespace=True)


class ErasureResultSerializer(serializers.Serializer):
    model = serializers.CharField()
    predictions = serializers.IntegerField()
    labels = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["erased", "held"])
    reason = serializers.CharField(required=False)
    article = serializers.CharField(required=False)


class ErasureRequestSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", default=None, read_only=True)
    results = serializers.SerializerMethodField()

    @extend_schema_field(ErasureResultSerializer(many=True))
    def get_results(self, obj) -> list[dict]:
        return erasure_results(obj.outcomes.all())

    class Meta:
        model = ErasureRequest
        fields = ["id", "status", "results", "requested_by", "requested_at", "due_at", "completed_at"]


@extend_schema_view(
    get=extend_schema(summary="A model's retention of raw data and legal hold"),
    patch=extend_schema(
        summary="Change retention, the legal hold or the Art. 30 entries (privacy officers and admins; audited)",
        request=RetentionWriteSerializer,
    ),
)
class RetentionView(ModelSettingsView):
    required_scopes = {"PATCH": PRIVACY_WRITE, "*": "monitoring:read"}
    serializer_class = RetentionSerializer
    write_serializer_class = RetentionWriteSerializer

    def settings_get(self, model):
        return retention_policy_get(model=model)

    def settings_update(self, model, changes: dict):
        if can_manage_retention(self.request.user):
            step_up_check(self.request)  # a retention change or a legal hold is sensitive (the service refuses others)
        return retention_policy_update(
            model=model, actor=self.request.user, context=self.audit_context(), changes=changes
        )


class SubjectKeyMissing(exceptions.APIException):
    """No ``SUBJECT_KEY`` configured: the installation cannot hash subject ids (503, not a 500)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "subject_key_missing"


# Auditors see erasure requests (``can_view_privacy``) but their tokens cannot hold privacy:write
# (``registry.rules.usable_scopes``): either scope reads them.
READ_ERASURES = (PRIVACY_WRITE, "audit:read")


class ErasureRequestListView(MonitoringAPIView, generics.ListAPIView):
    permission_classes = [IsAuthenticated, PromotionScope]  # a tuple: any of these scopes
    required_scopes = {"GET": READ_ERASURES, "*": PRIVACY_WRITE}
    serializer_class = ErasureRequestSerializer

    def get_queryset(self):
        if not can_view_privacy(self.request.user):
            raise exceptions.PermissionDenied("Only privacy officers, auditors and admins see erasure requests.")
        return erasure_request_list(user=self.request.user)

    @extend_schema(summary="Erasure requests, newest first")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Erase a data subject's raw predictions and labels (GDPR Art. 17)",
        request=ErasureRequestWriteSerializer,
        responses={201: ErasureRequestSerializer, 503: OpenApiResponse(description="SUBJECT_KEY not configured")},
    )
    def post(self, request):
        subject_id = self.validated(ErasureRequestWriteSerializer)["subject_id"]
        if can_request_erasure(request.user):
            step_up_check(request)  # an erasure is sensitive (the service refuses others)
        try:
            erasure = erasure_request_create(subject_id=subject_id, actor=request.user, context=self.audit_context())
        except ImproperlyConfigured as exc:
            raise SubjectKeyMissing(str(exc)) from None
        return Response(ErasureRequestSerializer(erasure).data, status=status.HTTP_201_CREATED)


class ErasureRequestDetailView(MonitoringAPIView):
    permission_classes = [IsAuthenticated, PromotionScope]
    required_scopes = {"GET": READ_ERASURES, "*": PRIVACY_WRITE}
    serializer_class = ErasureRequestSerializer

    @extend_schema(summary="One erasure request", responses=ErasureRequestSerializer)
    def get(self, request, pk: int):
        try:
            erasure = erasure_request_get(user=request.user, pk=pk)
        except ErasureRequest.DoesNotExist:
            raise exceptions.NotFound("No such erasure request.") from None
        return Response(ErasureRequestSerializer(erasure).data)


class RecordsOfProcessingView(MonitoringAPIView):
    required_scopes = {"*": "audit:read"}

    def perform_content_negotiation(self, request, force=False):
        """``?format=csv`` is this export's parameter, not DRF's renderer override."""
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        summary="Records of processing (GDPR Art. 30), one per model",
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request):
        if not can_view_privacy(request.user):
            raise exceptions.PermissionDenied("Only privacy officers, auditors and admins export these records.")
        fmt = request.query_params.get("format") or "json"  # empty means the default, as for the other filters
        if fmt not in ("json", "csv"):
            raise exceptions.ValidationError({"format": ["json or csv."]})
        records = records_of_processing(user=request.user)
        header = records_header(records)
        if fmt == "csv":
            content, content_type = records_csv(records, header).encode(), "text/csv; charset=utf-8"
        else:
            content, content_type = JSONRenderer().render({**header, "records": records}), "application/json"
        event = records_of_processing_record_export(
            actor=request.user, context=self.audit_context(), fmt=fmt, records=len(records), content=content
        )
        response = HttpResponse(content, content_type=content_type)
        response["X-Audit-Seq"] = str(event.seq)  # the event holding this file's SHA-256
        if fmt == "csv":
            response["Content-Disposition"] = 'attachment; filename="records-of-processing.csv"'
        return response
