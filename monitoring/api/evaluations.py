"""Evaluation sets and fairness results of a version (API).

``POST /api/v1/models/{name}/versions/{v}/evaluations/`` (CSV or Parquet; owner or admin,
``monitoring:write``) answers 202 with the run, computed by a worker;
``GET /api/v1/models/{name}/versions/{v}/fairness/`` (``monitoring:read``) answers the latest
report: per attribute and pairwise intersection (``a&b``) the groups (``n``, ``selection_rate``,
``tpr``, ``fpr``, ``precision``, ``accuracy``; ``too_small`` without rates) and the summary
(``disparate_impact``, ``demographic_parity_difference``, ``equalized_odds_difference`` …, with
95 % ``intervals``).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from monitoring.selectors_fairness import evaluation_summary, fairness_report_get
from monitoring.services.evaluations import evaluation_upload
from monitoring.services.ingest_parsing import TABLE_TYPES
from registry.selectors.inventory import version_get

from .views import INGEST_ERRORS, IngestView, MonitoringAPIView


class EvaluationUploadView(IngestView):
    accepted_content_types = TABLE_TYPES

    @extend_schema(
        summary="Upload an evaluation set (CSV or Parquet) for the fairness report; computed by a worker",
        description=(
            "Columns: label, prediction, optional score, every sensitive attribute of the version's feature "
            "schema, optional schema features (type-checked, not kept). Errors name the column and row; nothing "
            "of a refused set is stored. Answers 202 with the evaluation run (status pending)."
        ),
        request={"text/csv": OpenApiTypes.STR, "application/vnd.apache.parquet": OpenApiTypes.BINARY},
        responses={202: OpenApiTypes.OBJECT, **INGEST_ERRORS},
    )
    def post(self, request, name: str, version: int):
        self.writable_model(name)
        found = version_get(user=request.user, name=name, version=version)
        run = self.ingest(evaluation_upload, version=found)
        return Response(evaluation_summary(run), status=status.HTTP_202_ACCEPTED)


class FairnessView(MonitoringAPIView):
    @extend_schema(
        summary="The latest fairness report of a version (aggregated groups only)",
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="Nothing uploaded or not visible.")},
    )
    def get(self, request, name: str, version: int):
        found = version_get(user=request.user, name=name, version=version)
        return Response(fairness_report_get(user=request.user, version=found))
