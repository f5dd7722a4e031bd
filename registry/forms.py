"""Forms of the inventory pages. They parse and present input; the services validate and write."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from mlops_portal.api.parsers import JSONInputError, json_loads
from registry.choices import ModelKind, TaskType, TokenScope
from registry.limits import CARD_TEXT_MAX_LENGTH, validate_model_name_free
from registry.models import (
    MODEL_CARD_FIELDS,
    MODEL_NAME_VALIDATOR,
    RegisteredModel,
    Team,
    time_zone_names,
)
from registry.rules import usable_scopes
from registry.services.inventory import validate_version_reference

T = TypeVar("T")


def apply_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Attach a service's ValidationError to the form's fields (unknown keys become form errors)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.message_dict.items():
        target = field if field in form.fields else None
        messages = (
            errors if target or field in (NON_FIELD_ERRORS, "non_field_errors") else [f"{field}: {e}" for e in errors]
        )
        form.add_error(target, messages)


def form_submit(request, form: forms.Form, write: Callable[[dict[str, Any]], T]) -> tuple[T | None, int]:
    """The create and edit pages' one flow: on a POST with a valid form, ``write(cleaned_data)``
    (a service call); a ``ValidationError`` it raises becomes the form's field errors.

    Returns (what ``write`` returned, or None when the form is to be shown; the status to show
    it with: 200 for a GET, 400 after a POST that wrote nothing)."""
    if request.method != "POST":
        return None, 200
    if form.is_valid():
        try:
            return write(form.cleaned_data), 200
        except ValidationError as exc:
            apply_service_errors(form, exc)
    return None, 400


def posted(request):
    """The data a form is bound to: the POST body, or None (an unbound form) for a GET."""
    return request.POST if request.method == "POST" else None


class JSONTextField(forms.CharField):
    """A textarea holding JSON, read as strictly as an API body (``json_loads``): NaN and
    Infinity, NUL characters and nesting deeper than ``MAX_JSON_DEPTH`` are refused."""

    widget = forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"})

    def __init__(self, *, empty: Any, **kwargs):
        self.empty = empty
        kwargs.setdefault("required", False)
        super().__init__(strip=True, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, (dict, list)):
            return json.dumps(value, indent=2) if value else ""  # empty reads as "not given"
        return value

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return self.empty
        try:
            return json_loads(text)
        except JSONInputError as exc:
            raise ValidationError(exc.message, code="invalid_json") from exc


class ModelForm(forms.ModelForm):
    """Register (with a name) or edit (name fixed) a model: its team, its card (``MODEL_CARD_FIELDS``,
    fields as the model defines them) and its tags. It validates input; the service writes."""

    name = forms.CharField(
        max_length=100,
        validators=[MODEL_NAME_VALIDATOR, validate_model_name_free],
        help_text="Permanent. Lowercase letters, digits, '-' and '_'.",
    )
    team = forms.ModelChoiceField(queryset=Team.objects.none(), to_field_name="slug", empty_label=None)
    tags = forms.CharField(required=False, max_length=1000, help_text="Comma-separated, e.g. fraud, pii.")
    time_zone = forms.ChoiceField(
        required=False,
        choices=lambda: [("", "The installation's default"), *((z, z) for z in time_zone_names())],
        help_text="Where the model operates: incident reporting deadlines are computed on its calendar.",
    )

    class Meta:
        model = RegisteredModel
        fields = ["name", "kind", "team", *MODEL_CARD_FIELDS, "tags"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "intended_use": forms.Textarea(attrs={"rows": 3}),
            "limitations": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {"primary_metric": "e.g. roc_auc or rmse."}

    def __init__(self, *args, teams, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        if editing:  # the name and the kind are permanent
            del self.fields["name"]
            del self.fields["kind"]
        else:
            self.fields["kind"].required = False

    def clean_kind(self) -> str:
        return self.cleaned_data["kind"] or ModelKind.ML

    def clean_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]


class VersionForm(forms.Form):
    """Register a version (all fields) or edit one (metadata only: no schema, task type or stage)."""

    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=CARD_TEXT_MAX_LENGTH
    )
    artifact_uri = forms.CharField(
        label="Artifact URI", max_length=500, required=False, help_text="e.g. s3://models/churn/3/model.pkl"
    )
    source_commit = forms.CharField(max_length=64, required=False, help_text="Git commit of the training code.")
    training_run_id = forms.CharField(label="Training run id", max_length=100, required=False)
    training_data_ref = forms.CharField(
        label="Training data reference", max_length=500, required=False, help_text="Where the training data lives."
    )
    training_data_hash = forms.CharField(max_length=128, required=False, help_text="e.g. sha256:…")
    task_type = forms.ChoiceField(choices=TaskType.choices)
    classes = JSONTextField(
        empty=[],
        widget=forms.TextInput(attrs={"class": "mono", "spellcheck": "false"}),
        help_text='Classification, optional: the class labels as a JSON list, e.g. ["stayed", "churned"].',
    )
    positive_class = forms.CharField(
        max_length=100, required=False, help_text="Binary, with its classes: the class the score is the probability of."
    )
    metrics = JSONTextField(empty={}, help_text='A JSON object of metric name → number, e.g. {"roc_auc": 0.91}.')
    feature_schema = JSONTextField(
        empty=[],
        help_text='A JSON list, e.g. [{"name": "age", "type": "numeric"}, {"name": "plan", "type": "categorical"}].',
    )

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing:
            for fixed in ("task_type", "feature_schema", "classes", "positive_class"):
                del self.fields[fixed]

    def clean(self):
        cleaned = super().clean()
        if not self.editing:
            try:
                validate_version_reference(cleaned)
            except ValidationError as exc:
                apply_service_errors(self, exc)
        return cleaned


class TokenForm(forms.Form):
    """A new personal API token: a label, the scopes the user's roles can use
    (``registry.rules.usable_scopes``) and a lifetime within the installation's maximum."""

    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "%(value)s is not a scope your roles can use."},
        help_text="Only the scopes your roles can use are offered.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        usable = set(usable_scopes(user))
        self.fields["scopes"].choices = [
            (value, f"{value} — {label}") for value, label in TokenScope.choices if value in usable
        ]
        self.fields["expires_days"] = expires_days_field(required=False)


