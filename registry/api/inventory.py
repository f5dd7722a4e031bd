"""API: models and versions (serializers and views). Routes in `urlpatterns` are mounted under /api/v1/.

Writes call the same services as the HTML forms; lists share ``ModelFilterSet`` with the
inventory page. Bodies are JSON objects of at most ``settings.API_MAX_BODY_BYTES``; unknown
fields are refused by name.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from mlops_portal.api.errors import error_body
from mlops_portal.api.filtering import StrictFilterBackend
from mlops_portal.api.parsers import LimitedJSONParser, StrictSerializer
from mlops_portal.api.permissions import HasScope
from mlops_portal.api.transactions import AtomicWritesMixin
from registry.api.llm import LLM_OUTPUT_FIELDS, LLMPartsOutputMixin, VersionDiffView
from registry.cache import cached_render
from registry.choices import Stage, TaskType
from registry.filters import ModelFilterSet
from registry.limits import CARD_TEXT_MAX_LENGTH, validate_model_name_free
from registry.models import (
    MODEL_CARD_FIELDS,
    MODEL_NAME_VALIDATOR,
    ModelVersion,
    RegisteredModel,
    Team,
)
from registry.selectors.inventory import model_get, model_list, version_get, version_list
from registry.services.audit import AuditContext
from registry.services.inventory import (
    VERSION_FIELDS,
    model_create,
    model_update,
    validate_version_reference,
    version_create,
    version_update,
)
from registry.services.llm_versions import DuplicateLLMVersion

# --- serializers ----------------------------------------------------------------------------


class VersionSummarySerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["version", "stage", "task_type", "created_at", "url"]

    def get_url(self, obj) -> str:
        return reverse("api:version-detail", args=[obj.model.name, obj.version])


class ModelListSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    team = serializers.CharField(source="team.slug")
    tags = serializers.SerializerMethodField()
    production_version = serializers.IntegerField(allow_null=True)
    latest_version = serializers.IntegerField(allow_null=True)
    version_count = serializers.IntegerField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = [
            "name",
            "kind",
            "description",
            "owner",
            "team",
            "risk_tier",
            "tags",
            "production_version",
            "latest_version",
            "version_count",
            "created_at",
            "updated_at",
            "url",
        ]

    def get_tags(self, obj) -> list[str]:
        return [t.name for t in obj.tags.all()]

    def get_url(self, obj) -> str:
        return reverse("api:model-detail", args=[obj.name])


class ModelDetailSerializer(ModelListSerializer):
    """One model (from ``model_get``): the version summary comes from its prefetched versions."""

    production_version = serializers.SerializerMethodField()
    latest_version = serializers.SerializerMethodField()
    version_count = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()
    health = serializers.SerializerMethodField()
    model_card_complete = serializers.BooleanField()

    class Meta(ModelListSerializer.Meta):
        fields = [
            *ModelListSerializer.Meta.fields,
            *(field for field in MODEL_CARD_FIELDS if field not in ModelListSerializer.Meta.fields),
            "model_card_complete",
            "versions",
            "health",
        ]

    def get_production_version(self, obj) -> int | None:
        return next((v.version for v in obj.versions.all() if v.stage == Stage.PRODUCTION), None)

    def get_latest_version(self, obj) -> int | None:
        return max((v.version for v in obj.versions.all()), default=None)

    def get_version_count(self, obj) -> int:
        return len(obj.versions.all())

    @extend_schema_field(VersionSummarySerializer(many=True))
    def get_versions(self, obj) -> list[dict]:
        return VersionSummarySerializer(obj.versions.all(), many=True).data

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_health(self, obj) -> dict | None:
        """The monitoring app's latest health (``no_data`` until a window has been computed)."""
        health = getattr(obj, "health", None)
        if health is None:
            return {"status": "no_data", "reasons": [], "computed_at": None}
        return {"status": health.status, "reasons": health.reasons, "computed_at": health.computed_at}


class VersionSerializer(LLMPartsOutputMixin, serializers.ModelSerializer):
    """A version; for an LLM application also its ``content_hash`` and parts (null for ML)."""

    model = serializers.CharField(source="model.name")
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    url = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["model", *VERSION_FIELDS, "created_by", "created_at", "stage_changed_at", "url", *LLM_OUTPUT_FIELDS]

    def get_url(self, obj) -> str:
        return reverse("api:version-detail", args=[obj.model.name, obj.version])


