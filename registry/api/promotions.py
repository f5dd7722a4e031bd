"""API: promotion requests and their lifecycle actions, and rollback. Mounted under /api/v1/.

Every action is an explicit endpoint calling the same service as the browser UI.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from mlops_portal.api.errors import error_body
from mlops_portal.api.parsers import StrictSerializer
from mlops_portal.api.permissions import HasScope, token_scopes, view_handles
from mlops_portal.api.transactions import AtomicWritesMixin
from registry.choices import EvaluationKind, PromotionStatus, Stage, TokenScope
from registry.evidence_runs import request_metrics, request_run
from registry.forms_promotions import PromotionRequestFilterSet
from registry.gates_metric import snapshot_tolerance
from registry.models import ModelVersion, PromotionRequest, StageTransition
from registry.selectors.inventory import model_get
from registry.selectors.promotions import (
    metric_comparison,
    production_version,
    production_version_at_decision,
    promotion_approvals,
    promotion_gates,
    promotion_get,
    promotion_list,
)
from registry.services.audit import AuditContext
from registry.services.promotions import (
    promotion_approve,
    promotion_cancel,
    promotion_reject,
    promotion_request,
)
from registry.services.stages import model_rollback
from registry.stepup import promotion_approval_check  # access

READ_SCOPES = (TokenScope.MODELS_READ, TokenScope.PROMOTIONS_REQUEST, TokenScope.PROMOTIONS_REVIEW)
MAX_TEXT = 10_000


class PromotionScope(HasScope):
    """Like HasScope, but a mapping value may be a tuple meaning 'any of these scopes'."""

    def has_permission(self, request, view) -> bool:
        scopes = token_scopes(request)
        if scopes is None or not view_handles(view, request.method):
            return True  # a method the view does not answer is its 405, never a 403
        needed = view.required_scopes.get(request.method) or view.required_scopes.get("*")
        if needed is None:
            return False
        options = needed if isinstance(needed, tuple) else (needed,)
        self.message = f"This token lacks the '{' or '.join(str(o) for o in options)}' scope."
        return any(option in scopes for option in options)


def _context(request) -> AuditContext:
    return AuditContext.from_request(request, source="api")


# ---------------------------------------------------------------- serializers


class ReviewSerializer(serializers.Serializer):
    reviewer = serializers.CharField(source="reviewer.username")
    decision = serializers.CharField()
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class PromotionRequestSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.model.name")
    version = serializers.IntegerField(source="version.version")
    risk_tier = serializers.CharField(source="version.model.risk_tier")
    requested_by = serializers.CharField(source="requested_by.username")
    overridden_by = serializers.CharField(source="overridden_by.username", default=None, allow_null=True)
    approvals = serializers.SerializerMethodField()
    approvals_required = serializers.SerializerMethodField()
    reviews = ReviewSerializer(many=True)
    policy_snapshot = serializers.SerializerMethodField(
        help_text="The policy in force when the request was made. metric_tolerance_mode says how metric_tolerance "
        "reads: absolute (the metric's units; also the reading of snapshots frozen before the mode existed) or "
        "relative (a fraction of production's value)."
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = PromotionRequest
        fields = [
            "id",
            "url",
            "model",
            "version",
            "risk_tier",
            "target_stage",
            "status",
            "status_reason",
            "requested_by",
            "justification",
            "approvals",
            "approvals_required",
            "reviews",
            "policy_snapshot",
            "override_reason",
            "overridden_by",
            "created_at",
            "decided_at",
            "applied_at",
        ]

    def get_approvals(self, obj) -> int:
        return promotion_approvals(obj)

    def get_approvals_required(self, obj) -> int:
        return int(obj.policy_snapshot.get("approvals_required", 1))

    def get_policy_snapshot(self, obj) -> dict:
        snapshot = dict(obj.policy_snapshot or {})
        if "metric_tolerance" in snapshot:
            snapshot["metric_tolerance_mode"] = snapshot_tolerance(snapshot)[1]
        return snapshot

    def get_url(self, obj) -> str:
        return obj.get_absolute_url()


class MetricRowSerializer(serializers.Serializer):
    metric = serializers.CharField()
    candidate = serializers.FloatField(allow_null=True)
    production = serializers.FloatField(allow_null=True)
    delta = serializers.FloatField(allow_null=True)
    direction = serializers.ChoiceField(choices=["better", "worse", "same", ""])
    primary = serializers.BooleanField()
    count = serializers.BooleanField()


class EvaluationRunRefSerializer(serializers.Serializer):
    """The evaluation run a request's evidence is read from (its aggregates only)."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=EvaluationKind.choices)
    evaluation_set = serializers.CharField(help_text="LLM runs: the evaluation set's name.")
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    summaries = serializers.JSONField(
        help_text="LLM runs: per-metric n, value and 95 % interval (fairness runs: their groups are served by "
        "GET …/versions/{v}/fairness/ to those who may see them).",
        allow_null=True,
    )


