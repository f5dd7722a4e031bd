"""Inventory pages. (Skeleton; the inventory work fills these in.)"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render

from registry.selectors import model_list


@login_required
def home(request):
    return redirect("registry:model_list")


@login_required
def model_list_view(request):
    return render(request, "registry/model_list.html", {"models": model_list(user=request.user)[:50]})


@login_required
def model_detail(request, name):
    model = model_list(user=request.user).filter(name=name).first()
    if model is None:
        raise Http404("No such model.")
    return HttpResponse(model.name)


@login_required
def version_detail(request, name, version):
    raise Http404


@login_required
def placeholder(request, pk):
    raise Http404
