"""``manage.py sync_mlflow [--server NAME]``: import from MLflow with a progress bar."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from registry.models import MlflowServer
from registry.services.audit import CLI
from registry.services.mlflow_sync import mlflow_sync


class Command(BaseCommand):
    help = "Import registered models and versions from the configured MLflow servers, and write back aliases."

    def add_arguments(self, parser):
        parser.add_argument("--server", help="only this server (by name)")

    def handle(self, *args, **options):
        servers = MlflowServer.objects.filter(enabled=True).select_related("team", "default_owner")
        if options["server"]:
            servers = servers.filter(name=options["server"])
            if not servers.exists():
                raise CommandError(f"No enabled MLflow server named '{options['server']}'.")
        failed = False
        for server in servers:
            # The bar shows only on a sync that takes a while, and is cleared for the summary or the error.
            with tqdm(desc=server.name, unit="model", file=self.stderr, delay=1, leave=False) as bar:
                summary = mlflow_sync(server=server, context=CLI, progress=bar)
            if summary.changed or not summary.errors:  # a server that could not be read reports its error only
                self.stdout.write(
                    f"{server.name}: {summary.models_created} models and {summary.versions_created} versions "
                    f"imported, {summary.models_updated} updated, {summary.aliases_written} aliases written, "
                    f"{summary.violations_opened} unapproved alias changes"
                )
            for error in summary.errors:
                failed = True
                self.stderr.write(self.style.ERROR(f"{server.name}: {error}"))
        if failed:
            raise CommandError("Some servers could not be synced; see the errors above (retried on the next run).")
