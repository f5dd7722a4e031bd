from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (login/logout auditing only)
        from .cache import connect_receivers

        connect_receivers()  # invalidation of cached inventory HTML
