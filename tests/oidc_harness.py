"""The real OpenID Connect provider the single sign-on tests talk to (tests/oidc_provider, a
django-oauth-toolkit project), started as its own process on 127.0.0.1 with a fresh SQLite
database and RSA key, and the steps a browser would take through it.

``oidc_provider`` is a session fixture; ``sso_settings`` points the portal at it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
import requests

from tests.processes import serving

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "mlops-portal"
CLIENT_SECRET = "portal-client-secret-for-tests"
TEST_CALLBACK = "http://testserver/oidc/callback/"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Provider:
    url: str
    env: dict

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/o/.well-known/openid-configuration"

    @property
    def issuer(self) -> str:
        return requests.get(self.discovery_url, timeout=10).json()["issuer"]

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(PROVIDER_DIR / "manage.py"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise AssertionError(f"provider {args[0]} failed: {result.stderr[-2000:]}")
        return result.stdout

    def user(self, username: str, password: str, groups: list[str]) -> None:
        """Create or update a person at the provider with exactly these groups."""
        self.manage("provider_user", username, "--password", password, *[a for g in groups for a in ("--group", g)])

    def allow_redirect(self, uri: str) -> None:
        self.manage("provider_client", "--client-id", CLIENT_ID, "--secret", CLIENT_SECRET, "--redirect-uri", uri)


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    home = tmp_path_factory.mktemp("oidc-provider")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = home / "key.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "PYTHONPATH"))} | {
        "PROVIDER_DB": str(home / "db.sqlite3"),
        "PROVIDER_RSA_KEY_FILE": str(key_file),
    }
    port = _free_port()
    provider = Provider(url=f"http://127.0.0.1:{port}", env=env)
    provider.manage("migrate", "--noinput", "-v", "0")
    provider.allow_redirect(TEST_CALLBACK)
    with serving(
        [sys.executable, str(PROVIDER_DIR / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"],
        log_path=home / "server.log",
        ready_url=provider.discovery_url,
        ready_seconds=60,
        stop_seconds=10,
        env=env,
    ):
        yield provider


@pytest.fixture
def sso_settings(settings, oidc_provider):
    """The portal configured for the provider through the discovery document only."""
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_DISCOVERY_URL = oidc_provider.discovery_url
    settings.OIDC_RP_SCOPES = "openid profile email"
    return settings


def provider_sign_in(session: requests.Session, authorize_url: str, username: str, password: str) -> str:
    """Follow the provider's login page as a browser would; returns the redirect back to the portal."""
    response = session.get(authorize_url, allow_redirects=False)
    if response.status_code == 302 and "/accounts/login/" in response.headers["Location"]:
        login_url = urljoin(authorize_url, response.headers["Location"])
        session.get(login_url)
        response = session.post(
            login_url,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
                "next": parse_qs(urlparse(login_url).query)["next"][0],
            },
            allow_redirects=False,
        )
        assert response.status_code == 302, f"provider login failed for {username}"
        response = session.get(urljoin(login_url, response.headers["Location"]), allow_redirects=False)
    while response.status_code == 302 and response.headers["Location"].startswith(("/o/", "/accounts/")):
        response = session.get(urljoin(authorize_url, response.headers["Location"]), allow_redirects=False)
    assert response.status_code == 302, response.text[:500]
    return response.headers["Location"]


def sso_login(client, username: str, password: str, *, session: requests.Session | None = None, step_up=False):
    """Sign the Django test ``client`` in through the provider; returns the portal's last response."""
    query = {"next": "/models/"} | ({"step_up": "1"} if step_up else {})
    start = client.get("/oidc/authenticate/", query)
    assert start.status_code == 302, start.content[:300]
    back = provider_sign_in(session or requests.Session(), start["Location"], username, password)
    parsed = urlparse(back)
    assert f"{parsed.scheme}://{parsed.netloc}{parsed.path}" == TEST_CALLBACK
    return client.get(f"{parsed.path}?{parsed.query}")
