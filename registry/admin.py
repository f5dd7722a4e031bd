"""Admin: policies and webhooks are editable by admins; the audit log is read-only."""

from django.contrib import admin, messages

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


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["seq", "timestamp", "actor_name", "action", "object_repr", "source"]
    list_filter = ["action", "source"]
    search_fields = ["object_repr", "actor_name", "model_name", "request_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(PromotionPolicy)
admin.site.register(Webhook)
admin.site.register(WebhookDelivery)


# --- MLflow servers -------------------------------------------------------------------------


@admin.register(MlflowServer)
class MlflowServerAdmin(admin.ModelAdmin):
    """Configure MLflow servers and see how their last sync went; 'Sync now' runs it at once."""

    list_display = ["name", "tracking_url", "team", "alias", "enabled", "last_status", "last_sync_at", "last_error"]
    list_filter = ["last_status", "enabled"]
    readonly_fields = ["last_sync_at", "last_status", "last_error", "last_summary"]
    actions = ["sync_now"]

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
class MlflowAliasViolationAdmin(admin.ModelAdmin):
    """Production aliases found moved in MLflow without an approval in the portal."""

    list_display = ["model_link", "alias", "found_version", "expected_version", "detected_at", "resolved_at"]
    list_filter = ["resolved_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MlflowVersionLink)
class MlflowVersionLinkAdmin(admin.ModelAdmin):
    """Alias write-back state per imported version (failures are retried by the periodic sync)."""

    list_display = ["version", "model_link", "mlflow_version", "writeback", "writeback_attempts", "writeback_error"]
    list_filter = ["writeback"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
