"""The OpenAPI description of the ingestion endpoints' bodies and answers (predictions, labels,
LLM request records). Schema only: the services validate every batch (``ingest_validation``,
``llm_requests``); nothing here validates. A missing key and ``null`` are the same
missing value, so every optional field is nullable; unknown fields are refused."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from monitoring.models_llm import FEEDBACK_MAX, FEEDBACK_MIN
from monitoring.services.ingest_validation import MAX_ID_LENGTH
from monitoring.services.llm_requests import MAX_FLAG_LENGTH, MAX_FLAGS, MAX_TOKENS

TIMESTAMP = {
    "oneOf": [
        {"type": "string", "description": "ISO 8601; no offset means UTC."},
        {"type": "number", "description": "Epoch seconds (JSON numbers only; in CSV, ISO 8601)."},
    ]
}
ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
SUBJECT = {
    "oneOf": [{"type": "string"}, {"type": "integer"}],
    "nullable": True,
    "description": "Optional data-subject id (kept as an HMAC only, for erasure requests).",
}


def _record(required: dict, optional: dict) -> dict:
    """One JSON record: ``required`` and ``optional`` properties, nothing else (unknown fields are refused)."""
    return {
        "type": "object",
        "properties": {**required, **optional},
        "required": list(required),
        "additionalProperties": False,
    }


PREDICTION_RECORD = _record(
    {"prediction_id": {**ID, "description": "Unique per version."}, "timestamp": TIMESTAMP},
    {
        "features": {
            "type": "object",
            "nullable": True,
            "additionalProperties": True,
            "description": "Feature name → value, by the version's feature schema (a left-out feature is missing).",
        },
        "prediction": {"nullable": True, "description": "Class label or regression value."},
        "score": {"type": "number", "nullable": True, "description": "Positive-class probability or confidence."},
        "subject_id": SUBJECT,
    },
)
LABEL_RECORD = _record(
    {
        "prediction_id": {**ID, "description": "The prediction whose true outcome this is."},
        "label": {"description": "Class label (stored as text) or regression value."},
    },
    {"subject_id": SUBJECT},
)
LLM_REQUEST_RECORD = _record(
    {
        "request_id": {**ID, "description": "Unique per version."},
        "timestamp": TIMESTAMP,
        "tokens_in": {"type": "integer", "minimum": 0, "maximum": MAX_TOKENS},
        "tokens_out": {"type": "integer", "minimum": 0, "maximum": MAX_TOKENS},
        "latency_ms": {"type": "number", "minimum": 0, "maximum": 1e12},
    },
    {
        "feedback": {
            "type": "number",
            "nullable": True,
            "minimum": FEEDBACK_MIN,
            "maximum": FEEDBACK_MAX,
            "description": "-1 thumbs down, +1 thumbs up.",
        },
        "safety_flags": {
            "type": "array",
            "nullable": True,
            "maxItems": MAX_FLAGS,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_FLAG_LENGTH},
            "description": "Short names; in CSV one cell separated by ';'.",
        },
    },
)


def ingest_request_body(record: dict) -> dict:
    """The request bodies an ingestion endpoint accepts: a JSON array of ``record``s, the same
    records as JSON Lines, or CSV text (flat columns). The JSON Lines aliases application/jsonl,
    application/json-lines, application/x-jsonlines and CSV's application/csv are accepted too."""
    return {
        "application/json": {"type": "array", "minItems": 1, "items": record},
        "application/x-ndjson": OpenApiTypes.STR,
        "text/csv": OpenApiTypes.STR,
    }


def _batch_fields(*, required: bool) -> dict:
    return {
        "rows": serializers.IntegerField(required=required),
        "format": serializers.ChoiceField(choices=["json", "jsonl", "csv"], required=required),
        "first_timestamp": serializers.DateTimeField(required=required),
        "last_timestamp": serializers.DateTimeField(required=required),
        "hourly_windows": serializers.IntegerField(required=required),
        "dirty_windows": serializers.IntegerField(required=required),
    }


BATCH_STORED = inline_serializer(
    "IngestBatchStored",
    {**_batch_fields(required=True), "batch": serializers.IntegerField(help_text="The stored batch's id.")},
)
BATCH_DUPLICATE = inline_serializer(
    "IngestBatchDuplicate",
    {
        **_batch_fields(required=False),
        "duplicate_of_batch": serializers.IntegerField(help_text="The id of the batch already stored with this body."),
    },
)
LABELS_STORED = inline_serializer(
    "LabelsStored",
    {
        "rows": serializers.IntegerField(),
        "new": serializers.IntegerField(help_text="Labels for prediction ids without one."),
        "updated": serializers.IntegerField(help_text="Labels that replaced a previous one."),
        "matched_predictions": serializers.IntegerField(),
        "dirty_windows": serializers.IntegerField(),
    },
)


def batch_responses(example_record: dict) -> dict:
    """201 a new batch, 200 a resent body already stored."""
    summary = {
        "rows": 1,
        "format": "json",
        "first_timestamp": example_record["timestamp"],
        "last_timestamp": example_record["timestamp"],
        "hourly_windows": 1,
        "dirty_windows": 4,
    }
    return {
        201: OpenApiResponse(
            BATCH_STORED,
            description="Stored as a new batch.",
            examples=[OpenApiExample("stored", value={**summary, "batch": 42}, response_only=True, status_codes=[201])],
        ),
        200: OpenApiResponse(
            BATCH_DUPLICATE,
            description="This body is already stored for the version (a resend): nothing stored.",
            examples=[
                OpenApiExample(
                    "duplicate", value={**summary, "duplicate_of_batch": 42}, response_only=True, status_codes=[200]
                )
            ],
        ),
    }


PREDICTION_EXAMPLE = {
    "prediction_id": "a1",
    "timestamp": "2026-11-23T10:00:00Z",
    "features": {"tenure_months": 12, "contract_type": "monthly"},
    "prediction": 1,
    "score": 0.81,
}
LLM_REQUEST_EXAMPLE = {
    "request_id": "r-1",
    "timestamp": "2026-11-23T10:00:00Z",
    "tokens_in": 812,
    "tokens_out": 164,
    "latency_ms": 930.5,
    "feedback": 1,
    "safety_flags": ["pii"],
}
EXAMPLES = {
    "predictions": [
        OpenApiExample("JSON array", value=[PREDICTION_EXAMPLE], request_only=True, media_type="application/json"),
        OpenApiExample(
            "CSV (flat feature columns)",
            value="prediction_id,timestamp,tenure_months,contract_type,prediction,score\n"
            "a1,2026-11-23T10:00:00Z,12,monthly,1,0.81\n",
            request_only=True,
            media_type="text/csv",
        ),
    ],
    "labels": [
        OpenApiExample(
            "JSON array", value=[{"prediction_id": "a1", "label": 0}], request_only=True, media_type="application/json"
        ),
        OpenApiExample("CSV", value="prediction_id,label\na1,0\n", request_only=True, media_type="text/csv"),
    ],
    "llm_requests": [
        OpenApiExample("JSON array", value=[LLM_REQUEST_EXAMPLE], request_only=True, media_type="application/json"),
    ],
}
