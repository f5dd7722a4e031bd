"""Admin pages for access: the provider's group mapping, service accounts, API tokens (an admin
revokes anyone's) and locked sign-ins (an admin unlocks). Every change goes through an audited
service; nothing here writes a row by itself."""

from __future__ import annotations

from axes.models import AccessAttempt
from django import forms
from django.conf import settings
from django.contrib import admin

from .admin_actions import CheckedSelection
from .admin_readonly import KeptReadOnlyAdmin, ReadOnlyAdmin, UtcDateFieldListFilter
from .models import ApiToken, ExternalIdentity, GroupMapping, ServiceAccount
from .stepup import StepUpOnSave


def _context(request):
    from .services.audit import AuditContext

    return AuditContext.from_request(request)


class GroupMappingAdmin(CheckedSelection, StepUpOnSave, admin.ModelAdmin):
    """``claim value → role, team or admin``; applied at every sign-in through the provider. Saving
    one needs a fresh sign-in."""

    list_display = ["claim_value", "group", "team", "grants_admin"]
    search_fields = ["claim_value"]

    def save_model(self, request, obj, form, change):
        from .services.accounts import group_mapping_save

        group_mapping_save(mapping=obj, actor=request.user, context=_context(request))

    def delete_model(self, request, obj):
        from .services.accounts import group_mapping_delete

        group_mapping_delete(mapping=obj, actor=request.user, context=_context(request))

    def delete_queryset(self, request, queryset):
        for mapping in queryset:
            self.delete_model(request, mapping)


class ServiceAccountForm(forms.ModelForm):
    name = forms.SlugField(max_length=100, help_text="The account is named svc-<name>.")

    class Meta:
        model = ServiceAccount
        fields = ["team", "description"]


class ServiceAccountAdmin(CheckedSelection, admin.ModelAdmin):
    """Team-owned accounts for pipelines. Create here, then a token for it with
    ``manage.py create_token svc-<name> --scope …``; deactivate to revoke all its tokens."""

    list_display = ["user", "team", "active", "created_by", "created_at"]
    list_filter = ["team"]
    actions = ["deactivate"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ServiceAccountForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return ["user", "team", "created_by", "created_at"] if obj else []

    @admin.display(boolean=True)
    def active(self, obj) -> bool:
        return obj.user.is_active

    def save_model(self, request, obj, form, change):
        from .services.accounts import service_account_create

        if change:
            obj.save(update_fields=["description"])
            return
        created = service_account_create(
            name=form.cleaned_data["name"],
            team=form.cleaned_data["team"],
            description=form.cleaned_data.get("description", ""),
            actor=request.user,
            context=_context(request),
        )
        obj.pk, obj.user = created.pk, created.user

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: the audit log keeps naming the account

    @admin.action(description="Deactivate (revokes every token at once)")
    def deactivate(self, request, queryset):
        from .services.accounts import account_deactivate

        revoked = sum(
            account_deactivate(user=account.user, actor=request.user, context=_context(request)) for account in queryset
        )
        self.message_user(request, f"{queryset.count()} service account(s) deactivated; {revoked} token(s) revoked.")


class ApiTokenAdmin(KeptReadOnlyAdmin):
    """Every token (created on the tokens page or with ``manage.py create_token``); an admin revokes
    any of them (audited). Secrets are never stored."""

    list_display = ["name", "user", "prefix", "scopes", "expires_at", "last_used_at", "last_used_ip", "revoked_at"]
    list_filter = [("revoked_at", UtcDateFieldListFilter)]
    search_fields = ["=prefix", "user__username", "name"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in ApiToken._meta.fields if f.name != "token_hash"]
    exclude = ["token_hash"]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from .services.tokens import token_revoke

        for token in queryset.select_related("user"):
            token_revoke(token=token, actor=request.user, context=_context(request), reason="revoked by an admin")
        self.message_user(request, f"{queryset.count()} token(s) revoked.")


class AccessAttemptAdmin(KeptReadOnlyAdmin):
    """Failed sign-ins counted by django-axes. "Unlock" lifts a lockout (audited; never deleted here)."""

    list_display = ["attempt_time", "username", "ip_address", "failures_since_start", "locked"]
    search_fields = ["=username", "=ip_address"]
    readonly_fields = ["attempt_time", "username", "ip_address", "user_agent", "path_info", "failures_since_start"]
    fields = readonly_fields
    actions = ["unlock"]

    @admin.display(boolean=True)
    def locked(self, obj) -> bool:
        return obj.failures_since_start >= settings.AXES_FAILURE_LIMIT

    @admin.action(description="Unlock (forget these failed sign-ins)")
    def unlock(self, request, queryset):
        from .services.accounts import login_unlock

        count = login_unlock(attempts=queryset, actor=request.user, context=_context(request))
        self.message_user(request, f"{count} lockout record(s) cleared.")


class ExternalIdentityAdmin(ReadOnlyAdmin):
    """Who each user is at the identity provider, and the groups claim of their last sign-in."""

    list_display = ["user", "subject", "issuer", "last_login_at", "groups"]
    search_fields = ["=subject", "user__username"]


def register_access_admin(site) -> None:
    site.register(GroupMapping, GroupMappingAdmin)
    site.register(ServiceAccount, ServiceAccountAdmin)
    site.register(ApiToken, ApiTokenAdmin)
    site.register(AccessAttempt, AccessAttemptAdmin)
    site.register(ExternalIdentity, ExternalIdentityAdmin)
