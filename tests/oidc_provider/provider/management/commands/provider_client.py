from django.core.management.base import BaseCommand
from oauth2_provider.models import get_application_model


class Command(BaseCommand):
    help = "Register (or update) a confidential client with RS256 ID tokens and the given redirect URIs."

    def add_arguments(self, parser):
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--secret", required=True)
        parser.add_argument("--redirect-uri", action="append", required=True)

    def handle(self, *args, client_id, secret, redirect_uri, **options):
        Application = get_application_model()
        app = Application.objects.filter(client_id=client_id).first() or Application(client_id=client_id)
        known = set(app.redirect_uris.split()) if app.redirect_uris else set()
        app.name = "portal"
        app.client_type = Application.CLIENT_CONFIDENTIAL
        app.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
        app.algorithm = Application.RS256_ALGORITHM
        app.skip_authorization = True
        app.redirect_uris = " ".join(sorted(known | set(redirect_uri)))
        app.client_secret = secret
        app.save()
