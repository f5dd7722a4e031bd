"""Cost and budget of a model (API), for every kind of model.

``GET/POST /api/v1/models/{name}/costs/``: records (all sources) with per-currency totals;
POST takes one JSON record, a JSON list, or a CSV export of the cloud bill (owner or admin,
``monitoring:write``). ``GET/PUT /api/v1/models/{name}/budget/``: the monthly budget with the
month-to-date spend (PUT: owner or admin, ``monitoring:write``). A model you may not see is a 404.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from mlops_portal import clock
from mlops_portal.api.errors import Conflict, form_error_details
from mlops_portal.api.pagination import StrictLimitOffsetPagination
from mlops_portal.api.parsers import LimitedJSONParser, StrictSerializer
from monitoring.choices import CostCategory
from monitoring.models_cost import CostRecord
from monitoring.selectors.cost import budget_status, cost_list, cost_totals
from monitoring.services.budgets import budget_set
from monitoring.services.costs import CostConflict, cost_records_ingest
from registry.selectors.inventory import model_get, model_get_changeable

from .views import INGEST_ERRORS, READ, WRITE, IngestView, MonitoringAPIView


class CostRecordSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.version", allow_null=True, read_only=True)

    class Meta:
        model = CostRecord
        fields = [
            "id",
            "period_start",
            "period_end",
            "amount",
            "currency",
            "category",
            "source",
            "external_id",
            "version",
            "details",
            "created_at",
        ]


class CostTotalSerializer(serializers.Serializer):
    currency = serializers.CharField()
    amount = serializers.DecimalField(max_digits=24, decimal_places=6)


class CostQueryForm(forms.Form):
    """``from``, ``to`` (YYYY-MM-DD; given empty: an error) and ``category`` (empty: any)."""

    category = forms.ChoiceField(choices=[("", "")] + CostCategory.choices, required=False)

    def clean(self):
        for name in ("from", "to"):  # an empty category is "any" (the schema lists "")
            if name in self.data and not str(self.data.get(name)).strip():
                self.add_error(name, "Give a value or leave the parameter out.")
        return super().clean()


CostQueryForm.base_fields["from"] = forms.DateField(required=False, input_formats=["%Y-%m-%d"])
CostQueryForm.base_fields["to"] = forms.DateField(required=False, input_formats=["%Y-%m-%d"])

COST_RECORD_BODY = {
    "type": "object",
    "properties": {
        "period_start": {"type": "string", "format": "date"},
        "period_end": {"type": "string", "format": "date"},
        "amount": {
            "oneOf": [
                {"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,6})?$"},
                {"type": "number", "minimum": 0, "maximum": 9999999999, "multipleOf": 0.01},
            ]
        },
        "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
        "category": {"type": "string", "enum": list(CostCategory.values)},
        "external_id": {"type": "string", "maxLength": 200},
    },
    "required": ["period_start", "period_end", "amount", "currency", "category"],
    "additionalProperties": False,
}


class CostListView(IngestView):
    accepted_content_types = ("application/json", "text/csv")

    @extend_schema(
        summary="A model's cost records, with totals per currency",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="Records whose period ends on or after this day"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Records whose period starts on or before this day"),
            OpenApiParameter("category", OpenApiTypes.STR, enum=list(CostCategory.values)),
        ],
        responses={
            200: OpenApiTypes.OBJECT,
            400: OpenApiResponse(description="A filter value is not a date or a category."),
            404: OpenApiResponse(description="No such model visible to you."),
        },
    )
    def get(self, request, name: str):
        model = model_get(user=request.user, name=name)
        query = CostQueryForm(request.query_params)
        if not query.is_valid():
            raise exceptions.ValidationError(form_error_details(query.errors))
        records = cost_list(
            user=request.user,
            model=model,
            date_from=query.cleaned_data["from"],
            date_to=query.cleaned_data["to"],
            category=query.cleaned_data["category"],
        )
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(records, request, view=self)
        response = paginator.get_paginated_response(CostRecordSerializer(page, many=True).data)
        response.data["totals"] = CostTotalSerializer(cost_totals(records), many=True).data
        return response

    @extend_schema(
        summary="Send cost records: one JSON record, a JSON list, or a CSV export of the cloud bill",
        description=(
            "JSON records: period_start, period_end (dates, both included), amount (decimal string or number; at "
            "most 10 integer and 6 decimal digits; never negative: a credit or refund is not a cost), "
            "currency (ISO 4217, e.g. EUR), category (serving, training, "
            "storage, inference, other), optional external_id. CSV (text/csv, a UTF-8 BOM is accepted): a header "
            "row with date (or period_start and period_end), amount (or cost), currency, category and optionally "
            "line_id (or external_id); other columns are ignored. All-or-nothing: errors name the row and field. "
            "Re-sending an external_id with the same values changes nothing; with other values it is a 409."
        ),
        request={
            "application/json": {"oneOf": [COST_RECORD_BODY, {"type": "array", "items": COST_RECORD_BODY}]},
            "text/csv": {"type": "string", "minLength": 1},
        },
        responses={
            201: OpenApiTypes.OBJECT,
            200: OpenApiTypes.OBJECT,
            409: OpenApiResponse(description="An external_id is already recorded with other values."),
            **INGEST_ERRORS,
        },
    )
    def post(self, request, name: str):
        model = self.writable_model(name)
        try:
            summary = self.ingest(cost_records_ingest, model=model)
        except CostConflict as exc:
            raise Conflict(exc.messages[0]) from exc
        return Response(summary, status=status.HTTP_201_CREATED if summary["created"] else status.HTTP_200_OK)


BUDGET_BODY = {
    "type": "object",
    "properties": {
        "monthly_amount": {
            "oneOf": [
                {"type": "string", "pattern": r"^([1-9][0-9]{0,11}(\.[0-9]{1,2})?|0?\.(0[1-9]|[1-9][0-9]?))$"},
                {"type": "number", "minimum": 0.01, "maximum": 999999999999, "multipleOf": 0.01},
            ]
        },
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "warning_share": {"type": "string", "pattern": r"^[1-9](\.[0-9]{1,3})?$|^0?\.[0-9]{0,2}[1-9]$"},
        "critical_share": {"type": "string", "pattern": r"^[1-9](\.[0-9]{1,3})?$|^0?\.[0-9]{0,2}[1-9]$"},
    },
    "required": ["monthly_amount", "currency"],
    "additionalProperties": False,
}


class BudgetWriteSerializer(StrictSerializer):
    monthly_amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        error_messages={"min_value": "Must be at least {min_value}: a budget is an amount to spend, not a credit."},
    )
    currency = serializers.RegexField(r"^[A-Z]{3}\Z", max_length=3)
    warning_share = serializers.DecimalField(
        max_digits=5, decimal_places=3, min_value=Decimal("0.001"), max_value=Decimal("10"), required=False
    )
    critical_share = serializers.DecimalField(
        max_digits=5, decimal_places=3, min_value=Decimal("0.001"), max_value=Decimal("10"), required=False
    )


class BudgetView(MonitoringAPIView):
    http_method_names = ["get", "put", "head", "options"]
    parser_classes = [LimitedJSONParser]
    required_scopes = {"PUT": WRITE, "*": READ}
    serializer_class = BudgetWriteSerializer

    def get_object(self):
        """What DRF's OPTIONS metadata checks before describing PUT: the visible model."""
        return model_get(user=self.request.user, name=self.kwargs["name"])

    @extend_schema(
        summary="A model's monthly budget and its month-to-date spend",
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="No model, or no budget set.")},
    )
    def get(self, request, name: str):
        model = model_get(user=request.user, name=name)
        status_ = budget_status(model=model, today=clock.now().date())
        if status_ is None:
            raise exceptions.NotFound(f"No budget set for {model.name}.")
        return Response(budget_body(status_))

    @extend_schema(
        summary="Set a model's monthly budget (owner or admin; audited)",
        request={"application/json": BUDGET_BODY},
        description="warning_share (default 0.8) must not exceed critical_share (default 1.0).",
        responses={
            200: OpenApiTypes.OBJECT,
            400: OpenApiResponse(description="Invalid budget; the error names the field."),
            403: OpenApiResponse(description="Not the owner or an admin, or the token lacks monitoring:write."),
            404: OpenApiResponse(description="No such model visible to you."),
        },
    )
    def put(self, request, name: str):
        model = model_get_changeable(
            user=request.user, name=name, denied="Only the model's owner or an admin can set its budget."
        )
        values = self.validated(BudgetWriteSerializer)
        budget = budget_set(model=model, actor=request.user, context=self.audit_context(), values=values)
        return Response(budget_body(budget_status(model=model, today=clock.now().date(), budget=budget)))


def budget_body(s) -> dict:
    b = s.budget
    return {
        "model": b.model.name,
        "monthly_amount": str(b.monthly_amount),
        "currency": b.currency,
        "warning_share": str(b.warning_share),
        "critical_share": str(b.critical_share),
        "month": s.month.isoformat(),
        "month_to_date": str(s.spent),
        "share_used": str(s.share.quantize(Decimal("0.0001"))),
        "level": s.level or "ok",
        "other_currencies": [{"currency": t["currency"], "amount": str(t["amount"])} for t in s.other_currencies],
        "updated_at": b.updated_at.isoformat(),
    }


__all__ = ["BudgetView", "CostListView", "READ"]
