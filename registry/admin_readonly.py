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
