"""Evaluation runs of LLM applications: one row per case of a named evaluation set (the same
endpoint as fairness evaluation sets, ``POST …/versions/{v}/evaluations/``, for models of kind
``llm_app``).

Body: a JSON array, JSON Lines or CSV (or Parquet), read by the shared parser
(``ingest_parsing``) with the same limits; the columns are checked by the shared column
validators (``ingest_validation``). All or nothing: the first bad value is named by row and
field and nothing is stored.

Columns:

* ``case_id`` (required): 1–100 characters, unique within the run;
* ``category`` (optional): the case's safety category, e.g. ``self-harm``, ``pii``, ``jailbreak``;
* scores, at least one: ``correctness`` and ``groundedness`` (numbers in [0, 1]),
  ``safety_pass`` and ``refusal`` (booleans: true/false, or 1/0); null or an empty cell is a
  case not scored on that metric;
* ``evaluation_set`` (optional column, the same in every row) or the ``evaluation_set`` query
  parameter: the set's name, so two versions evaluated on it are compared case by case.

Raw prompt or completion text is neither needed nor accepted. The summaries (95 % Wilson
intervals for rates, t intervals for means; ``registry.llm_stats``) and the per-category
safety pass rates are computed at once and stored on the run; the version's offline metrics
get ``correctness``, ``groundedness``, ``safety_pass_rate`` and ``refusal_rate``. One audit
event (``evaluation.uploaded``) names the run, the set, the summaries and the metrics changed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction

from mlops_portal import clock
from registry.choices import EvaluationKind, EvaluationStatus
from registry.llm_stats import MEANS, PROPORTIONS, SCORES, cases_parquet, llm_results, offline_metrics
from registry.models import EvaluationRun, ModelVersion
from registry.services.audit import AuditContext
from registry.services.inventory import evidence_approved_in, evidence_check_unchanged, validate_metrics

from .evaluations import evaluation_run_save, evaluation_stored
from .ingest_parsing import PARQUET_MAGIC, PARQUET_TYPES, BatchError, RawBatch, media_type, parse_body, parse_table
from .ingest_validation import categories_column, ids_column, numbers_column

COLUMNS = ("case_id", "category", "evaluation_set", *SCORES)
TEXT_COLUMNS = ("prompt", "completion", "response", "input", "output", "question", "answer", "context", "text")
SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")
MAX_CATEGORY = 100
_TRUE, _FALSE = {"true", "1"}, {"false", "0"}


@dataclass
class LLMEvaluationBatch:
    """A validated LLM evaluation run: ``cases`` holds ``case_id`` (text), ``category`` (text or
    None, when sent) and each score sent as float64 (NaN = not scored; booleans as 1.0/0.0)."""

    fmt: str
    n: int
    evaluation_set: str
    cases: dict


def parse_evaluation_body(body: bytes, content_type: str) -> RawBatch:
    """JSON, JSON Lines, CSV (``parse_body``) or Parquet (``parse_table``)."""
    if media_type(content_type) in PARQUET_TYPES or body[:4] == PARQUET_MAGIC:
        return parse_table(body, content_type)
    return parse_body(body, content_type)


def _boolean(value) -> float | None:
    """One boolean score: JSON true/false or 1/0; CSV true/false/1/0 (any case)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int) and value in (0, 1):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return 1.0 if value.strip().lower() in _TRUE else 0.0
    shown = value[:40] if isinstance(value, str) else type(value).__name__
    raise ValueError(f"Expected true or false (or 1/0), got {shown!r}.")


def _booleans_column(values: list, field: str, *, from_text: bool) -> np.ndarray:
    out = np.empty(len(values), dtype=float)
    for row, value in enumerate(values, start=1):
        if isinstance(value, str) and not from_text:
            raise BatchError(row, field, f"Expected true or false (or 1/0), got the string {value[:40]!r}.")
        try:
            parsed = _boolean(value)
        except ValueError as exc:
            raise BatchError(row, field, str(exc)) from None
        out[row - 1] = np.nan if parsed is None else parsed
    return out


def _unit_column(values: list, field: str, *, from_text: bool) -> np.ndarray:
    numbers = numbers_column(values, field, from_text=from_text)
    outside = ~np.isnan(numbers) & ((numbers < 0) | (numbers > 1))
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise BatchError(row + 1, field, f"Must be between 0 and 1, got {numbers[row]:g}.")
    return numbers


def _categories(values: list) -> list[str | None]:
    texts = categories_column(values, "category")
    out = []
    for row, value in enumerate(texts, start=1):
        value = value.strip() if isinstance(value, str) else value
        if value is not None and len(value) > MAX_CATEGORY:
            raise BatchError(row, "category", f"At most {MAX_CATEGORY} characters.")
        out.append(value or None)
    return out


def evaluation_set_name(value, field: str = "evaluation_set") -> str:
    if not isinstance(value, str) or not SET_NAME.fullmatch(value.strip()):
        raise BatchError(
            None,
            field,
            "Required: the evaluation set's name (1–100 letters, digits and . _ : / -, e.g. support-eval-2026-11).",
        )
    return value.strip()


def _set_of(raw: RawBatch, param: str | None) -> str:
    """The set's name from the query parameter or the (constant) ``evaluation_set`` column."""
    values = raw.column("evaluation_set") if "evaluation_set" in raw.present else []
    for row, value in enumerate(values, start=1):
        if value is not None and not isinstance(value, str):
            raise BatchError(row, "evaluation_set", f"Expected the set's name as text, got {type(value).__name__}.")
    names = set(values) - {None}
    if len(names) > 1:
        raise BatchError(None, "evaluation_set", "One evaluation set per run: the column holds several names.")
    if names and None in values:
        row = values.index(None) + 1
        raise BatchError(row, "evaluation_set", "Required in every row when the column is sent.")
    column = evaluation_set_name(next(iter(names)), "evaluation_set") if names else None
    if param not in (None, ""):
        name = evaluation_set_name(param)
        if column is not None and column != name:
            raise BatchError(None, "evaluation_set", f"The column says {column!r}, the query parameter {name!r}.")
        return name
    if column is None:
        raise BatchError(None, "evaluation_set", "Required: send ?evaluation_set=<name> or an evaluation_set column.")
    return column


