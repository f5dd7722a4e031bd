"""Admin: policies and webhooks are editable by admins; the audit log is read-only. Access:
the group mapping, service accounts, tokens (revoke anyone's) and locked sign-ins (unlock),
every change through an audited service."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import Group
from django.utils.html import format_html

from .admin_actions import CheckedSelection
from .admin_readonly import KeptReadOnlyAdmin, ReadOnlyAdmin, UtcDateFieldListFilter
from .choices import WebhookEvent
from .models import (
    AuditEvent,
    MlflowAliasViolation,
    MlflowServer,
    MlflowVersionLink,
    PromotionPolicy,
    Team,
    Webhook,
    WebhookDelivery,
)
from .services.policies import POLICY_FIELDS
from .stepup import StepUpOnSave


@admin.register(Team)
class TeamAdmin(CheckedSelection, admin.ModelAdmin):
    """Teams and their members (who see the team's models): every change through an audited service."""

    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]

    def save_model(self, request, obj, form, change):
        from .services.accounts import team_save
        from .services.audit import AuditContext

        members = form.cleaned_data.get("members", obj.members.all() if obj.pk else [])
        saved = team_save(team=obj, members=members, actor=request.user, context=AuditContext.from_request(request))
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        for formset in formsets:  # the members were set by the service
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        from .services.accounts import team_delete
        from .services.audit import AuditContext

        team_delete(team=obj, actor=request.user, context=AuditContext.from_request(request))

    def delete_queryset(self, request, queryset):
        for team in queryset:
            self.delete_model(request, team)


@admin.register(AuditEvent)
class AuditEventAdmin(KeptReadOnlyAdmin):
    """Read-only: the database refuses UPDATE/DELETE anyway; the auditor UI is /audit/."""

    list_display = ["seq", "timestamp", "actor_name", "action", "object_repr", "model_name", "source"]
    list_filter = ["source"]
    search_fields = ["=action", "=actor_name", "=model_name", "=request_id"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    show_full_result_count = False  # no extra COUNT(*) over millions of rows
    list_select_related = False


# --- promotion policies and webhooks: every change goes through an audited service ----------


class PromotionPolicyForm(forms.ModelForm):
    class Meta:
        model = PromotionPolicy
        fields = POLICY_FIELDS

    def clean_approver_group(self):

        name = self.cleaned_data["approver_group"]
        if not Group.objects.filter(name=name).exists():
            raise forms.ValidationError(f"There is no group named '{name}'.")
        return name


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(CheckedSelection, StepUpOnSave, admin.ModelAdmin):
    """One policy per risk tier. Saving (after a fresh sign-in) calls ``policy_update`` (audited
    as ``policy.updated``); requests already open keep the snapshot they were opened with."""

    form = PromotionPolicyForm
    list_display = ["risk_tier", *POLICY_FIELDS, "updated_by", "updated_at"]
    readonly_fields = ["risk_tier", "updated_by", "updated_at"]

    def has_add_permission(self, request):
        return False  # the three tiers exist from the migration

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        from .services.audit import AuditContext
        from .services.policies import policy_update

        changes = {f: form.cleaned_data[f] for f in form.changed_data if f in POLICY_FIELDS}
        saved = policy_update(
            policy=obj, actor=request.user, changes=changes, context=AuditContext.from_request(request)
        )
        obj.updated_by, obj.updated_at = saved.updated_by, saved.updated_at


class WebhookForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked means every event.",
    )
    secret = forms.CharField(
        required=False, max_length=128, help_text="Leave empty to generate one (new webhooks) or keep the current one."
    )

    class Meta:
        model = Webhook
        fields = ["name", "url", "model", "events", "secret", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["secret"] = ""

    def clean_url(self):
        from mlops_portal.outbound import validate_url

        url = self.cleaned_data["url"]
        validate_url(url)  # the outbound policy, as the service checks it (a field error, not a 500)
        return url

    def clean_secret(self):
        secret = self.cleaned_data.get("secret") or ""
        if not secret and self.instance.pk:
            return self.instance.secret
        return secret or "pending-generation"


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["created_at", "event", "status", "attempts", "last_status_code", "last_error_class"]
    readonly_fields = fields
    ordering = ["-created_at"]
    show_change_link = True


@admin.register(Webhook)
class WebhookAdmin(CheckedSelection, admin.ModelAdmin):
    """Global or per-model webhooks. Create/change/delete go through audited services."""

    form = WebhookForm
    list_display = ["name", "url", "model", "events", "is_active", "created_by", "created_at"]
    list_filter = ["is_active"]
    readonly_fields = ["created_by", "created_at"]
    inlines = [WebhookDeliveryInline]

    def save_model(self, request, obj, form, change):
        from .services.audit import AuditContext
        from .services.webhooks import WEBHOOK_FIELDS, webhook_create, webhook_update

        context = AuditContext.from_request(request)
        data = form.cleaned_data
        if change:
            changes = {f: data[f] for f in form.changed_data if f in WEBHOOK_FIELDS}
            if "secret" in form.changed_data and data["secret"] != Webhook.objects.get(pk=obj.pk).secret:
                changes["secret"] = data["secret"]
            saved = webhook_update(webhook=obj, actor=request.user, changes=changes, context=context)
        else:
            secret = data["secret"] if data["secret"] != "pending-generation" else ""
            saved = webhook_create(
                name=data["name"],
                url=data["url"],
                model=data["model"],
                events=list(data["events"]),
                secret=secret,
                is_active=data["is_active"],
                actor=request.user,
                context=context,
            )
        obj.pk, obj.secret, obj.created_by, obj.created_at = saved.pk, saved.secret, saved.created_by, saved.created_at

    def delete_model(self, request, obj):
        from .services.audit import AuditContext
        from .services.webhooks import webhook_delete

        webhook_delete(webhook=obj, actor=request.user, context=AuditContext.from_request(request))

    def delete_queryset(self, request, queryset):
        for hook in queryset:
            self.delete_model(request, hook)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """Every delivery and each of its attempts (status code, error, next retry). Read-only."""

    list_display = ["created_at", "webhook", "event", "status", "attempts", "last_status_code", "delivered_at"]
    list_filter = ["status", "event"]
    readonly_fields = [
        "webhook",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "last_error_class",
        "attempts_table",
        "payload",
        "created_at",
        "delivered_at",
    ]
    exclude = ["attempt_log"]
    actions = ["redeliver"]

    @admin.action(description="Send the selected failed deliveries again")
    def redeliver(self, request, queryset):
        from django.core.exceptions import ValidationError

        from .services.audit import AuditContext
        from .services.webhooks import webhook_redeliver

        context = AuditContext.from_request(request)
        sent = skipped = 0
        for delivery in queryset:
            try:
                webhook_redeliver(delivery=delivery, actor=request.user, context=context)
                sent += 1
            except ValidationError:
                skipped += 1
        self.message_user(request, f"{sent} delivery(ies) queued again; {skipped} skipped (not failed).")

    @admin.display(description="Attempt log")
    def attempts_table(self, obj):
        from django.utils.html import format_html_join

        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    a.get("attempt"),
                    a.get("at"),
                    a.get("outcome"),
                    a.get("status_code") or "—",
                    a.get("duration_ms"),
                    a.get("error") or "",
                    f"retry in {a['next_retry_in_s']} s" if a.get("next_retry_in_s") else "",
                )
                for a in (obj.attempt_log or [])
            ),
        )
        return format_html(
            "<table><tr><th>#</th><th>At</th><th>Outcome</th><th>HTTP</th><th>Took</th><th>Error</th>"
            "<th>Next</th></tr>{}</table>",
            rows,
        )


