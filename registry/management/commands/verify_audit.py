"""``manage.py verify_audit``: recompute the audit chain and report the first broken link.

Streams events in seq order in keyset chunks (constant memory) and recomputes each
hash from the genesis hash. Prints ``OK`` with the count and head hash, or the first
broken link with its sequence number and exits with status 1.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from registry.models import AuditEvent
from registry.services.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; exit code 1 at the first broken link."

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=20_000, help="Rows fetched per query.")
        parser.add_argument("--no-progress", action="store_true", help="Do not show a progress bar.")

    def handle(self, *args, chunk_size: int, no_progress: bool, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        total = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        bar = tqdm(
            total=total,
            unit="ev",
            unit_scale=True,
            desc="verify_audit",
            disable=no_progress or options.get("verbosity", 1) == 0,
            file=self.stderr._out,
        )
        with bar:
            result = audit_verify(chunk_size=chunk_size, progress=bar.update)
        if result.ok:
            self.stdout.write(self.style.SUCCESS(result.message))
            return
        self.stderr.write(self.style.ERROR(result.message))
        self.stderr.write(f"Last good event: seq {result.head_seq}, hash {result.head_hash}")
        raise SystemExit(1)