class PromotionDetailSerializer(PromotionRequestSerializer):
    gates = serializers.SerializerMethodField()
    evaluation_run = serializers.SerializerMethodField(
        help_text="The candidate's evaluation run the evidence is read from: its latest for a pending request, "
        "the one it was decided on otherwise (null: none)."
    )
    production_version = serializers.SerializerMethodField(
        help_text="The production version the candidate is compared with: in production now for a pending "
        "request (send it back as production_seen when approving), at the decision otherwise."
    )
    metrics = serializers.SerializerMethodField(
        help_text="Offline metrics, candidate (as decided, once decided) vs that production version."
    )

    class Meta(PromotionRequestSerializer.Meta):
        fields = [
            *PromotionRequestSerializer.Meta.fields,
            "gates",
            "live_evidence",
            "production_version",
            "metrics",
            "evaluation_run",
        ]

    def _production(self, obj) -> ModelVersion | None:
        if not hasattr(obj, "_compared_with"):
            pending = obj.status == PromotionStatus.PENDING
            obj._compared_with = (
                production_version(obj.version.model) if pending else production_version_at_decision(obj)
            )
        return obj._compared_with

    def get_production_version(self, obj) -> int | None:
        production = self._production(obj)
        return production.version if production is not None else None

    @extend_schema_field(MetricRowSerializer(many=True))
    def get_metrics(self, obj) -> list:
        return metric_comparison(obj.version, self._production(obj), request_metrics(obj))

    @extend_schema_field(EvaluationRunRefSerializer(allow_null=True))
    def get_evaluation_run(self, obj) -> dict | None:
        run = request_run(obj)
        if run is None:
            return None
        llm = run.kind == EvaluationKind.LLM
        return EvaluationRunRefSerializer(
            {
                "id": run.pk,
                "kind": run.kind,
                "evaluation_set": run.evaluation_set,
                "status": run.status,
                "created_at": run.created_at,
                "summaries": (run.results or {}).get("metrics") if llm else None,
            }
        ).data

    def get_gates(self, obj) -> list:
        """Live for pending requests; as evaluated at decision time otherwise. The metric gate, once it
        compares with production, carries the tolerance it applied: {value, mode, allowed}."""
        if obj.status == "pending" or not obj.gate_results:
            return promotion_gates(obj)
        return obj.gate_results


class PromotionCreateSerializer(StrictSerializer):
    """Request a promotion of one version of a model."""

    model = serializers.CharField(max_length=100)
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    target_stage = serializers.ChoiceField(choices=[Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED])
    justification = serializers.CharField(max_length=MAX_TEXT)


class ReviewActionSerializer(StrictSerializer):
    """A review action's comment (and, for admins approving over red gates, the override reason)."""

    comment = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True, default="")
    override_reason = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True, default="")
    production_seen = serializers.IntegerField(
        min_value=0,
        max_value=2**31 - 1,
        required=False,
        default=None,
        allow_null=True,
        help_text="The production version your evidence compared the candidate with (0: none); the approval "
        "is a 409 if production has changed since.",
    )


class RejectActionSerializer(StrictSerializer):
    """A rejection's comment: mandatory (the requester must learn why)."""

    comment = serializers.CharField(max_length=MAX_TEXT)


class RollbackSerializer(StrictSerializer):
    """Why production is rolled back (mandatory)."""

    reason = serializers.CharField(max_length=MAX_TEXT)


# ---------------------------------------------------------------- views


class PromotionListCreate(AtomicWritesMixin, generics.ListAPIView):
    """GET: requests on models you may see (filter by status, model, tier, target_stage).
    POST: request a promotion {"model", "version", "target_stage", "justification"}."""

    permission_classes = [IsAuthenticated, PromotionScope]
    required_scopes = {"GET": READ_SCOPES, "POST": TokenScope.PROMOTIONS_REQUEST}
    serializer_class = PromotionRequestSerializer
    filterset_class = PromotionRequestFilterSet

    def get_queryset(self):
        return promotion_list(user=self.request.user).prefetch_related("reviews__reviewer").order_by("-created_at")

    @extend_schema(request=PromotionCreateSerializer, responses={201: PromotionDetailSerializer})
    def post(self, request):
        data = PromotionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = model_get(user=request.user, name=data.validated_data["model"])
        version = ModelVersion.objects.filter(model=model, version=data.validated_data["version"]).first()
        if version is None:
            return Response(
                error_body(404, f"{model.name} has no version {data.validated_data['version']}."), status=404
            )
        req = promotion_request(  # a 409 (PromotionConflict, the API's exception handler) out of turn
            version=version,
            target_stage=data.validated_data["target_stage"],
            requester=request.user,
            justification=data.validated_data["justification"],
            context=_context(request),
        )
        req = promotion_get(user=request.user, pk=req.pk)
        return Response(PromotionDetailSerializer(req).data, status=status.HTTP_201_CREATED)


