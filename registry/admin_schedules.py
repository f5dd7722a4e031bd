"""Admin page of the beat schedule (django-celery-beat's periodic tasks): every change, the list
actions that switch tasks on and off included, goes through the audited services of
``registry.services.schedules``."""

from __future__ import annotations

from django.contrib import admin
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask


def _context(request):
    from .services.audit import AuditContext

    return AuditContext.from_request(request)


class AuditedPeriodicTaskAdmin(PeriodicTaskAdmin):
    def save_model(self, request, obj, form, change):
        from .services.schedules import schedule_save

        schedule_save(task=obj, actor=request.user, context=_context(request))

    def delete_model(self, request, obj):
        from .services.schedules import schedule_delete

        schedule_delete(task=obj, actor=request.user, context=_context(request))

    def delete_queryset(self, request, queryset):
        for task in queryset:
            self.delete_model(request, task)

    def _switch(self, request, queryset, enabled: bool | None, done: str) -> None:
        from .services.schedules import schedules_enable

        count = schedules_enable(tasks=queryset, enabled=enabled, actor=request.user, context=_context(request))
        self.message_user(request, f"{count} task(s) {done}.")

    @admin.action(description="Enable selected tasks")
    def enable_tasks(self, request, queryset):
        self._switch(request, queryset, True, "enabled")

    @admin.action(description="Disable selected tasks")
    def disable_tasks(self, request, queryset):
        self._switch(request, queryset, False, "disabled")

    @admin.action(description="Toggle activity of selected tasks")
    def toggle_tasks(self, request, queryset):
        self._switch(request, queryset, None, "toggled")


def register_schedule_admin(site) -> None:
    site.unregister(PeriodicTask)
    site.register(PeriodicTask, AuditedPeriodicTaskAdmin)
