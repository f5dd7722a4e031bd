"""API: audit log list and export, and the point-in-time inventory.

* ``GET /api/v1/audit/`` — events, newest first, filtered by ``AuditEventFilter`` (the
  same FilterSet as the audit log page) and keyset-paginated: ``?before=<seq>`` /
  ``?after=<seq>`` and ``limit`` (max 500); ``next``/``previous`` links, no COUNT(*).
* ``GET /api/v1/audit/export?format=csv|jsonl`` — the same filters, streamed, ending
  with a manifest; ``python -m registry.verify_export FILE`` checks it offline.
* ``GET /api/v1/inventory/as-of?time=ISO8601`` — which version of each model was in
  production then, since when, who requested and who approved it.

Audit endpoints need the ``audit:read`` scope (tokens) and the auditor, privacy officer or admin role.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.urls import path, re_path, reverse
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from mlops_portal.api.permissions import HasScope, token_scopes
from mlops_portal.api.transactions import AtomicWritesMixin
from registry.choices import AuditSource, TokenScope
from registry.models import AuditEvent
from registry.rules import can_view_audit
from registry.selectors.audit import (
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    AuditEventFilter,
    InvalidTime,
    audit_event_page,
    audit_event_queryset,
    inventory_as_of,
    parse_as_of_time,
)
from registry.verify_export import EXPORT_COLUMNS
from registry.views.audit import BadCursor, export_response, parse_cursor, start_export


class CanViewAudit(permissions.BasePermission):
    message = "Only auditors, privacy officers and admins may read the audit log."

    def has_permission(self, request, view) -> bool:
        return bool(can_view_audit(request.user))


class HasAnyReadScope(permissions.BasePermission):
    """For the as-of inventory: a token with models:read or audit:read."""

    message = "This token needs the 'models:read' or 'audit:read' scope."

    def has_permission(self, request, view) -> bool:
        scopes = token_scopes(request)
        return scopes is None or bool(scopes & {TokenScope.MODELS_READ, TokenScope.AUDIT_READ})


class AuditEventSerializer(serializers.ModelSerializer):
    """Every hashed field plus the hash, so an API client can recompute it."""

    actor_id = serializers.IntegerField(allow_null=True)
    model_id = serializers.IntegerField(allow_null=True)
    timestamp = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = list(EXPORT_COLUMNS)  # the hashed fields and the hash, one definition

    def get_timestamp(self, obj) -> str:
        # Exactly the string that was hashed.
        return obj.timestamp.isoformat()


class _NoFormatNegotiation:
    """``?format=csv`` is our export parameter, not DRF's renderer override."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


def _filters(request) -> AuditEventFilter:
    filterset = AuditEventFilter(request.query_params, queryset=audit_event_queryset(user=request.user))
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)  # as DjangoFilterBackend does for every other list
    return filterset


def _limit(request) -> int:
    raw = request.query_params.get("limit", "")
    if not raw:
        return PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise exceptions.ValidationError({"limit": [f"Must be an integer from 1 to {MAX_PAGE_SIZE}."]})
    return int(raw)


_FILTER_PARAMS = [
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="timestamp >= (ISO 8601)"),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="timestamp < (ISO 8601)"),
    OpenApiParameter("model", str, description="model name"),
    OpenApiParameter("actor", str, description="actor username"),
    OpenApiParameter("action", str, description="exact action, or a prefix ending in '.' (e.g. 'promotion.')"),
    OpenApiParameter("source", str, enum=list(AuditSource.values)),
    OpenApiParameter("from_seq", int),
    OpenApiParameter("to_seq", int),
]


class AuditPageSerializer(serializers.Serializer):
    """One keyset page of audit events."""

    results = AuditEventSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class AuditEventListView(AtomicWritesMixin, _NoFormatNegotiation, APIView):
    """Audit events, newest first, keyset-paginated on seq."""

    permission_classes = [permissions.IsAuthenticated, HasScope, CanViewAudit]
    required_scopes = {"GET": TokenScope.AUDIT_READ}
    serializer_class = AuditEventSerializer

    @extend_schema(
        parameters=[
            *_FILTER_PARAMS,
            OpenApiParameter("before", int, description="events older than this seq (next page)"),
            OpenApiParameter("after", int, description="events newer than this seq (previous page)"),
            OpenApiParameter("limit", int, description=f"page size, 1..{MAX_PAGE_SIZE} (default {PAGE_SIZE})"),
        ],
        responses=AuditPageSerializer,
    )
    def get(self, request):
        filterset = _filters(request)
        try:
            before, after = parse_cursor(request)
        except BadCursor as exc:
            raise exceptions.ValidationError({"cursor": [str(exc)]}) from exc
        limit = _limit(request)
        page = audit_event_page(filterset.qs, before=before, after=after, limit=limit)
        query = request.query_params.copy()
        for key in ("before", "after"):
            query.pop(key, None)

        def link(key, value):
            if value is None:
                return None
            query[key] = str(value)
            url = request.build_absolute_uri(reverse("api:audit_list")) + "?" + query.urlencode()
            query.pop(key)
            return url

        return Response(
            {
                "results": AuditEventSerializer(page.events, many=True).data,
                "next": link("before", page.older),
                "previous": link("after", page.newer),
            }
        )


class AuditExportView(AtomicWritesMixin, _NoFormatNegotiation, APIView):
    """Streamed CSV or JSON Lines export with a closing manifest (records ``audit.exported``).
    GET only: a HEAD, which sends no file, must not record an export (405, as the page's button)."""

    http_method_names = ["get", "options"]
    permission_classes = [permissions.IsAuthenticated, HasScope, CanViewAudit]
    required_scopes = {"GET": TokenScope.AUDIT_READ}

    @extend_schema(
        parameters=[*_FILTER_PARAMS, OpenApiParameter("format", str, enum=["csv", "jsonl"])],
        responses={(200, "text/csv"): OpenApiTypes.STR, (200, "application/jsonl"): OpenApiTypes.STR},
    )
    def get(self, request):
        filterset = _filters(request)
        try:
            export = start_export(request, filterset, AuditSource.API)
        except ValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict) from exc
        return export_response(export)


class InventoryAsOfView(AtomicWritesMixin, APIView):
    """For each model you may see: the production version at ``time``, since when, and its approvals."""

    permission_classes = [permissions.IsAuthenticated, HasAnyReadScope]

    @extend_schema(
        parameters=[OpenApiParameter("time", OpenApiTypes.DATETIME, required=True)],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        try:
            moment = parse_as_of_time(request.query_params.get("time"))
        except InvalidTime as exc:
            raise exceptions.ValidationError({"time": [str(exc)]}) from exc
        entries = inventory_as_of(user=request.user, moment=moment)
        return Response({"time": moment.isoformat(), "models": [e.as_dict() for e in entries]})


urlpatterns = [
    path("audit/", AuditEventListView.as_view(), name="audit_list"),
    re_path(r"^audit/export/?$", AuditExportView.as_view(), name="audit_export"),
    re_path(r"^inventory/as-of/?$", InventoryAsOfView.as_view(), name="inventory_as_of"),
]
