"""The classes a classification version declares, and its positive class.

A binary version may declare its two class labels and which of them is positive (the class its
``score`` is the probability of, and the one precision, recall, the fairness figures and the
performance estimate are about): ``"classes": ["stayed", "churned"], "positive_class":
"churned"``. A multiclass version may declare its classes. Declared classes are what ingestion
accepts from the first prediction on; without them the classes come from the reference data
(``monitoring.services.ingest_classes``) and the positive class is inferred from the labels.
Both are fixed at registration, like the feature schema and the task type.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from registry.choices import TaskType

CLASS_MAX_LENGTH = 100
MAX_CLASSES = 1000


def class_text(value: Any) -> str | None:
    """A declared class as the text ingestion compares labels with; None when it is no class
    (only text and whole numbers are)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    if not text.strip() or len(text) > CLASS_MAX_LENGTH or any(ord(c) < 32 for c in text):
        return None
    return text


def validate_classes(task_type: str, classes: Any, positive_class: Any) -> tuple[list[str], str]:
    """(classes as text, positive class) for a version of ``task_type``; raises a
    ``ValidationError`` naming ``classes`` or ``positive_class``."""
    classes = [] if classes is None else classes
    positive_class = "" if positive_class is None else positive_class
    if task_type == TaskType.REGRESSION:
        if classes or positive_class != "":
            raise ValidationError({"classes": "A regression version has no classes."})
        return [], ""
    if not isinstance(classes, list):
        raise ValidationError({"classes": 'Classes must be a JSON list of labels, e.g. ["stayed", "churned"].'})
    texts = [class_text(c) for c in classes]
    if None in texts:
        bad = classes[texts.index(None)]
        raise ValidationError(
            {"classes": f"{bad!r} is no class label: give text or whole numbers, 1 to {CLASS_MAX_LENGTH} characters."}
        )
    if len(set(texts)) != len(texts):
        raise ValidationError({"classes": "A class is declared more than once."})
    _count_check(task_type, texts)
    return texts, _positive(task_type, texts, positive_class)


def _count_check(task_type: str, texts: list[str]) -> None:
    if not texts:
        return
    if task_type == TaskType.BINARY and len(texts) != 2:
        raise ValidationError({"classes": f"A binary version has exactly two classes, got {len(texts)}."})
    if task_type == TaskType.MULTICLASS and not 2 <= len(texts) <= MAX_CLASSES:
        raise ValidationError({"classes": f"A multiclass version declares 2 to {MAX_CLASSES} classes."})


def _positive(task_type: str, texts: list[str], positive_class: Any) -> str:
    if positive_class == "":
        if task_type == TaskType.BINARY and texts:
            raise ValidationError(
                {"positive_class": "Name the positive class: the one the score is the probability of."}
            )
        return ""
    if task_type != TaskType.BINARY:
        raise ValidationError({"positive_class": "Only a binary version has a positive class."})
    positive = class_text(positive_class)
    if not texts:
        raise ValidationError({"positive_class": "Declare the version's two classes with its positive class."})
    if positive not in texts:
        raise ValidationError({"positive_class": f"The positive class must be one of the classes: {', '.join(texts)}."})
    return positive
