"""Admin bases for what the portal itself writes (through its audited services): shown in the
admin, never added or changed there."""

from django.contrib import admin

from .admin_actions import CheckedSelection


class ReadOnlyAdmin(CheckedSelection, admin.ModelAdmin):
    """Listed and shown; no add or change (deleting stays the admin's call)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class KeptReadOnlyAdmin(ReadOnlyAdmin):
    """Read-only and never deleted here either: evidence (the audit log) or records with their own
    audited way out (tokens are revoked, lockouts unlocked)."""

    def has_delete_permission(self, request, obj=None):
        return False


class UtcDateFieldListFilter(admin.DateFieldListFilter):
    """Django's date filter whose values (``revoked_at__gte=…`` in the address) must be instants
    within the calendar once in UTC: ``9999-12-31T23:59:59-14:00`` is an incorrect lookup (the
    admin's "?e=1" answer) instead of an OverflowError in the database adapter."""

    def queryset(self, request, queryset):
        from django import forms
        from django.contrib.admin.options import IncorrectLookupParameters
        from django.core.exceptions import ValidationError

        from mlops_portal.filters import utc_instant

        for key, values in self.used_parameters.items():
            for value in values if isinstance(values, list) else [values]:
                if key.endswith("__isnull"):
                    continue
                try:
                    utc_instant(forms.DateTimeField().to_python(value))
                except ValidationError as exc:
                    raise IncorrectLookupParameters(exc) from exc
        return super().queryset(request, queryset)
