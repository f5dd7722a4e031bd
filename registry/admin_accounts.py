"""Admin pages for accounts and roles: users (their admin flags, roles, passwords and Django
permissions) and role groups. Every change goes through an audited service naming the acting
admin; saving one needs a fresh sign-in."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminPasswordChangeForm as OwnPasswordChangeForm
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import Group

from .admin_actions import CheckedSelection
from .stepup import StepUpOnSave


class _AuditedPasswordSave:
    """Saves a password form through the audited service (``user.password_set``), as the admin
    who sent it (``current_actor``, set by the view that shows the form)."""

    def new_password(self) -> str | None:
        raise NotImplementedError

    def save(self, commit=True):
        from .services.accounts import account_password_set
        from .services.audit import CLI, current_actor

        actor, context = current_actor(CLI)
        return account_password_set(user=self.user, password=self.new_password(), actor=actor, context=context)


class AuditedPasswordForm(_AuditedPasswordSave, AdminPasswordChangeForm):
    """The admin's password form for an account (AuditedUserAdmin.user_change_password)."""

    def new_password(self) -> str | None:
        return self.cleaned_data["password1"] if self.cleaned_data["set_usable_password"] else None


class AuditedOwnPasswordForm(_AuditedPasswordSave, OwnPasswordChangeForm):
    """The admin site's "Change password" form (the signed-in admin's own password, old one
    first; audited_password_change)."""

    def new_password(self) -> str | None:
        return self.cleaned_data["new_password1"]


def audited_password_change(request):
    """The admin site's own "Change password" page, with the form above (routed before the admin
    site's URLs in ``mlops_portal.urls``; the admin site's login and staff check wrap it)."""
    from django.contrib.auth.views import PasswordChangeView
    from django.urls import reverse

    from .services.audit import AuditContext, acting_as

    view = PasswordChangeView.as_view(
        form_class=AuditedOwnPasswordForm,
        success_url=reverse("admin:password_change_done"),
        extra_context=admin.site.each_context(request),
    )
    request.current_app = admin.site.name
    with acting_as(request.user, AuditContext.from_request(request)):
        return view(request)


class AuditedUserAdmin(CheckedSelection, StepUpOnSave, UserAdmin):
    """Group membership is a role (reviewer, auditor): its audit events name the acting admin, as
    do creating, changing (the admin flags above all), deleting an account, setting its password
    and its Django permissions (the admin pages a staff account may use); saving the account or
    its password needs a fresh sign-in. Deactivating a user (unticking "active")
    revokes all their tokens at once."""

    actions = ["deactivate"]
    change_password_form = AuditedPasswordForm

    def changeform_view(self, request, *args, **kwargs):
        from .services.audit import AuditContext, acting_as

        with acting_as(request.user, AuditContext.from_request(request)):
            return super().changeform_view(request, *args, **kwargs)

    def user_change_password(self, request, id, form_url=""):
        from .services.audit import AuditContext, acting_as

        with acting_as(request.user, AuditContext.from_request(request)):
            return super().user_change_password(request, id, form_url)

    def save_model(self, request, obj, form, change):
        from .services.accounts import account_deactivate, account_save
        from .services.audit import AuditContext

        context = AuditContext.from_request(request)
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        if deactivating:
            obj.is_active = True  # the service records the change and revokes the tokens
        permissions = form.cleaned_data.get("user_permissions")  # the change form's; None on the add form
        account_save(user=obj, actor=request.user, context=context, permissions=permissions)  # all audited
        if deactivating:
            account_deactivate(user=obj, actor=request.user, context=context)
            obj.is_active = False

    def save_related(self, request, form, formsets, change):
        form.cleaned_data.pop("user_permissions", None)  # set (and audited) by account_save
        super().save_related(request, form, formsets, change)

    def delete_model(self, request, obj):
        from .services.accounts import account_delete
        from .services.audit import AuditContext

        account_delete(user=obj, actor=request.user, context=AuditContext.from_request(request))

    def delete_queryset(self, request, queryset):
        for user in queryset:
            self.delete_model(request, user)

    @admin.action(description="Deactivate the selected users (revokes their tokens)")
    def deactivate(self, request, queryset):
        from .services.accounts import account_deactivate
        from .services.audit import AuditContext

        context = AuditContext.from_request(request)
        revoked = sum(account_deactivate(user=user, actor=request.user, context=context) for user in queryset)
        self.message_user(request, f"{queryset.count()} user(s) deactivated; {revoked} token(s) revoked.")


class AuditedGroupAdmin(CheckedSelection, StepUpOnSave, GroupAdmin):
    """Roles are groups found by name (reviewer, auditor, privacy): creating, renaming and
    deleting one and setting its Django permissions go through audited services, naming the acting
    admin (and, on delete, the members);
    saving one needs a fresh sign-in (a group renamed 'auditor' makes its members auditors)."""

    def save_model(self, request, obj, form, change):
        from .services.accounts import role_group_save
        from .services.audit import AuditContext

        permissions = form.cleaned_data.get("permissions")
        role_group_save(
            group=obj, actor=request.user, context=AuditContext.from_request(request), permissions=permissions
        )

    def save_related(self, request, form, formsets, change):
        form.cleaned_data.pop("permissions", None)  # set (and audited) by role_group_save
        super().save_related(request, form, formsets, change)

    def delete_model(self, request, obj):
        from .services.accounts import role_group_delete
        from .services.audit import AuditContext

        role_group_delete(group=obj, actor=request.user, context=AuditContext.from_request(request))

    def delete_queryset(self, request, queryset):
        for group in queryset:
            self.delete_model(request, group)


def register_accounts_admin(site) -> None:
    site.unregister(get_user_model())
    site.register(get_user_model(), AuditedUserAdmin)
    site.unregister(Group)
    site.register(Group, AuditedGroupAdmin)
