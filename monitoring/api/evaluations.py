"""Evaluation sets and fairness results of a version; evaluation runs of LLM applications (API).

``POST /api/v1/models/{name}/versions/{v}/evaluations/`` (CSV or Parquet; owner or admin,
``monitoring:write``) answers 202 with the run, computed by a worker;
``GET /api/v1/models/{name}/versions/{v}/fairness/`` (``monitoring:read``) answers the latest
report: per attribute and pairwise intersection (``a&b``) the groups (``n``, ``selection_rate``,
``tpr``, ``fpr``, ``precision``, ``accuracy``; ``too_small`` without rates) and the summary
(``disparate_impact``, ``demographic_parity_difference``, ``equalized_odds_difference`` …, with
95 % ``intervals``).

For a model of kind ``llm_app`` the same POST takes the run's cases (JSON, JSON Lines, CSV or
Parquet; ``monitoring.services.evaluations_llm``) and answers 201 with the summaries, computed at
once. ``GET …/evaluations/`` lists the version's runs of either kind, newest first, each with its
kind and status (LLM runs with their summaries).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from mlops_portal.api.filtering import refuse_repeated
from monitoring.selectors_fairness import evaluation_summary, fairness_report_get
from monitoring.selectors_llm import evaluation_list, llm_run_summary
from monitoring.services.evaluations import evaluation_upload
from monitoring.services.evaluations_llm import llm_evaluation_upload
from monitoring.services.ingest_parsing import ACCEPTED_TYPES, PARQUET_TYPES, TABLE_TYPES
from registry.selectors.inventory import version_get

from .views import INGEST_BODY, INGEST_ERRORS, IngestView, MonitoringAPIView


class EvaluationUploadView(IngestView):
    accepted_content_types = tuple(dict.fromkeys(ACCEPTED_TYPES + TABLE_TYPES + PARQUET_TYPES))

    @extend_schema(
        summary="Upload an evaluation run: a fairness evaluation set (ML models) or an LLM application's cases",
        description=(
            "**ML models** (CSV or Parquet): label, prediction, optional score, every sensitive attribute of the "
            "version's feature schema, optional schema features (type-checked, not kept). Answers 202 with the "
            "evaluation run (status pending); a worker computes the fairness report. A run a promotion request "
            "is pending on or was approved on cannot be replaced (409 naming the request).\n\n"
            "**LLM applications** (kind llm_app; JSON array, JSON Lines, CSV or Parquet): one row per case: "
            "case_id (unique within the run), optional category (safety category), scores correctness and "
            "groundedness (0..1), safety_pass and refusal (true/false or 1/0); null for a case not scored. The "
            "evaluation set's name comes from ?evaluation_set= or an evaluation_set column. No prompt or "
            "completion text. Answers 201 with the run and its summaries (95 % Wilson / t intervals, per-category "
            "safety pass rates); the version's offline metrics get correctness, groundedness, safety_pass_rate "
            "and refusal_rate, unless a promotion request approved the version's metrics (they stay as approved; the "
            "run is stored) or one is pending on them (409 naming it).\n\n"
            "Errors name the column and row; nothing of a refused upload is stored."
        ),
        parameters=[
            OpenApiParameter(
                "evaluation_set", str, description="LLM applications: the evaluation set's name.", required=False
            )
        ],
        request={
            "application/json": INGEST_BODY["application/json"],
            "application/x-ndjson": OpenApiTypes.STR,
            "text/csv": OpenApiTypes.STR,
            "application/vnd.apache.parquet": OpenApiTypes.BINARY,
        },
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The same body again: the stored run, duplicate_of."),
            201: OpenApiTypes.OBJECT,
            202: OpenApiTypes.OBJECT,
            **INGEST_ERRORS,
        },
    )
    def post(self, request, name: str, version: int):
        self.writable_model(name)
        found = version_get(user=request.user, name=name, version=version)
        if found.model.is_llm_app:
            refuse_repeated(request, ["evaluation_set"])
            evaluation_set = request.query_params.get("evaluation_set")
            # a 409 (PromotionConflict) when it would replace the evidence of a version under review
            run = self.ingest(llm_evaluation_upload, version=found, evaluation_set=evaluation_set)
            return _answer(llm_run_summary(run), run, status.HTTP_201_CREATED)
        # a 409 (PromotionConflict) when it replaces the evaluation a request is pending or was approved on
        run = self.ingest(evaluation_upload, version=found)
        return _answer(evaluation_summary(run), run, status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="The version's evaluation runs (fairness sets and LLM runs), newest first, with their status",
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="No such version visible to you.")},
    )
    def get(self, request, name: str, version: int):
        found = version_get(user=request.user, name=name, version=version)
        return Response(evaluation_list(version=found))


class FairnessView(MonitoringAPIView):
    @extend_schema(
        summary="The latest fairness report of a version (aggregated groups only)",
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="Nothing uploaded or not visible.")},
    )
    def get(self, request, name: str, version: int):
        found = version_get(user=request.user, name=name, version=version)
        return Response(fairness_report_get(user=request.user, version=found))


def _answer(summary: dict, run, created: int) -> Response:
    """``created`` for a new run; 200 with ``duplicate_of`` (the stored run's id) for a body the
    version already has, as a resent prediction batch is answered."""
    duplicate = getattr(run, "duplicate_of", None)
    if duplicate is None:
        return Response(summary, status=created)
    return Response({**summary, "duplicate_of": duplicate}, status=status.HTTP_200_OK)
