"""Monitoring API views: ingestion (reference, predictions, labels), metrics, health, alerts.

Ingestion bodies are read raw, up to ``settings.INGEST_MAX_BODY_BYTES`` (default 64 MiB;
larger is a 413 telling the client to split the batch). Reads need ``monitoring:read``,
writes ``monitoring:write``; owners and admins write, anyone who may see the model reads,
and a model you may not see is a 404.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, metadata, parsers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from mlops_portal.api.errors import Conflict, PayloadTooLarge
from mlops_portal.api.filtering import StrictFilterBackend
from mlops_portal.api.parsers import LimitedJSONParser
from mlops_portal.api.permissions import HasScope
from mlops_portal.api.transactions import AtomicWritesMixin
from monitoring.filters import AlertFilterSet, MetricFilterSet
from monitoring.models import MetricValue
from monitoring.selectors import alert_get, alert_list, health_get, metric_series, retrain_trigger_list
from monitoring.services.alerts import AlertStateConflict, alert_acknowledge
from monitoring.services.config import monitoring_config_get, monitoring_config_update
from monitoring.services.ingest_parsing import ACCEPTED_TYPES
from monitoring.services.ingestion import UnsupportedFormat, labels_ingest, predictions_ingest, reference_upload
from registry.rules import can_change_model
from registry.selectors.inventory import model_get, version_get
from registry.services.audit import AuditContext

from .ingest_schema import (
    EXAMPLES,
    LABEL_RECORD,
    LABELS_STORED,
    PREDICTION_EXAMPLE,
    PREDICTION_RECORD,
    batch_responses,
    ingest_request_body,
)
from .serializers import (
    AcknowledgeSerializer,
    AlertSerializer,
    HealthSerializer,
    MetricValueSerializer,
    MonitoringConfigSerializer,
    MonitoringConfigWriteSerializer,
    ReferenceProfileSerializer,
    RetrainTriggerSerializer,
)

READ, WRITE = "monitoring:read", "monitoring:write"


class MonitoringAPIView(AtomicWritesMixin, generics.GenericAPIView):
    permission_classes = [IsAuthenticated, HasScope]
    parser_classes = [LimitedJSONParser]
    required_scopes = {"POST": WRITE, "PATCH": WRITE, "*": READ}
    filter_backends: list = []

    def audit_context(self) -> AuditContext:
        return AuditContext.from_request(self.request, source="api")

    def validated(self, serializer_class, *, partial: bool = False) -> dict:
        """The request's JSON object as ``serializer_class`` validates it (400 naming the fields)."""
        if not isinstance(self.request.data, dict):
            raise exceptions.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        serializer = serializer_class(data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def writable_model(self, name: str):
        model = model_get(user=self.request.user, name=name)
        if not can_change_model(self.request.user, model):
            raise PermissionDenied("Only the model's owner or an admin can send monitoring data.")
        return model


class IngestBodyParser(parsers.BaseParser):
    """The raw body of an ingestion request, up to INGEST_MAX_BODY_BYTES (413 beyond, checked
    before reading when the length is declared). Any media type: the service reads JSON, JSON
    Lines, CSV (and Parquet for reference data) and answers 415 for the others. A parser (rather
    than reading the request by hand) lets session requests pass DRF's CSRF check, which reads
    the request's form data, and lets OPTIONS describe the endpoint."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        limit = settings.INGEST_MAX_BODY_BYTES
        message = (
            f"Request body larger than {limit} bytes (INGEST_MAX_BODY_BYTES); split the batch into smaller requests."
        )
        request = (parser_context or {}).get("request")
        declared = (request.META.get("CONTENT_LENGTH") or "") if request is not None else ""
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(message)
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(message)
        return body


def ingest_body(request) -> bytes:
    """The parsed raw body (DRF gives an empty dict for an empty body)."""
    data = request.data
    return data if isinstance(data, bytes) else b""


INGEST_RECORDS = {"type": "array", "items": {"type": "object", "additionalProperties": True}}
INGEST_BODY = {
    "application/json": INGEST_RECORDS,
    "application/x-ndjson": OpenApiTypes.STR,
    "text/csv": OpenApiTypes.STR,
}
INGEST_ERRORS = {
    400: OpenApiResponse(description="Invalid batch; the error names the row and field. Nothing is stored."),
    403: OpenApiResponse(description="Not the model's owner or an admin, or the token lacks monitoring:write."),
    404: OpenApiResponse(description="No such model or version visible to you."),
    413: OpenApiResponse(description="Body larger than INGEST_MAX_BODY_BYTES: split the batch."),
    415: OpenApiResponse(description="Content-Type is none of JSON, JSON Lines, CSV."),
}


class IngestMetadata(metadata.SimpleMetadata):
    """OPTIONS: the body formats a POST accepts (these views have no serializer to describe)."""

    def determine_actions(self, request, view) -> dict:
        return {"POST": {"content_types": list(view.accepted_content_types)}} if "POST" in view.allowed_methods else {}


class IngestView(MonitoringAPIView):
    parser_classes = [IngestBodyParser]
    metadata_class = IngestMetadata
    accepted_content_types = ACCEPTED_TYPES

    def ingest(self, service, **kwargs) -> dict:
        try:
            return service(
                body=ingest_body(self.request),
                content_type=self.request.content_type,
                actor=self.request.user,
                context=self.audit_context(),
                **kwargs,
            )
        except UnsupportedFormat as exc:
            raise exceptions.UnsupportedMediaType(self.request.content_type, detail=exc.messages[0]) from exc

    def ingest_batch(self, service, name: str, version: int) -> Response:
        """A batch of records of one version (predictions, LLM requests): 201 with the new batch,
        200 with ``duplicate_of_batch`` for a body already stored."""
        self.writable_model(name)
        summary = self.ingest(service, version=version_get(user=self.request.user, name=name, version=version))
        duplicate = "duplicate_of_batch" in summary
        return Response(summary, status=status.HTTP_200_OK if duplicate else status.HTTP_201_CREATED)


class PredictionIngestView(IngestView):
    @extend_schema(
        summary="Send a batch of predictions (JSON array, JSON Lines or CSV)",
        description=(
            "Records: prediction_id (1-100 characters, unique), timestamp (ISO 8601, no offset meaning UTC, "
            "offsets -12:00 to +14:00; or epoch seconds as a JSON number, not in CSV), features (object; "
            "flat columns in CSV), prediction, score, optional subject_id; other fields are refused. "
            "Timestamps more than INGEST_MAX_FUTURE seconds (default 86,400: one day) ahead of the server "
            "clock, or older than INGEST_MAX_AGE_DAYS days (default 400), are refused. The batch is "
            "all-or-nothing; errors name the row and field. NaN, infinity and NUL characters are refused. "
            "Resending a body already stored for this version (e.g. after a timeout) answers 200 with "
            "`duplicate_of_batch` (the stored batch's id) and stores nothing; a new batch answers 201 with "
            "`batch`. Body limit: INGEST_MAX_BODY_BYTES (default 64 MiB), 413 beyond."
        ),
        request=ingest_request_body(PREDICTION_RECORD),
        responses={**batch_responses(PREDICTION_EXAMPLE), **INGEST_ERRORS},
        examples=EXAMPLES["predictions"],
    )
    def post(self, request, name: str, version: int):
        return self.ingest_batch(predictions_ingest, name, version)


class LabelIngestView(IngestView):
    @extend_schema(
        summary="Send ground-truth labels by prediction id (JSON array, JSON Lines or CSV)",
        description=(
            "Records: prediction_id, label, optional subject_id; other fields are refused. "
            "A re-sent label replaces the previous one, so resending a batch "
            "is safe. Errors name the row and field; nothing of a refused batch is stored."
        ),
        request=ingest_request_body(LABEL_RECORD),
        responses={201: OpenApiResponse(LABELS_STORED, description="Labels stored, new or replaced."), **INGEST_ERRORS},
        examples=EXAMPLES["labels"],
    )
    def post(self, request, name: str):
        model = self.writable_model(name)
        summary = self.ingest(labels_ingest, model=model)
        return Response(summary, status=status.HTTP_201_CREATED)


class ReferenceUploadView(IngestView):
    accepted_content_types = ("text/csv", "application/vnd.apache.parquet")

    @extend_schema(
        summary="Upload reference data (CSV or Parquet body); the profile is computed by a worker",
        request={"text/csv": OpenApiTypes.STR, "application/vnd.apache.parquet": OpenApiTypes.BINARY},
        description=(
            "A version's reference data is evidence: replacing it is refused (409, naming the request) while "
            "a promotion request for the version is pending, and for good once one was approved. A first "
            "upload, or one replacing an upload whose profile failed, is always taken."
        ),
        responses={
            202: ReferenceProfileSerializer,
            409: OpenApiResponse(description="The version's reference data is frozen by a promotion request."),
            **INGEST_ERRORS,
        },
    )
    def post(self, request, name: str, version: int):
        self.writable_model(name)
        found = version_get(user=request.user, name=name, version=version)
        # a 409 (PromotionConflict) when it replaces reference data approved (or under review)
        profile = self.ingest(reference_upload, version=found)
        return Response(ReferenceProfileSerializer(profile).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="The reference profile's status", responses=ReferenceProfileSerializer)
    def get(self, request, name: str, version: int):
        found = version_get(user=request.user, name=name, version=version)
        profile = getattr(found, "reference_profile", None)
        if profile is None:
            raise exceptions.NotFound(f"No reference data uploaded for {name} v{version}.")
        return Response(ReferenceProfileSerializer(profile).data)


class MetricListView(MonitoringAPIView, generics.ListAPIView):
    """Metric time series, filtered by ``MetricFilterSet`` (``start``/``end`` are instants in UTC)."""

    serializer_class = MetricValueSerializer
    filter_backends = [StrictFilterBackend]
    filterset_class = MetricFilterSet

    @extend_schema(summary="Metric time series")
    def get(self, request, name: str):
        return super().get(request, name=name)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema reads the FilterSet's model
            return MetricValue.objects.none()
        model = model_get(user=self.request.user, name=self.kwargs["name"])
        return metric_series(user=self.request.user, model=model)


class HealthView(MonitoringAPIView):
    @extend_schema(summary="A model's health with the reasons", responses=HealthSerializer)
    def get(self, request, name: str):
        model = model_get(user=request.user, name=name)
        health = health_get(user=request.user, model=model)
        if health is None:
            return Response(
                {
                    "model": model.name,
                    "status": "no_data",
                    "reasons": [],
                    "window_start": None,
                    "window_end": None,
                    "computed_at": None,
                }
            )
        return Response(HealthSerializer(health).data)


class RetrainTriggerListView(MonitoringAPIView, generics.ListAPIView):
    serializer_class = RetrainTriggerSerializer

    def get_queryset(self):
        model = model_get(user=self.request.user, name=self.kwargs["name"])
        return retrain_trigger_list(user=self.request.user, model=model)


class ModelSettingsView(MonitoringAPIView):
    """GET and PATCH of one of a model's settings (its monitoring configuration, its retention):
    read by ``settings_get``, changed by ``settings_update`` (an audited service) with any subset
    of the fields ``write_serializer_class`` accepts; answered in ``serializer_class``."""

    http_method_names = ["get", "patch", "head", "options"]
    write_serializer_class: type

    def settings_get(self, model):
        raise NotImplementedError

    def settings_update(self, model, changes: dict):
        raise NotImplementedError

    def get(self, request, name: str):
        model = model_get(user=request.user, name=name)
        return Response(self.get_serializer(self.settings_get(model)).data)

    def patch(self, request, name: str):
        model = model_get(user=request.user, name=name)
        changes = self.validated(self.write_serializer_class, partial=True)
        return Response(self.get_serializer(self.settings_update(model, changes)).data)


@extend_schema_view(
    get=extend_schema(summary="A model's monitoring configuration"),
    patch=extend_schema(summary="Change monitoring thresholds (audited)", request=MonitoringConfigWriteSerializer),
)
class MonitoringConfigView(ModelSettingsView):
    serializer_class = MonitoringConfigSerializer
    write_serializer_class = MonitoringConfigWriteSerializer

    def settings_get(self, model):
        return monitoring_config_get(model=model)

    def settings_update(self, model, changes: dict):
        return monitoring_config_update(
            model=model, actor=self.request.user, context=self.audit_context(), changes=changes
        )


class AlertListView(MonitoringAPIView, generics.ListAPIView):
    """Alerts of visible models, filtered by ``AlertFilterSet`` (the alerts page's)."""

    serializer_class = AlertSerializer
    filter_backends = [StrictFilterBackend]
    filterset_class = AlertFilterSet

    @extend_schema(summary="Alerts on the models you may see")
    def get(self, request):
        return super().get(request)

    def get_queryset(self):
        return alert_list(user=self.request.user)


class AlertAcknowledgeView(MonitoringAPIView):
    serializer_class = AcknowledgeSerializer  # what OPTIONS describes (DRF's metadata asks for it)

    @extend_schema(
        summary="Acknowledge an open alert with a comment", request=AcknowledgeSerializer, responses=AlertSerializer
    )
    def post(self, request, pk: int):
        alert = alert_get(user=request.user, pk=pk)
        comment = self.validated(AcknowledgeSerializer)["comment"]
        try:
            alert = alert_acknowledge(alert=alert, actor=request.user, comment=comment, context=self.audit_context())
        except AlertStateConflict as exc:
            raise Conflict(exc.messages[0]) from exc
        return Response(AlertSerializer(alert).data)