# --- MLflow servers -------------------------------------------------------------------------


class MlflowServerForm(forms.ModelForm):
    class Meta:
        model = MlflowServer
        fields = ["name", "tracking_url", "token", "team", "default_owner", "alias", "search_filter", "enabled"]

    def clean_tracking_url(self):
        from mlops_portal.outbound import validate_url

        url = self.cleaned_data["tracking_url"]
        validate_url(url)  # private or local servers must be in OUTBOUND_ALLOWED_HOSTS; each sync checks again
        return url


@admin.register(MlflowServer)
class MlflowServerAdmin(CheckedSelection, admin.ModelAdmin):
    """Configure MLflow servers (audited, never the token) and see how their last sync went;
    'Sync now' runs it at once."""

    form = MlflowServerForm

    list_display = ["name", "tracking_url", "team", "alias", "enabled", "last_status", "last_sync_at", "last_error"]
    list_filter = ["last_status", "enabled"]
    readonly_fields = ["last_sync_at", "last_status", "last_error", "last_summary"]
    actions = ["sync_now"]

    def save_model(self, request, obj, form, change):
        from .services.audit import AuditContext
        from .services.mlflow_servers import mlflow_server_save

        mlflow_server_save(server=obj, actor=request.user, context=AuditContext.from_request(request))

    def delete_model(self, request, obj):
        from .services.audit import AuditContext
        from .services.mlflow_servers import mlflow_server_delete

        mlflow_server_delete(server=obj, actor=request.user, context=AuditContext.from_request(request))

    def delete_queryset(self, request, queryset):
        for server in queryset:
            self.delete_model(request, server)

    @admin.action(description="Sync now (import, write back aliases, check aliases)")
    def sync_now(self, request, queryset):
        from .services.audit import AuditContext
        from .services.mlflow_sync import mlflow_sync

        context = AuditContext.from_request(request)
        for server in queryset:
            summary = mlflow_sync(server=server, context=context)
            level = messages.ERROR if summary.errors else messages.SUCCESS
            text = "; ".join(summary.errors) or (
                f"{summary.models_created} models, {summary.versions_created} versions imported; "
                f"{summary.aliases_written} aliases written; {summary.violations_opened} unapproved alias changes"
            )
            self.message_user(request, f"{server.name}: {text}", level)


@admin.register(MlflowAliasViolation)
class MlflowAliasViolationAdmin(ReadOnlyAdmin):
    """Production aliases found moved in MLflow without an approval in the portal."""

    list_display = ["model_link", "alias", "found_version", "expected_version", "detected_at", "resolved_at"]
    list_filter = [("resolved_at", UtcDateFieldListFilter)]


@admin.register(MlflowVersionLink)
class MlflowVersionLinkAdmin(ReadOnlyAdmin):
    """Alias write-back state per imported version (failures are retried by the periodic sync)."""

    list_display = ["version", "model_link", "mlflow_version", "writeback", "writeback_attempts", "writeback_error"]
    list_filter = ["writeback"]


from .admin_access import register_access_admin  # noqa: E402
from .admin_accounts import register_accounts_admin  # noqa: E402
from .admin_schedules import register_schedule_admin  # noqa: E402

register_accounts_admin(admin.site)
register_access_admin(admin.site)
register_schedule_admin(admin.site)
