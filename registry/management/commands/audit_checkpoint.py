"""``manage.py audit_checkpoint``: record the audit chain's head (seq, hash, time) outside the
table, in ``AUDIT_CHECKPOINT_FILE`` and/or ``AUDIT_CHECKPOINT_URL`` (or the ``--file`` /
``--url`` given). The beat schedule does the same periodically. Exit status 1 when the URL
did not accept the checkpoint (the file was still written)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from registry.services.audit import checkpoint_write


class Command(BaseCommand):
    help = "Write a checkpoint of the audit chain's head to the configured file and/or URL."

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, help="Append to this file instead of AUDIT_CHECKPOINT_FILE.")
        parser.add_argument("--url", help="POST to this URL instead of AUDIT_CHECKPOINT_URL.")

    def handle(self, *args, file: Path | None, url: str | None, **options):
        written = checkpoint_write(file=file, url=url)
        if written.file is None and written.url_status is None and not written.url_error:
            raise CommandError("No checkpoint sink: set AUDIT_CHECKPOINT_FILE or AUDIT_CHECKPOINT_URL, or pass --file.")
        cp = written.checkpoint
        where = [str(written.file)] if written.file else []
        if written.url_status is not None and not written.url_error:
            where.append(f"URL (HTTP {written.url_status})")
        if where:
            self.stdout.write(f"Checkpoint seq {cp.seq}, hash {cp.head_hash}, at {cp.time}: {', '.join(where)}")
        if written.url_error:
            self.stderr.write(self.style.ERROR(f"Checkpoint URL refused or unreachable: {written.url_error}"))
            raise SystemExit(1)