@extend_schema_field(OpenApiTypes.ANY)
class RawJSONField(serializers.Field):
    """Passes the parsed JSON value through; the service validates it with precise messages."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class TeamField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(slug_field="slug", queryset=Team.objects.all(), **kwargs)


class ModelWriteSerializer(StrictSerializer, serializers.ModelSerializer):
    """Fields a model is registered with: its name, team, card (``MODEL_CARD_FIELDS``, as the model
    defines them) and tags as a list of names. Duplicate names are answered by the service."""

    name = serializers.CharField(max_length=100, validators=[MODEL_NAME_VALIDATOR, validate_model_name_free])
    team = TeamField(required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=20)

    class Meta:
        model = RegisteredModel
        fields = ["name", "kind", "team", *MODEL_CARD_FIELDS, "tags"]


class ModelPatchSerializer(ModelWriteSerializer):
    """Fields a model is edited with (the name is permanent)."""

    name = None

    class Meta(ModelWriteSerializer.Meta):
        fields = ["team", *MODEL_CARD_FIELDS, "tags"]  # the name and the kind are permanent


class VersionWriteSerializer(StrictSerializer):
    """Fields a version is registered with. Its number and stage are never sent."""

    description = serializers.CharField(required=False, allow_blank=True, max_length=CARD_TEXT_MAX_LENGTH)
    artifact_uri = serializers.CharField(required=False, allow_blank=True, max_length=500)
    source_commit = serializers.CharField(required=False, allow_blank=True, max_length=64)
    training_run_id = serializers.CharField(required=False, allow_blank=True, max_length=100)
    training_data_ref = serializers.CharField(required=False, allow_blank=True, max_length=500)
    training_data_hash = serializers.CharField(required=False, allow_blank=True, max_length=128)
    metrics = RawJSONField(required=False, help_text="Object of metric name -> finite number.")
    feature_schema = RawJSONField(required=False, help_text='List of {"name": str, "type": "numeric"|"categorical"}.')
    task_type = serializers.ChoiceField(choices=TaskType.choices, required=False)
    classes = RawJSONField(
        required=False, help_text='Classification: the class labels, e.g. ["stayed", "churned"] (registry/classes.py).'
    )
    positive_class = RawJSONField(
        required=False, help_text="Binary, with its classes: the class the score is the probability of."
    )
    prompts = RawJSONField(required=False, allow_null=True, help_text='LLM applications: list of {"name", "template"}.')
    llm = RawJSONField(
        required=False, allow_null=True, help_text='LLM applications: {"provider", "model", "parameters"}.'
    )
    retrieval = RawJSONField(
        required=False,
        allow_null=True,
        help_text='LLM applications (optional): {"name", "version"|"content_hash", "embedding_model"}.',
    )
    tools = RawJSONField(
        required=False, allow_null=True, help_text='LLM applications (optional): list of {"name", "schema"}.'
    )
    safety = RawJSONField(
        required=False, allow_null=True, help_text='LLM applications: {"rules": [...], "blocked_topics": [...]}.'
    )

    def validate(self, attrs):
        if self.context.get("llm_app"):
            return attrs  # an LLM application's parts are its artifact (checked by the service)
        try:
            validate_version_reference(attrs)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs


class VersionPatchSerializer(VersionWriteSerializer):
    """Metadata only; LLM parts sent here are named by the service (a version is immutable)."""

    feature_schema = None
    task_type = None
    classes = None
    positive_class = None

    def validate(self, attrs):
        return attrs  # an edit may change any subset of the metadata


# --- views ----------------------------------------------------------------------------------

NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="Model name (slug).")
VERSION = OpenApiParameter("version", OpenApiTypes.INT, OpenApiParameter.PATH, description="Version number.")


class InventoryAPIView(AtomicWritesMixin, generics.GenericAPIView):
    permission_classes = [IsAuthenticated, HasScope]
    parser_classes = [LimitedJSONParser]
    # "*" (any other method, e.g. DELETE) needs only read, so the answer is a 405, not a 403.
    required_scopes = {"POST": "models:write", "PATCH": "models:write", "*": "models:read"}
    filter_backends: list = []

    def audit_context(self) -> AuditContext:
        return AuditContext.from_request(self.request, source="api")

    def validated(self, serializer_class, partial: bool = False, context: dict | None = None) -> dict:
        if not isinstance(self.request.data, dict):
            raise exceptions.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        serializer = serializer_class(data=self.request.data, partial=partial, context=context or {})
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


@extend_schema_view(
    get=extend_schema(summary="List models", responses=ModelListSerializer(many=True)),
    post=extend_schema(
        summary="Register a model", request=ModelWriteSerializer, responses={201: ModelDetailSerializer}
    ),
)
class ModelListCreateView(InventoryAPIView, generics.ListAPIView):
    serializer_class = ModelListSerializer
    filterset_class = ModelFilterSet  # the inventory page's FilterSet
    filter_backends = [StrictFilterBackend]

    def get_queryset(self):
        return model_list(user=self.request.user)

    def post(self, request):
        data = self.validated(ModelWriteSerializer)
        model = model_create(actor=request.user, context=self.audit_context(), **data)
        fresh = model_get(user=request.user, name=model.name)
        return Response(
            ModelDetailSerializer(fresh).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("api:model-detail", args=[model.name])},
        )


@extend_schema_view(
    get=extend_schema(summary="One model", parameters=[NAME], responses=ModelDetailSerializer),
    patch=extend_schema(
        summary="Edit a model's card",
        description="Only an admin changes `risk_tier` (403 for the owner). A model becomes `high` only if its "
        "saved retention keeps raw data at least 183 days (400 naming the floor). While a promotion request "
        "of the model is pending, `primary_metric`, `primary_metric_higher_is_better` and `risk_tier` cannot "
        "change (the request is judged on them): a 409 names the request.",
        parameters=[NAME],
        request=ModelPatchSerializer,
        responses={200: ModelDetailSerializer, 409: OpenApiTypes.OBJECT},
    ),
)
class ModelDetailView(InventoryAPIView):
    serializer_class = ModelDetailSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get(self, request, name: str):
        # The serializer's output, kept in the inventory cache under the current revisions.
        return Response(
            cached_render(
                request.user,
                ("api_model", name),
                lambda: dict(ModelDetailSerializer(model_get(user=request.user, name=name)).data),
                details=True,
            )
        )

    def patch(self, request, name: str):
        model = model_get(user=request.user, name=name)
        data = self.validated(ModelPatchSerializer, partial=True)
        # a 409 (PromotionConflict) for the primary metric or risk tier of a model with a pending request
        model_update(model=model, actor=request.user, context=self.audit_context(), changes=data)
        return Response(ModelDetailSerializer(model_get(user=request.user, name=name)).data)


@extend_schema_view(
    get=extend_schema(summary="List a model's versions", parameters=[NAME], responses=VersionSerializer(many=True)),
    post=extend_schema(
        summary="Register a version",
        description="A model of kind llm_app takes prompts, llm, safety and optional retrieval and tools; "
        "parts identical to an existing version are a 409 naming it.",
        parameters=[NAME],
        request=VersionWriteSerializer,
        responses={201: VersionSerializer, 409: OpenApiTypes.OBJECT},
    ),
)
class VersionListCreateView(InventoryAPIView, generics.ListAPIView):
    serializer_class = VersionSerializer

    def get_queryset(self):
        model = model_get(user=self.request.user, name=self.kwargs["name"])
        return version_list(user=self.request.user, model=model)

    def post(self, request, name: str):
        model = model_get(user=request.user, name=name)
        data = self.validated(VersionWriteSerializer, context={"llm_app": model.is_llm_app})
        try:
            version = version_create(model=model, actor=request.user, context=self.audit_context(), **data)
        except DuplicateLLMVersion as exc:
            details = {"existing_version": exc.existing, "content_hash": exc.content_hash}
            return Response(error_body(409, exc.messages[0], details), status=status.HTTP_409_CONFLICT)
        fresh = version_get(user=request.user, name=name, version=version.version)
        return Response(
            VersionSerializer(fresh).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("api:version-detail", args=[name, version.version])},
        )


@extend_schema_view(
    get=extend_schema(summary="One version", parameters=[NAME, VERSION], responses=VersionSerializer),
    patch=extend_schema(
        summary="Edit a version's metadata (never its stage)",
        description="While the version has a pending promotion request, and for good once a request for it "
        "was approved, its evidence (metrics, lineage, artifact) cannot change: a 409 names the request. "
        "The description can.",
        parameters=[NAME, VERSION],
        request=VersionPatchSerializer,
        responses={200: VersionSerializer, 409: OpenApiTypes.OBJECT},
    ),
)
class VersionDetailView(InventoryAPIView):
    serializer_class = VersionSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get(self, request, name: str, version: int):
        return Response(VersionSerializer(version_get(user=request.user, name=name, version=version)).data)

    def patch(self, request, name: str, version: int):
        found = version_get(user=request.user, name=name, version=version)
        data = self.validated(VersionPatchSerializer, partial=True)
        # a 409 (PromotionConflict) when its evidence is frozen: a request is pending or was approved
        version_update(version=found, actor=request.user, context=self.audit_context(), changes=data)
        return Response(VersionSerializer(version_get(user=request.user, name=name, version=version)).data)


urlpatterns = [
    path("models/", ModelListCreateView.as_view(), name="model-list"),
    path("models/<str:name>/", ModelDetailView.as_view(), name="model-detail"),
    path("models/<str:name>/versions/", VersionListCreateView.as_view(), name="version-list"),
    path("models/<str:name>/versions/<int:version>/", VersionDetailView.as_view(), name="version-detail"),
    path("models/<str:name>/versions/<int:version>/diff/", VersionDiffView.as_view(), name="version-diff"),
]
