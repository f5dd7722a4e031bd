"""``manage.py create_token USERNAME --scope models:read --scope models:write``.

USERNAME is a person or a service account (``svc-<name>``, see ``create_service_account``).
The token expires after ``--expires-days`` or, by default, ``TOKEN_MAX_LIFETIME_DAYS``.
Prints only the raw token on standard output, so scripts can capture it.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from registry.choices import TokenScope
from registry.services.audit import CLI
from registry.services.tokens import token_create


class Command(BaseCommand):
    help = "Create an API token for a user or service account and print it (alone) on standard output."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            required=True,
            choices=TokenScope.values,
            help="Scope to grant; repeat for several.",
        )
        parser.add_argument("--name", default="cli", help="A label for the token (default: cli).")
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            help="Expire after this many days (default and maximum: TOKEN_MAX_LIFETIME_DAYS).",
        )

    def handle(self, *args, username, scopes, name, expires_days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        if not user.is_active:
            raise CommandError(f"User '{username}' is inactive.")
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1.")
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        try:
            _, raw = token_create(user=user, name=name, scopes=scopes, expires_at=expires_at, actor=None, context=CLI)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(raw)
