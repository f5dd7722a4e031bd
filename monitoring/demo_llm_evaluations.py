"""Demo evaluation runs of an LLM application (``support-assistant``), uploaded through the real
service (``monitoring.services.evaluations_llm.llm_evaluation_upload``).

Every run covers the same evaluation set, ``support-eval-2026-11``: 1,200 cases, 700 general
support questions (no safety category) and 100 in each of five safety categories. The cases
have a fixed difficulty, so two versions' correctness scores are correlated case by case, as in a
real paired evaluation. Deterministic: the same profile and version number give the same rows.

Profiles:

* ``good``: safety pass rate 99.67 % overall, at least 99 % in every category; correctness about 0.80.
  Passes the safety gate and, against another ``good`` version, the quality gate.
* ``unsafe``: the same correctness or a little better (+0.01 on average), but jailbreak attempts
  pass only 93 % (7 of 100 fail): overall 99.17 % (still ≥ 99 %), so the safety gate fails on
  exactly one category, ``jailbreak``, with its rate and n in the reason.
"""

from __future__ import annotations

import numpy as np
import orjson

from monitoring.services.evaluations_llm import llm_evaluation_upload
from registry.models import EvaluationRun, ModelVersion

DEMO_SET = "support-eval-2026-11"
GENERAL_CASES = 700
CATEGORIES = ("self-harm", "pii", "jailbreak", "harassment", "medical-advice")
CASES_PER_CATEGORY = 100
#: Failed safety cases per category and profile (out of CASES_PER_CATEGORY).
FAILURES = {
    "good": {"self-harm": 1, "pii": 1, "jailbreak": 1, "harassment": 0, "medical-advice": 1},
    "unsafe": {"self-harm": 1, "pii": 1, "jailbreak": 7, "harassment": 0, "medical-advice": 1},
}
CORRECTNESS_SHIFT = {"good": 0.0, "unsafe": 0.01}
PROFILE_SEED = {"good": 11, "unsafe": 23}
CASE_SEED = 2026


def _case_frame() -> tuple[list[str], list[str | None], np.ndarray]:
    """The set's case ids, categories and difficulty (the expected correctness), fixed."""
    rng = np.random.default_rng(CASE_SEED)
    categories: list[str | None] = [None] * GENERAL_CASES
    for category in CATEGORIES:
        categories += [category] * CASES_PER_CATEGORY
    ids = [f"case-{i:05d}" for i in range(len(categories))]
    return ids, categories, rng.beta(8, 2, size=len(ids))


def demo_cases(profile: str, *, version_number: int = 1) -> list[dict]:
    """The rows of one demo run (deterministic in ``profile`` and ``version_number``)."""
    if profile not in FAILURES:
        raise ValueError(f"Unknown profile {profile!r}: use one of {', '.join(FAILURES)}.")
    ids, categories, difficulty = _case_frame()
    rng = np.random.default_rng([PROFILE_SEED[profile], version_number])
    n = len(ids)
    correctness = np.clip(difficulty + CORRECTNESS_SHIFT[profile] + rng.normal(0, 0.04, n), 0, 1).round(4)
    groundedness = np.clip(difficulty + 0.05 + rng.normal(0, 0.05, n), 0, 1).round(4)
    safety = np.ones(n, dtype=bool)
    labels = np.array(["" if c is None else c for c in categories], dtype=object)
    for category, failures in FAILURES[profile].items():
        where = np.flatnonzero(labels == category)
        safety[rng.choice(where, size=failures, replace=False)] = False
    refusal = np.where(labels == "", rng.random(n) < 0.02, safety & (rng.random(n) < 0.9))
    return [
        {
            "case_id": ids[i],
            "category": categories[i],
            "correctness": float(correctness[i]),
            "groundedness": float(groundedness[i]),
            "safety_pass": bool(safety[i]),
            "refusal": bool(refusal[i]),
        }
        for i in range(n)
    ]


def upload_demo_evaluation(
    version: ModelVersion, *, actor, profile: str, evaluation_set: str = DEMO_SET, context=None
) -> EvaluationRun:
    """Upload one demo run of ``version`` (JSON Lines, through the API's service); idempotent: a
    version that already has a run on ``evaluation_set`` keeps it."""
    from registry.demo import CONTEXT

    existing = EvaluationRun.objects.filter(version=version, kind="llm", evaluation_set=evaluation_set).first()
    if existing is not None:
        return existing
    rows = demo_cases(profile, version_number=version.version)
    body = b"\n".join(orjson.dumps(row) for row in rows)
    return llm_evaluation_upload(
        version=version,
        body=body,
        content_type="application/x-ndjson",
        actor=actor,
        context=context or CONTEXT,
        evaluation_set=evaluation_set,
    )
