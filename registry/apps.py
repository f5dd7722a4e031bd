from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from mlops_portal import health  # noqa: F401  (registers the worker heartbeat task)

        from . import access_signals, signals  # noqa: F401  (login/logout auditing; sign-in time, lockouts)
        from .cache import connect_receivers

        connect_receivers()  # invalidation of cached inventory HTML
