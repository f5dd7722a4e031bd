"""The outbound-request policy (mlops_portal/outbound.py) against real HTTP servers on 127.0.0.1.

The resolver is the only thing replaced, and only for made-up host names (``*.test``), to show
what happens when DNS answers differently at save time and at delivery time."""

from __future__ import annotations

import socket

import pytest
from django.core.exceptions import ValidationError

from mlops_portal import outbound
from tests.loopback import LoopbackServer, QuietHandler

REFUSED = [
    "http://127.0.0.1/",
    "http://127.0.0.1:8250/internal-admin",
    "http://localhost/",
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0x7f.1/",  # hexadecimal, short form
    "http://017700000001/",  # octal
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/",  # mapped metadata address
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://169.254.169.254/latest/meta-data/",
    "http://100.100.100.200/",  # Alibaba metadata (shared address space)
    "http://[fd00:ec2::254]/",  # AWS IPv6 metadata (unique-local)
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.0.192/",  # Oracle metadata (IETF protocol assignments)
]


@pytest.mark.parametrize("url", REFUSED)
def test_internal_addresses_are_refused_by_default(url, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(outbound.OutboundRefused):
        outbound.resolve_allowed(url)
    with pytest.raises(ValidationError):
        outbound.validate_url(url)


@pytest.mark.parametrize(
    "url", ["ftp://8.8.8.8/", "file:///etc/passwd", "gopher://8.8.8.8/", "http://user:pw@8.8.8.8/", "http:///x"]
)
def test_other_schemes_credentials_and_missing_hosts_are_refused(url):
    with pytest.raises(ValidationError):
        outbound.validate_url(url)


@pytest.mark.parametrize("url", ["http://8.8.8.8/", "https://1.1.1.1:8443/hook", "http://[2606:4700:4700::1111]/"])
def test_public_addresses_are_allowed(url, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    outbound.validate_url(url)
    assert outbound.resolve_allowed(url)[3] is not None


def test_the_allow_list_takes_host_names_addresses_and_networks(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost", "10.0.0.0/8", "::1"]
    outbound.validate_url("http://localhost:5000/")
    outbound.validate_url("http://10.20.30.40/")
    outbound.validate_url("http://[::1]:8080/")
    with pytest.raises(ValidationError):
        outbound.validate_url("http://192.168.0.1/")
    with pytest.raises(ValidationError):
        outbound.validate_url("http://127.0.0.1/")  # "localhost" allows the name, not the address


def test_a_name_that_does_not_resolve_yet_is_accepted_at_save_time_and_refused_at_delivery():
    outbound.validate_url("https://hooks.invalid/x")
    with pytest.raises(outbound.OutboundError) as info:
        outbound.request("POST", "https://hooks.invalid/x", body=b"{}")
    assert info.value.error_class == "dns_error"


class Server(LoopbackServer):
    """A real HTTP server on 127.0.0.1 that records requests and answers a fixed status."""

    def __init__(self, status: int = 200, location: str = "", tls=None):
        self.requests: list[dict] = []
        server = self

        class Handler(QuietHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length", 0) or 0)
                server.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length)}
                )
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"internal secret: hunter2")

            do_GET = do_POST = _answer  # noqa: N815 (http.server API)

        super().__init__(Handler, "/internal-admin", tls=tls)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_a_request_to_loopback_is_refused_before_anything_is_sent(server, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(outbound.OutboundRefused) as info:
        outbound.request("POST", server.url, body=b"{}")
    assert info.value.error_class == "refused"
    assert server.requests == []


def test_an_allow_listed_destination_is_reached(server, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    answer = outbound.request("POST", server.url + "?a=1", body=b'{"x":1}', headers={"X-Test": "yes"})
    assert answer.status == 200 and answer.ok
    assert answer.content == b""  # not read unless the caller needs it
    assert server.requests[0]["path"] == "/internal-admin?a=1"
    assert server.requests[0]["body"] == b'{"x":1}'
    assert server.requests[0]["headers"]["X-Test"] == "yes"


def test_redirects_are_never_followed(server, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    redirector = Server(status=302, location=server.url)
    try:
        answer = outbound.request("POST", redirector.url, body=b"{}")
    finally:
        redirector.close()
    assert answer.status == 302
    assert outbound.error_class_for_status(answer.status) == "redirect"
    assert server.requests == []


@pytest.fixture
def fake_dns(monkeypatch):
    """Answers for made-up ``*.test`` names; every other lookup goes to the real resolver."""
    answers: dict[str, list[str]] = {}
    calls: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".test"):
            calls.append(host)
            address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, calls


def test_a_name_rebound_to_loopback_after_the_save_time_check_is_refused_at_delivery(server, fake_dns, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    answers, _ = fake_dns
    url = f"http://rebind.test:{server.port}/internal-admin"
    answers["rebind.test"] = ["93.184.216.34", "127.0.0.1"]
    outbound.validate_url(url)  # public at save time
    with pytest.raises(outbound.OutboundRefused):
        outbound.request("POST", url, body=b"{}")  # loopback at delivery time
    assert server.requests == []


def test_the_connection_goes_to_the_checked_address_with_the_original_host_name(server, fake_dns, settings):
    """One lookup per request, and the socket is opened to that address: the HTTP library never
    resolves the name again (it could get a different answer)."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.0/8"]
    answers, calls = fake_dns
    answers["pinned.test"] = ["127.0.0.1", "10.9.9.9"]  # a second lookup would get a refused address
    answer = outbound.request("GET", f"http://pinned.test:{server.port}/x", read_body=True)
    assert answer.status == 200
    assert calls == ["pinned.test"]
    assert server.requests[0]["headers"]["Host"] == f"pinned.test:{server.port}"


def test_a_closed_port_is_a_connection_error_class(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(outbound.OutboundError) as info:
        outbound.request("POST", f"http://127.0.0.1:{port}/", body=b"{}")
    assert info.value.error_class == "connection_error"


def test_https_is_verified_against_the_host_name_not_the_pinned_address(tmp_path, fake_dns, settings):
    """The socket goes to the checked address, while TLS still checks the certificate of the
    name: a self-signed certificate is refused (tls_error), nothing is silently trusted."""
    import ssl
    import subprocess

    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.0/8"]
    answers, _ = fake_dns
    answers["tls.test"] = ["127.0.0.1"]
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=tls.test"]
        + ["-addext", "subjectAltName=DNS:tls.test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Server(tls=context)
    try:
        with pytest.raises(outbound.OutboundError) as info:
            outbound.request("GET", f"https://tls.test:{server.port}/")
    finally:
        server.close()
    assert info.value.error_class == "tls_error"
    assert "CERTIFICATE_VERIFY_FAILED" in repr(info.value.__cause__)
