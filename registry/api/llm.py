"""API pieces for LLM applications' versions: the parts in a version's output, and the diff of
two versions (``GET /api/v1/models/{name}/versions/{v}/diff/?against=N``)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from mlops_portal.api.permissions import HasScope
from mlops_portal.api.transactions import AtomicWritesMixin
from registry.models_llm import LLM_PART_NAMES
from registry.selectors.inventory import version_get
from registry.selectors.llm import llm_comparison_base, llm_version_diff

LLM_OUTPUT_FIELDS = ["content_hash", *LLM_PART_NAMES]


class LLMPartsOutputMixin(serializers.Serializer):
    """``content_hash`` and the five parts of an LLM application's version (``version.llm``); null
    for ML versions, which have none."""

    content_hash = serializers.CharField(source="llm.content_hash", read_only=True, allow_null=True)
    prompts = serializers.JSONField(source="llm.prompts", read_only=True, allow_null=True)
    llm = serializers.JSONField(source="llm.llm", read_only=True, allow_null=True)
    retrieval = serializers.JSONField(source="llm.retrieval", read_only=True, allow_null=True)
    tools = serializers.JSONField(source="llm.tools", read_only=True, allow_null=True)
    safety = serializers.JSONField(source="llm.safety", read_only=True, allow_null=True)


AGAINST = OpenApiParameter(
    "against",
    {"type": "integer", "minimum": 1, "maximum": 2_147_483_647},
    OpenApiParameter.QUERY,
    required=False,
    description="Version number to compare with (default: the production version, or the previous one).",
)


@extend_schema(
    summary="Diff of an LLM version's parts against another version",
    parameters=[
        OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH),
        OpenApiParameter("version", OpenApiTypes.INT, OpenApiParameter.PATH),
        AGAINST,
    ],
    responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    description="404 for a version (or an `against` version) without LLM parts: the diff is an LLM application's.",
)
class VersionDiffView(AtomicWritesMixin, generics.GenericAPIView):
    permission_classes = [IsAuthenticated, HasScope]
    required_scopes = {"*": "models:read"}
    http_method_names = ["get", "head", "options"]
    filter_backends: list = []

    def get(self, request, name: str, version: int):
        found = version_get(user=request.user, name=name, version=version)
        raw = request.query_params.get("against")
        if raw is None:
            against = llm_comparison_base(found)
        elif not raw.isdigit() or not 1 <= int(raw) <= 2_147_483_647:
            raise exceptions.ValidationError({"against": ["Expected a positive version number."]})
        else:
            against = version_get(user=request.user, name=name, version=int(raw))
        if getattr(found, "llm", None) is None:
            raise exceptions.NotFound(f"{found} has no LLM parts (it is not an LLM application's version).")
        if against is None:
            return Response({"version": found.version, "against": None, "changed": None})
        diff = llm_version_diff(found, against)
        if diff is None:
            raise exceptions.NotFound(f"{against} has no LLM parts to compare with.")
        return Response(diff)
