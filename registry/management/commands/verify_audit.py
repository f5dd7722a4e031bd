"""``manage.py verify_audit``: recompute the audit chain and report the first broken link.

Streams events in seq order in keyset chunks (constant memory) and recomputes each
hash from the genesis hash. Then compares the chain with the last checkpoint (the head
recorded outside the table by ``manage.py audit_checkpoint`` and the beat schedule): from
``--checkpoint FILE``, else from ``AUDIT_CHECKPOINT_FILE`` when that file exists. A chain
shorter than the checkpoint, or with another hash at its seq, is a failure: a wiped or
rebuilt log no longer verifies as "OK". Prints ``OK`` with the count and head hash, or the
first problem, and exits with status 1.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from registry.models import AuditEvent
from registry.services.audit import CheckpointError, audit_verify, checkpoint_last
from registry.services.audit.checkpoint import checkpoint_file_path


class Command(BaseCommand):
    help = "Verify the audit log's hash chain (and its last checkpoint); exit code 1 at the first problem."

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=20_000, help="Rows fetched per query.")
        parser.add_argument("--no-progress", action="store_true", help="Do not show a progress bar.")
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--checkpoint", type=Path, help="Compare with the last checkpoint in FILE (default: AUDIT_CHECKPOINT_FILE)."
        )
        group.add_argument("--no-checkpoint", action="store_true", help="Only check the chain itself.")

    def _checkpoint(self, path: Path | None, skip: bool):
        if skip:
            return None
        if path is None:
            path = checkpoint_file_path()
            if path is None or not path.exists():
                self.stderr.write(f"No checkpoint file ({path or 'AUDIT_CHECKPOINT_FILE is empty'}): chain only.")
                return None
        try:
            return checkpoint_last(path)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from exc

    def handle(self, *args, chunk_size: int, no_progress: bool, checkpoint: Path | None, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        anchor = self._checkpoint(checkpoint, options["no_checkpoint"])
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
            result = audit_verify(chunk_size=chunk_size, progress=bar.update, checkpoint=anchor)
        if result.ok:
            self.stdout.write(self.style.SUCCESS(result.message))
            return
        self.stderr.write(self.style.ERROR(result.message))
        self.stderr.write(f"Last good event: seq {result.head_seq}, hash {result.head_hash}")
        raise SystemExit(1)
