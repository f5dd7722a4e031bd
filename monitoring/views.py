"""Monitoring pages. (Skeleton; the dashboards work fills these in.)"""

from django.contrib.auth.decorators import login_required
from django.http import Http404


@login_required
def fleet_overview(request):
    raise Http404


@login_required
def model_dashboard(request, name):
    raise Http404


@login_required
def alert_list(request):
    raise Http404


@login_required
def scorecard(request):
    raise Http404