def _check_columns(raw: RawBatch) -> None:
    text = sorted(set(raw.present) & set(TEXT_COLUMNS))
    if text:
        raise BatchError(
            None, text[0], "Raw prompt or completion text is not accepted: send case ids, categories and scores only."
        )
    unknown = sorted(set(raw.present) - set(COLUMNS))
    if unknown:
        raise BatchError(None, unknown[0], f"Unknown column: use {', '.join(COLUMNS)}.")
    if "case_id" not in raw.present:
        raise BatchError(None, "case_id", "Column missing from the evaluation run.")
    if not set(raw.present) & set(SCORES):
        raise BatchError(None, "scores", f"No score column: send at least one of {', '.join(SCORES)}.")


def llm_evaluation_validate(raw: RawBatch, *, evaluation_set: str | None = None) -> LLMEvaluationBatch:
    """The one validator of LLM evaluation runs; raises ``BatchError`` naming the first bad row and field."""
    _check_columns(raw)
    name = _set_of(raw, evaluation_set)
    cases: dict = {"case_id": ids_column(raw.column("case_id"), field="case_id")}
    if "category" in raw.present:
        cases["category"] = _categories(raw.column("category"))
    for score in MEANS:
        if score in raw.present:
            cases[score] = _unit_column(raw.column(score), score, from_text=raw.from_text)
    for score in PROPORTIONS:
        if score in raw.present:
            cases[score] = _booleans_column(raw.column(score), score, from_text=raw.from_text)
    return LLMEvaluationBatch(raw.fmt, raw.n, name, cases)


def _approved_metrics_kept(version: ModelVersion, previous: dict, new: dict) -> dict[str, str]:
    """The run's summaries become the version's offline metrics, unless a promotion request is
    being decided on them or on an earlier run (``evidence_check_unchanged``: a 409 naming it),
    or approved them: then the approved metrics stay (the run is stored, e.g. to pair production
    with a candidate on its evaluation set) and the answer is the audit detail saying so."""
    approved = evidence_approved_in(version)
    if approved is not None:
        return {"metrics_kept": f"approved in promotion request #{approved.pk}"}
    rewritten = any(name in previous and previous[name] != value for name, value in new.items())
    # a first run only adds metrics; a later one would replace the run the safety gate reads
    runs = EvaluationRun.objects.filter(version=version, kind=EvaluationKind.LLM)
    replaced = runs.exclude(status=EvaluationStatus.FAILED).exists()
    changed = (["metrics"] if rewritten else []) + (["evaluation run"] if replaced else [])
    evidence_check_unchanged(version, changed=changed)
    return {}


@transaction.atomic
def llm_evaluation_upload(
    *,
    version: ModelVersion,
    body: bytes,
    content_type: str,
    actor,
    context: AuditContext,
    evaluation_set: str | None = None,
) -> EvaluationRun:
    """Validate and store one LLM evaluation run of ``version`` with its summaries; the
    version's offline metrics get the summaries' values. Nothing is stored on error. A body
    already uploaded for the version and evaluation set answers the stored run
    (``duplicate_of``), changing nothing."""
    if not version.model.is_llm_app:
        raise BatchError(None, "kind", "LLM evaluation runs are for models of kind llm_app.")
    batch = llm_evaluation_validate(parse_evaluation_body(body, content_type), evaluation_set=evaluation_set)
    results = {"evaluation_set": batch.evaluation_set, **llm_results(batch.cases)}
    version = ModelVersion.objects.select_for_update(of=("self",)).select_related("model").get(pk=version.pk)
    digest = hashlib.sha256(body).hexdigest()
    match = {"evaluation_set": batch.evaluation_set}
    if (stored := evaluation_stored(version=version, kind=EvaluationKind.LLM, digest=digest, **match)) is not None:
        return stored
    previous = dict(version.metrics) if isinstance(version.metrics, dict) else {}
    new = offline_metrics(results)
    try:
        validate_metrics({**previous, **new})
    except ValidationError as exc:
        raise BatchError(None, "metrics", "; ".join(exc.messages)) from None
    kept = _approved_metrics_kept(version, previous, new)
    run = EvaluationRun(
        version=version,
        kind=EvaluationKind.LLM,
        status=EvaluationStatus.DONE,
        evaluation_set=batch.evaluation_set,
        source_format=batch.fmt,
        n_rows=batch.n,
        attributes=[name for name in SCORES if name in batch.cases],
        data=cases_parquet(batch.cases),
        data_sha256=digest,
        results=results,
        computed_at=clock.now(),
        uploaded_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    if not kept:
        version.metrics = {**previous, **new}
        version.save(update_fields=["metrics"])
    evaluation_run_save(
        run,
        actor=actor,
        context=context,
        before=None if kept else {"metrics": {k: previous[k] for k in new if k in previous}},
        details=kept
        | {
            "kind": EvaluationKind.LLM,
            "evaluation_set": batch.evaluation_set,
            "summaries": {
                k: {f: s[f] for f in ("n", "value", "ci_low", "ci_high")} for k, s in results["metrics"].items()
            },
            "safety_categories": {
                c["category"]: {"n": c["n"], "rate": c["rate"]} for c in results["safety_categories"]
            },
            "metrics": new,
        },
    )
    return run
