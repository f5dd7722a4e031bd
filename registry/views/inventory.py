"""Inventory pages: list, model, version, and the owner's forms. (Skeleton to fill in.)"""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render

from registry.selectors import model_list


@login_required
def home(request):
    return redirect("monitoring:fleet")


@login_required
def model_list_view(request):
    return render(request, "registry/model_list.html", {"models": model_list(user=request.user)[:50]})


@login_required
def model_create_view(request):
    raise Http404


@login_required
def model_detail(request, name):
    raise Http404


@login_required
def model_edit(request, name):
    raise Http404


@login_required
def version_create_view(request, name):
    raise Http404


@login_required
def version_detail(request, name, version):
    raise Http404


@login_required
def version_edit(request, name, version):
    raise Http404
