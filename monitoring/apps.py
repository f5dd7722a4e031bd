from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from .models import HealthStatus

        post_save.connect(_health_saved, sender=HealthStatus, dispatch_uid="inventory_health_saved")
        post_delete.connect(_health_deleted, sender=HealthStatus, dispatch_uid="inventory_health_deleted")


def _health_saved(sender, instance, created, using, **kwargs) -> None:
    """Cached inventory pages show each model's health status, API details also its reasons:
    a changed status makes both stale, a recompute to the same status (every window) only details."""
    from registry.cache import health_details_changed, inventory_changed

    if created or getattr(instance, "loaded_status", None) != instance.status:
        inventory_changed(using)
        instance.loaded_status = instance.status
    else:
        health_details_changed(using)


def _health_deleted(sender, using, **kwargs) -> None:
    from registry.cache import inventory_changed

    inventory_changed(using)