class PromotionDetail(AtomicWritesMixin, APIView):
    """One request with its reviews and gate checklist."""

    permission_classes = [IsAuthenticated, PromotionScope]
    required_scopes = {"GET": READ_SCOPES}
    serializer_class = PromotionDetailSerializer

    def get(self, request, pk: int):
        return Response(PromotionDetailSerializer(promotion_get(user=request.user, pk=pk)).data)


class _Action(AtomicWritesMixin, APIView):
    permission_classes = [IsAuthenticated, PromotionScope]
    serializer_class = ReviewActionSerializer

    def perform(self, request, req, data):  # pragma: no cover - abstract
        raise NotImplementedError

    @extend_schema(request=ReviewActionSerializer, responses=PromotionDetailSerializer)
    def post(self, request, pk: int):
        req = promotion_get(user=request.user, pk=pk)
        data = self.serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        self.perform(request, req, data.validated_data)  # a 409 (PromotionConflict) out of turn
        return Response(PromotionDetailSerializer(promotion_get(user=request.user, pk=pk)).data)


class PromotionApprove(_Action):
    """Approve {"comment", "override_reason" (admins, for red gates)}. 403 for your own request,
    409 if not pending or if required gates are red (named in the error)."""

    required_scopes = {"POST": TokenScope.PROMOTIONS_REVIEW}

    def perform(self, request, req, data):
        promotion_approval_check(request, req, data["override_reason"])  # access: step-up (fresh sign-in)
        promotion_approve(
            request=req,
            reviewer=request.user,
            comment=data["comment"],
            override_reason=data["override_reason"] or None,
            production_seen=data["production_seen"],
            context=_context(request),
        )


@extend_schema_view(post=extend_schema(request=RejectActionSerializer, responses=PromotionDetailSerializer))
class PromotionReject(_Action):
    """Reject {"comment"} (mandatory). A rejection ends the request."""

    serializer_class = RejectActionSerializer
    required_scopes = {"POST": TokenScope.PROMOTIONS_REVIEW}

    def perform(self, request, req, data):
        promotion_reject(request=req, reviewer=request.user, comment=data["comment"], context=_context(request))


class PromotionCancel(_Action):
    """Cancel your own pending request {"comment"}."""

    required_scopes = {"POST": TokenScope.PROMOTIONS_REQUEST}

    def perform(self, request, req, data):
        promotion_cancel(request=req, actor=request.user, comment=data["comment"], context=_context(request))


class ModelRollback(AtomicWritesMixin, APIView):
    """Roll production back to the previous approved production version {"reason"} (mandatory)."""

    permission_classes = [IsAuthenticated, PromotionScope]
    required_scopes = {"POST": TokenScope.PROMOTIONS_REQUEST}
    serializer_class = RollbackSerializer

    @extend_schema(
        request=RollbackSerializer,
        responses=inline_serializer(
            "RollbackResult",
            {
                "model": serializers.CharField(),
                "production_version": serializers.IntegerField(),
                "archived_version": serializers.IntegerField(allow_null=True),
                "reason": serializers.CharField(),
                "needs_follow_up": serializers.BooleanField(),
                "transition": serializers.IntegerField(),
            },
        ),
    )
    def post(self, request, name: str):
        model = model_get(user=request.user, name=name)
        data = RollbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        restored = model_rollback(  # a 409 (PromotionConflict) with nothing to restore
            model=model, actor=request.user, reason=data.validated_data["reason"], context=_context(request)
        )
        archived = (
            StageTransition.objects.filter(model=model, kind=StageTransition.Kind.ROLLBACK, from_stage=Stage.PRODUCTION)
            .select_related("version")
            .order_by("-id")
            .first()
        )
        return Response(
            {
                "model": model.name,
                "production_version": restored.version.version,
                "archived_version": archived.version.version if archived else None,
                "reason": restored.reason,
                "needs_follow_up": restored.needs_follow_up,
                "transition": restored.pk,
            }
        )


urlpatterns = [
    path("promotions/", PromotionListCreate.as_view(), name="promotion_list"),
    path("promotions/<int:pk>/", PromotionDetail.as_view(), name="promotion_detail"),
    path("promotions/<int:pk>/approve/", PromotionApprove.as_view(), name="promotion_approve"),
    path("promotions/<int:pk>/reject/", PromotionReject.as_view(), name="promotion_reject"),
    path("promotions/<int:pk>/cancel/", PromotionCancel.as_view(), name="promotion_cancel"),
    path("models/<str:name>/rollback/", ModelRollback.as_view(), name="model_rollback"),
]
