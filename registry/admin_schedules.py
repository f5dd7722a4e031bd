"""Admin page of the beat schedule (django-celery-beat's periodic tasks and the crontab, interval,
solar and clocked schedules they run on): every change, the list actions that switch tasks on
and off and the one that runs them at once included, goes through the audited services of
``registry.services.schedules``. The list actions need the permission to change the schedule
(a staff account that may only read it neither runs nor switches its tasks)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django_celery_beat.admin import (
    ClockedScheduleAdmin,
    CrontabScheduleAdmin,
    IntervalScheduleAdmin,
    PeriodicTaskAdmin,
    SolarScheduleAdmin,
)
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from .admin_actions import CheckedSelection
from .admin_readonly import UtcDateFieldListFilter


def _context(request):
    from .services.audit import AuditContext

    return AuditContext.from_request(request)


class AuditedPeriodicTaskAdmin(CheckedSelection, PeriodicTaskAdmin):
    list_filter = [
        "enabled",
        "one_off",
        "task",
        *((name, UtcDateFieldListFilter) for name in ("start_time", "last_run_at")),
    ]

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

    @admin.action(description="Enable selected tasks", permissions=["change"])
    def enable_tasks(self, request, queryset):
        self._switch(request, queryset, True, "enabled")

    @admin.action(description="Disable selected tasks", permissions=["change"])
    def disable_tasks(self, request, queryset):
        self._switch(request, queryset, False, "disabled")

    @admin.action(description="Toggle activity of selected tasks", permissions=["change"])
    def toggle_tasks(self, request, queryset):
        self._switch(request, queryset, None, "toggled")

    @admin.action(description="Run selected tasks", permissions=["change"])
    def run_tasks(self, request, queryset):
        from .services.schedules import schedules_run

        try:
            count = schedules_run(tasks=queryset, actor=request.user, context=_context(request))
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return
        self.message_user(request, f"{count} task(s) sent to the workers.")


class AuditedTimingAdmin(CheckedSelection):
    """A crontab, interval, solar or clocked schedule: a change is audited on every task that runs
    on it, a delete on every task it takes with it (``schedule_timing_save`` / ``_delete``)."""

    def save_model(self, request, obj, form, change):
        from .services.schedules import schedule_timing_save

        schedule_timing_save(timing=obj, actor=request.user, context=_context(request))

    def delete_model(self, request, obj):
        from .services.schedules import schedule_timing_delete

        schedule_timing_delete(timing=obj, actor=request.user, context=_context(request))

    def delete_queryset(self, request, queryset):
        for timing in queryset:
            self.delete_model(request, timing)


TIMING_ADMINS = (
    (CrontabSchedule, CrontabScheduleAdmin),
    (IntervalSchedule, IntervalScheduleAdmin),
    (SolarSchedule, SolarScheduleAdmin),
    (ClockedSchedule, ClockedScheduleAdmin),
)


def register_schedule_admin(site) -> None:
    site.unregister(PeriodicTask)
    site.register(PeriodicTask, AuditedPeriodicTaskAdmin)
    for model, base in TIMING_ADMINS:
        site.unregister(model)
        site.register(model, type(f"Audited{base.__name__}", (AuditedTimingAdmin, base), {}))
