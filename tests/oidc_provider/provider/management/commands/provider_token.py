import json
import time
import uuid

from django.core.management.base import BaseCommand
from jwcrypto import jwk, jwt
from oauth2_provider.settings import oauth2_settings


class Command(BaseCommand):
    help = "Print an ID token signed with the provider's own key (for expiry tests)."

    def add_arguments(self, parser):
        parser.add_argument("--issuer", required=True)
        parser.add_argument("--audience", required=True)
        parser.add_argument("--subject", required=True)
        parser.add_argument("--nonce", default="")
        parser.add_argument("--expired", action="store_true")

    def handle(self, *args, issuer, audience, subject, nonce, expired, **options):
        key = jwk.JWK.from_pem(oauth2_settings.OIDC_RSA_PRIVATE_KEY.encode("utf8"))
        now = int(time.time())
        exp = now - 60 if expired else now + 300
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now - 120,
            "exp": exp,
            "jti": str(uuid.uuid4()),
        }
        if nonce:
            claims["nonce"] = nonce
        token = jwt.JWT(header=json.dumps({"alg": "RS256", "kid": key.thumbprint()}), claims=json.dumps(claims))
        token.make_signed_token(key)
        self.stdout.write(token.serialize())
