"""List pagination: ``?limit=&offset=`` as DRF's LimitOffsetPagination, but strict. A value that is
not a whole number in range is a 400 naming the parameter (DRF would quietly use its default),
and the bounds are in the schema."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 1000
MAX_OFFSET = 2**31 - 1


class StrictLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def _read(self, request, name: str, *, minimum: int, maximum: int, default):
        values = request.query_params.getlist(name)
        if not values:
            return default
        text = values[-1].strip()
        if len(values) > 1 or not text.isascii() or not text.isdigit() or not minimum <= int(text) <= maximum:
            raise exceptions.ValidationError({name: [f"Expected one whole number from {minimum} to {maximum}."]})
        return int(text)

    def get_limit(self, request):
        return self._read(request, self.limit_query_param, minimum=1, maximum=MAX_LIMIT, default=self.default_limit)

    def get_offset(self, request):
        return self._read(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET, default=0)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: (1, MAX_LIMIT), self.offset_query_param: (0, MAX_OFFSET)}
        for parameter in parameters:
            low, high = bounds[parameter["name"]]
            parameter["schema"].update(minimum=low, maximum=high)
        return parameters
