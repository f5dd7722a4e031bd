"""``manage.py create_service_account NAME --team SLUG``: a team-owned account for pipelines
(``svc-NAME``, no password). Prints its username; then ``create_token svc-NAME --scope …``."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from registry.models import Team
from registry.services.accounts import service_account_create
from registry.services.audit import CLI


class Command(BaseCommand):
    help = "Create a service account owned by a team and print its username."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The account is named svc-<name>.")
        parser.add_argument("--team", required=True, help="Slug of the owning team.")
        parser.add_argument("--description", default="")

    def handle(self, *args, name, team, description, **options):
        owner = Team.objects.filter(slug=team).first()
        if owner is None:
            raise CommandError(f"No team with slug '{team}'.")
        try:
            account = service_account_create(name=name, team=owner, description=description, actor=None, context=CLI)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(account.user.get_username())
