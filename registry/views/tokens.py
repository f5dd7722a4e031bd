"""Personal API tokens page. (Skeleton to fill in.)"""

from django.contrib.auth.decorators import login_required
from django.http import Http404


@login_required
def token_list(request):
    raise Http404


@login_required
def token_revoke_view(request, pk):
    raise Http404
