"""Reference uploads read as strictly as prediction batches: the body goes through
``ingest_parsing.parse_table`` (the CSV reader of predictions, which refuses short and long rows
naming them, or Parquet) and its columns through ``ingest_validation``'s column checks.

* The columns are the schema's features (its sensitive attributes are accepted and not kept:
  fairness is judged on evaluation sets) and the optional ``prediction``, ``score`` and
  ``label``; any other column is refused, named. A feature of the ordinary schema is required.
* A number is what a prediction batch takes: an empty CSV cell (a Parquet null) is a missing
  value; ``nan``, ``inf`` or text is refused with its row. Categories become text, without NUL.

The result is the frame ``profiles.profile_build`` reads: one column per feature (numbers as
float64 with NaN for missing, categories as text or None) and the optional columns under their
profile names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError

from monitoring.choices import PREDICTION_FEATURE, SCORE_FEATURE
from monitoring.estimation import LABEL_COLUMN, LABEL_FEATURE
from registry.choices import FeatureType, TaskType
from registry.sensitive import ordinary_features

from .ingest_classes import registered_outcomes, scores_check
from .ingest_parsing import BatchError, parse_table
from .ingest_validation import categories_column, class_or_value, numbers_column
from .profiles import PREDICTION_COLUMN, SCORE_COLUMN

if TYPE_CHECKING:
    import pandas as pd


def reference_read(*, body: bytes, content_type: str, version) -> tuple[pd.DataFrame, str]:
    """A reference body (CSV or Parquet) → (the validated frame, its format); raises
    ``BatchError`` naming the first bad row and column, or ``ValidationError``."""
    import pandas as pd  # imported on use: see registry/llm_stats.py

    schema = ordinary_features(version.feature_schema)
    if not schema:
        raise ValidationError({"feature_schema": "The version has no feature schema to validate against."})
    if not body:
        raise BatchError(None, "body", "The request body is empty: send a CSV or Parquet file.")
    raw = parse_table(body, content_type)
    known = {f["name"] for f in version.feature_schema or []} | {PREDICTION_COLUMN, SCORE_COLUMN, LABEL_COLUMN}
    unknown = [name for name in raw.present if name not in known]
    if unknown:
        raise BatchError(None, unknown[0], "Unknown column: not in the version's feature schema.")
    out = {}
    for feature in schema:
        name = feature["name"]
        if name not in raw.present:
            raise BatchError(None, name, "Column missing from the reference data.")
        if feature.get("type", FeatureType.NUMERIC) == FeatureType.NUMERIC:
            out[name] = numbers_column(raw.text_column(name), f"features.{name}", from_text=raw.from_text)
        else:
            out[name] = categories_column(raw.column(name), f"features.{name}")
    # the reference declares the classes of a version that did not at registration (``ingest_classes``)
    outcomes = registered_outcomes(version)
    for column, profiled in ((PREDICTION_COLUMN, PREDICTION_FEATURE), (LABEL_COLUMN, LABEL_FEATURE)):
        if column in raw.present:
            regression = outcomes.task_type == TaskType.REGRESSION
            values = raw.text_column(column) if regression else raw.column(column)
            out[profiled] = class_or_value(values, column, outcomes, from_text=raw.from_text)
    if SCORE_COLUMN in raw.present:
        out[SCORE_FEATURE] = numbers_column(raw.text_column(SCORE_COLUMN), SCORE_COLUMN, from_text=raw.from_text)
        scores_check(out[SCORE_FEATURE], outcomes)
    return pd.DataFrame(out), raw.fmt


__all__ = ["reference_read"]
