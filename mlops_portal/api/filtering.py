"""List filters of the API: django-filter's backend, refusing query parameters it does not know.

A misspelt filter (``?risk_tier=`` where the list filters ``?tier=``) is a 400 naming it and the
parameters the list accepts; django-filter alone ignores it and answers the whole list as if it
were filtered. A parameter given twice (``?status=pending&status=applied``) is a 400 too: it
would be read as its last value. Only lists that declare a FilterSet are checked (the others read their own
parameters)."""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions

ALWAYS_ACCEPTED = ("format",)  # DRF's response format override (``?format=json``)


class StrictFilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            paginator = getattr(view, "paginator", None)
            pages = [getattr(paginator, name, None) for name in ("limit_query_param", "offset_query_param")]
            accepted = [*filterset_class.base_filters, *(p for p in pages if p), *ALWAYS_ACCEPTED]
            unknown = sorted(set(request.query_params) - set(accepted))
            if unknown:
                message = f"Unknown query parameter; this list accepts: {', '.join(accepted)}."
                raise exceptions.ValidationError({name: [message] for name in unknown})
            refuse_repeated(request, request.query_params)  # django-filter would read the last value only
        return super().filter_queryset(request, queryset, view)


def refuse_repeated(request, names) -> None:
    """A 400 naming each of ``names`` given more than once in the query string."""
    repeated = sorted(name for name in names if len(request.query_params.getlist(name)) > 1)
    if repeated:
        raise exceptions.ValidationError({name: ["Given more than once; send it once."] for name in repeated})
