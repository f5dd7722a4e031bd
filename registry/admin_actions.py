"""The admin's list actions refuse a selection that is not a list of row keys (a hand-made post
with ``_selected_action=abc``): the list again with the error, 400, nothing done. The database
lookup of such a selection raised ValueError, a 500."""

from __future__ import annotations

import copy

from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError

REFUSED = "Select rows of the list: {value!r} is not the key of one. Nothing was changed."


class CheckedSelection:
    """Mixed into a ModelAdmin before its Django base."""

    def response_action(self, request, queryset):
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                self.model._meta.pk.to_python(value)
            except ValidationError:
                self.message_user(request, REFUSED.format(value=value), messages.ERROR)
                listing = copy.copy(request)
                listing.method = "GET"  # the list as shown, the action not run
                response = self.changelist_view(listing)
                response.status_code = 400
                return response
        return super().response_action(request, queryset)
