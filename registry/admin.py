"""Admin: policies and webhooks are editable by admins; the audit log is read-only."""

from django.contrib import admin

from .models import AuditEvent, PromotionPolicy, Team, Webhook, WebhookDelivery


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
