"""Forms of the oversight pages (each posts to the same service as the API)."""

from __future__ import annotations

from django import forms

from monitoring.choices import FindingSeverity, IncidentSeverity, ReportKind, SuspendMode

TEXTAREA = forms.Textarea(attrs={"rows": 3})


class IncidentOpenForm(forms.Form):
    severity = forms.ChoiceField(choices=IncidentSeverity.choices)
    aware_at = forms.DateTimeField(
        label="Became aware at",
        help_text="Your local time with its offset, or UTC (e.g. 2026-03-01 09:00 or 2026-03-01T09:00+01:00).",
    )
    summary = forms.CharField(widget=TEXTAREA, max_length=20_000, label="What happened")
    affected = forms.CharField(widget=TEXTAREA, max_length=20_000, required=False, label="Affected persons or rights")


class NoteForm(forms.Form):
    text = forms.CharField(widget=TEXTAREA, max_length=20_000, label="Investigation note")


class SuspendForm(forms.Form):
    mode = forms.ChoiceField(choices=SuspendMode.choices, widget=forms.RadioSelect)
    reason = forms.CharField(widget=TEXTAREA, max_length=20_000)


class ReportForm(forms.Form):
    kind = forms.ChoiceField(choices=ReportKind.choices)
    affected = forms.CharField(widget=TEXTAREA, max_length=20_000, required=False, label="Affected persons or rights")
    corrective_actions = forms.CharField(widget=TEXTAREA, max_length=20_000, required=False)


class ResolveForm(forms.Form):
    root_cause = forms.CharField(widget=TEXTAREA, max_length=20_000)
    corrective_actions = forms.CharField(widget=TEXTAREA, max_length=20_000, required=False)


class CloseForm(forms.Form):
    comment = forms.CharField(widget=TEXTAREA, max_length=20_000, required=False)


class PlanForm(forms.Form):
    narrative = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        max_length=50_000,
        help_text="Required: how the system is monitored over its lifetime (EU AI Act Art. 72).",
    )


class ReviewOpenForm(forms.Form):
    reason = forms.CharField(widget=TEXTAREA, max_length=20_000)


class AttestForm(forms.Form):
    card_true = forms.BooleanField(label="The model card (description, limitations) is still true")
    intended_use_true = forms.BooleanField(label="The intended use is still true")
    comment = forms.CharField(widget=TEXTAREA, max_length=20_000, required=False)


class ValidateForm(forms.Form):
    comment = forms.CharField(widget=TEXTAREA, max_length=20_000, label="Revalidation opinion")


class FindingForm(forms.Form):
    severity = forms.ChoiceField(choices=FindingSeverity.choices)
    description = forms.CharField(widget=TEXTAREA, max_length=20_000)
    owner = forms.CharField(max_length=150, help_text="Username of who must fix it.")
    due_at = forms.DateTimeField(label="Due", help_text="e.g. 2026-04-30 17:00 (UTC) or with an offset.")


class RemediateForm(forms.Form):
    evidence = forms.CharField(widget=TEXTAREA, max_length=20_000, label="Remediation evidence")


class RetestForm(forms.Form):
    passed = forms.TypedChoiceField(
        choices=[("true", "Passed: close it"), ("false", "Failed: send it back")],
        coerce=lambda v: v == "true",
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(widget=TEXTAREA, max_length=20_000, required=False)