def expires_days_field(*, required: bool) -> forms.IntegerField:
    """A token's lifetime in days, bounded by the installation's maximum (TOKEN_MAX_LIFETIME_DAYS,
    read when the form is built, as the token service reads it): the tokens page's form and the
    "Connect a pipeline" page's. Optional: empty means the maximum."""
    most = settings.TOKEN_MAX_LIFETIME_DAYS
    hint = f"At most {most} days" if required else f"Leave empty for this installation's maximum: {most} days"
    return forms.IntegerField(
        label="Expires after (days)",
        min_value=1,
        max_value=most,
        required=required,
        initial=min(90, most),
        help_text=f"{hint}.",
    )


class PipelineTokenForm(forms.Form):
    """A token for a pipeline, created on the "Connect a pipeline" page with the pipeline's scopes."""

    name = forms.CharField(max_length=100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_days"] = expires_days_field(required=True)


class LLMVersionForm(forms.Form):
    """Register a version of an LLM application: its parts as JSON (registry/services/llm_versions.py
    validates them as strictly as the API does). Prefilled with the latest version's parts, so an
    edit of them registers the next version."""

    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=CARD_TEXT_MAX_LENGTH
    )
    prompts = JSONTextField(empty=None, help_text='A JSON list, e.g. [{"name": "system", "template": "Hi {{name}}"}].')
    llm = JSONTextField(
        label="Hosted model",
        empty=None,
        help_text='e.g. {"provider": "openai", "model": "gpt-4.1", "parameters": {"temperature": 0.2}}.',
    )
    retrieval = JSONTextField(
        empty=None,
        help_text='Optional, e.g. {"name": "help-centre", "version": "2026-10", "embedding_model": "e5-small"}.',
    )
    tools = JSONTextField(empty=None, help_text='Optional: a JSON list of {"name", "schema"} (JSON-schema objects).')
    safety = JSONTextField(empty=None, help_text='e.g. {"rules": ["no-pii-in-answers"], "blocked_topics": ["legal"]}.')
    metrics = JSONTextField(empty={}, help_text='Evaluation results, e.g. {"correctness": 0.89}.')
