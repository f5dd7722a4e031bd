"""Promotion workflow pages: review queue, request page, actions, timeline, rollback. (Skeleton.)"""

from django.contrib.auth.decorators import login_required
from django.http import Http404


@login_required
def review_queue(request):
    raise Http404


@login_required
def promotion_create_view(request, name, version):
    raise Http404


@login_required
def promotion_detail(request, pk):
    raise Http404


@login_required
def promotion_approve_view(request, pk):
    raise Http404


@login_required
def promotion_reject_view(request, pk):
    raise Http404


@login_required
def promotion_cancel_view(request, pk):
    raise Http404


@login_required
def model_timeline(request, name):
    raise Http404


@login_required
def model_rollback_view(request, name):
    raise Http404
