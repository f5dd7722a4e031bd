"""The outcomes a version can produce, checked on ingestion (``ingest_validation``).

A classification version declares its classes at registration (``ModelVersion.classes``,
registry/classes.py), or through its reference data: the classes of its
``prediction`` and ``label`` columns (the profile's ``classes``; older profiles: the predicted
classes of ``per_class`` and the calibration's positive label). Without a computed reference,
the model's newest version of the same task type that has one declares them.

* binary: the two declared classes; if the reference does not show exactly two, ``0`` and
  ``1`` (``true``/``false`` and ``1.0`` are spelled ``1``/``0``, see ``label_string``). The
  score is the positive-class probability, in [0, 1].
* multiclass: the declared classes, any class when nothing is declared.
* regression: finite numbers (``ingest_validation.numbers_column``).

A value outside them is refused naming its row and field, so a window never mixes classes
its metrics cannot compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitoring.choices import ProfileStatus
from registry.choices import TaskType

from .ingest_parsing import BatchError

BINARY_DEFAULT = frozenset({"0", "1"})
SHOWN = 10  # the classes named in an error message


@dataclass(frozen=True)
class Outcomes:
    """What a version's predictions and labels may be: ``classes`` None = any class."""

    task_type: str
    classes: frozenset[str] | None = None


def profile_classes(profile: dict) -> set[str]:
    """The classes a reference profile shows (see the module docstring)."""
    classes = set(profile.get("classes") or ()) | set(profile.get("per_class") or ())
    positive = (profile.get("calibration") or {}).get("positive_label")
    return classes | ({positive} if positive else set())


def _declared(version) -> set[str]:
    from monitoring.models import ReferenceProfile

    profiles = ReferenceProfile.objects.filter(
        version__model_id=version.model_id, version__task_type=version.task_type, status=ProfileStatus.READY
    ).values_list("version_id", "profile")
    # its own reference first, then the newest version's
    ordered = sorted(profiles, key=lambda row: (row[0] != version.pk, -row[0]))
    for _, profile in ordered:
        if classes := profile_classes(profile or {}):
            return classes
    return set()


def outcomes_of(version) -> Outcomes:
    """The classes ``version``'s predictions and labels may take (one query); a model without a
    version (``None``) takes a binary task's default classes."""
    if version is None:
        return Outcomes(TaskType.BINARY, BINARY_DEFAULT)
    if version.task_type == TaskType.REGRESSION or version.classes:
        return registered_outcomes(version)
    declared = _declared(version)
    if version.task_type == TaskType.BINARY:
        return Outcomes(version.task_type, frozenset(declared) if len(declared) == 2 else BINARY_DEFAULT)
    return Outcomes(version.task_type, frozenset(declared) or None)


def registered_outcomes(version) -> Outcomes:
    """The classes ``version`` declared at registration, any class when it declared none (what
    its reference data may show)."""
    if version.task_type == TaskType.REGRESSION:
        return Outcomes(version.task_type)
    return Outcomes(version.task_type, frozenset(version.classes) if version.classes else None)


def classes_check(values: list, field: str, outcomes: Outcomes) -> None:
    """Refuse the first class label (as text, None = missing) outside ``outcomes.classes``."""
    if outcomes.classes is None:
        return
    unknown = set(values) - outcomes.classes - {None}
    if not unknown:
        return
    row = next(i for i, v in enumerate(values, start=1) if v in unknown)
    names = ", ".join(repr(c) for c in sorted(outcomes.classes)[:SHOWN])
    more = f" (and {len(outcomes.classes) - SHOWN} more)" if len(outcomes.classes) > SHOWN else ""
    kind = "two classes" if outcomes.task_type == TaskType.BINARY else "declared classes"
    raise BatchError(row, field, f"{values[row - 1][:40]!r} is not one of the version's {kind}: {names}{more}.")


def scores_check(scores: np.ndarray, outcomes: Outcomes) -> None:
    """A binary score is the positive-class probability: refuse the first one outside [0, 1]."""
    if outcomes.task_type != TaskType.BINARY:
        return
    with np.errstate(invalid="ignore"):
        bad = (scores < 0) | (scores > 1)  # NaN (missing) compares False
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BatchError(row + 1, "score", f"A probability between 0 and 1 is expected, got {scores[row]:g}.")


__all__ = ["Outcomes", "classes_check", "outcomes_of", "profile_classes", "scores_check"]
