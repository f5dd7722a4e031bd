"""LLM applications' monitoring API: request records (bulk) and the prices of provider models.

* ``POST /api/v1/models/{name}/versions/{v}/requests/``: request records, as predictions are sent
  (same body limit, formats, all-or-nothing validation, error shape and resend rule); only for
  versions of ``llm_app`` models. ``monitoring:write``; the owner or an admin.
* ``GET /api/v1/prices/``: every price row (any signed-in user; ``monitoring:read`` or
  ``models:read``), filterable by ``provider`` and ``model``; ``POST`` adds a row (admins only,
  ``monitoring:write``; audited ``price.created``).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from mlops_portal.api.parsers import StrictSerializer
from monitoring.models_llm import FEEDBACK_MAX, FEEDBACK_MIN, Price
from monitoring.services.llm_cost import price_create
from monitoring.services.llm_requests import FLAG_SEPARATOR, MAX_FLAGS, llm_requests_ingest
from registry.api.promotions import PromotionScope
from registry.choices import TokenScope
from registry.rules import is_admin

from .ingest_schema import EXAMPLES, LLM_REQUEST_EXAMPLE, LLM_REQUEST_RECORD, batch_responses, ingest_request_body
from .views import INGEST_ERRORS, WRITE, IngestView, MonitoringAPIView

MAX_PRICE = 10**11  # per one million tokens: 18 digits with 6 decimals


class LLMRequestIngestView(IngestView):
    @extend_schema(
        summary="Send a batch of an LLM application's request records (JSON array, JSON Lines or CSV)",
        description=(
            "Records: request_id (1-100 characters, unique), timestamp (as for predictions: ISO 8601, or "
            "epoch seconds as a JSON number, within INGEST_MAX_FUTURE / INGEST_MAX_AGE_DAYS), tokens_in and "
            "tokens_out (whole numbers "
            f"≥ 0), latency_ms (≥ 0), optional feedback (a number in [{FEEDBACK_MIN:g}, {FEEDBACK_MAX:g}]: -1 "
            f"thumbs down, +1 thumbs up) and safety_flags (a list of up to {MAX_FLAGS} short names; in CSV one "
            f"cell separated by '{FLAG_SEPARATOR}'). No prompt or completion text: other fields are refused. "
            "Only versions of LLM applications (kind llm_app) take request records. All-or-nothing; errors "
            "name the row and field. Resending a stored body answers 200 with `duplicate_of_batch`."
        ),
        request=ingest_request_body(LLM_REQUEST_RECORD),
        responses={**batch_responses(LLM_REQUEST_EXAMPLE), **INGEST_ERRORS},
        examples=EXAMPLES["llm_requests"],
    )
    def post(self, request, name: str, version: int):
        return self.ingest_batch(llm_requests_ingest, name, version)


class PriceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Price
        fields = [
            "id",
            "provider",
            "model",
            "input_per_million",
            "output_per_million",
            "currency",
            "effective_from",
            "created_at",
        ]


def _amount() -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=18, decimal_places=6, min_value=0, max_value=MAX_PRICE)


class PriceWriteSerializer(StrictSerializer):
    provider = serializers.CharField(max_length=100)
    model = serializers.CharField(max_length=200)
    input_per_million = _amount()
    output_per_million = _amount()
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", max_length=3, help_text="ISO 4217, e.g. USD.")
    effective_from = serializers.DateTimeField()

    def validate(self, attrs):
        for name in ("provider", "model"):
            if "\x00" in attrs[name]:
                raise serializers.ValidationError({name: "NUL characters are not allowed."})
        return attrs


class PriceListView(MonitoringAPIView, generics.ListAPIView):
    permission_classes = [IsAuthenticated, PromotionScope]  # either read scope reads
    required_scopes = {"POST": WRITE, "GET": (TokenScope.MONITORING_READ, TokenScope.MODELS_READ)}
    serializer_class = PriceSerializer

    def get_queryset(self):
        qs = Price.objects.order_by("provider", "model", "-effective_from", "pk")
        for name in ("provider", "model"):
            value = self.request.query_params.get(name)
            if value and ("\x00" in value or len(value) > 200):
                raise exceptions.ValidationError({name: ["At most 200 characters, without NUL."]})
            if value:
                qs = qs.filter(**{name: value})
        return qs

    @extend_schema(
        summary="Prices of provider models per one million tokens (every version of each price)",
        parameters=[
            OpenApiParameter("provider", str, description="Only this provider."),
            OpenApiParameter("model", str, description="Only this provider model."),
        ],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Add a price (admins only; a changed price is a new row from effective_from on; audited)",
        request=PriceWriteSerializer,
        responses={
            201: PriceSerializer,
            400: OpenApiResponse(description="Invalid price, or one already starts then for this model."),
            403: OpenApiResponse(description="Not an admin, or the token lacks monitoring:write."),
        },
    )
    def post(self, request):
        if not is_admin(request.user):
            raise exceptions.PermissionDenied("Only an admin can set prices.")
        price = price_create(actor=request.user, context=self.audit_context(), **self.validated(PriceWriteSerializer))
        return Response(PriceSerializer(price).data, status=status.HTTP_201_CREATED)
