"""Auditor pages: audit log, export, per-model history, as-of inventory, compliance report. (Skeleton.)"""

from django.contrib.auth.decorators import login_required
from django.http import Http404


@login_required
def audit_log(request):
    raise Http404


@login_required
def audit_export_view(request):
    raise Http404


@login_required
def model_history(request, name):
    raise Http404


@login_required
def as_of_view(request):
    raise Http404


@login_required
def compliance_report(request, name):
    raise Http404


@login_required
def compliance_report_pdf(request, name):
    raise Http404
