"""The one way the portal makes an HTTP request to a URL that a user or admin typed in:
webhooks, retrain triggers, MLflow servers and the audit checkpoint sink.

Policy (``docs/security.md``, "Outbound requests"):

- only ``http`` and ``https`` URLs, without user:password;
- the host is resolved, and every address it resolves to must be public: loopback, private,
  shared (CGNAT), link-local (cloud metadata ``169.254.169.254``), unique-local IPv6,
  multicast, reserved and unspecified addresses are refused, as are IPv6 forms that embed
  such an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64). Numeric hosts (``2130706433``,
  ``0x7f.1``, ``0177.0.0.1``) are decoded by the resolver, so they meet the same check;
- ``OUTBOUND_ALLOWED_HOSTS`` (admin setting) lists host names and CIDRs that are let through
  anyway, e.g. an MLflow server on the private network;
- the connection goes to the address that was checked (pinned; TLS still verifies the
  certificate against the host name), so a DNS answer that changes after the check
  (rebinding) cannot redirect the request;
- redirects are never followed: a 3xx is the answer, recorded by its status code;
- callers store the status code and :attr:`OutboundError.error_class`, never the body.

:func:`validate_url` is the save-time check (webhook create/update, ``retrain_url``);
:func:`request` checks again right before it connects.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

USER_AGENT = "MLOps-Portal/1"
DEFAULT_TIMEOUT = 10.0
MAX_BODY_BYTES = 16 * 1024 * 1024  # callers that parse the answer (MLflow) read at most this much

# Named for the docs; all of them are also refused by the address-class checks below.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Special-purpose ranges that not every Python version counts as private.
SPECIAL_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.0.0/24", "100.64.0.0/10", "198.18.0.0/15", "2001:db8::/32")
)


class OutboundError(Exception):
    """The request was refused by the policy or failed; ``error_class`` is what callers store."""

    def __init__(self, error_class: str, message: str):
        super().__init__(message)
        self.error_class = error_class


class OutboundRefused(OutboundError):
    """The destination is not allowed (policy)."""

    def __init__(self, message: str):
        super().__init__("refused", message)


@dataclass(frozen=True)
class OutboundResponse:
    """Status, headers and (bounded) body of an answer. Callers must not store ``content``."""

    status: int
    headers: dict[str, str]
    content: bytes = field(repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.content) if self.content else {}


# ----------------------------------------------------------------------------- policy


def _allow_list() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    names: set[str] = set()
    networks = []
    for entry in getattr(settings, "OUTBOUND_ALLOWED_HOSTS", []) or []:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return names, networks


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refused(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be contacted (without an allow-list entry), or None if it is public."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = address_refused(embedded)
        return f"{reason} (embedded in {ip})" if reason else None
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if any(ip in net for net in SPECIAL_NETWORKS):
        return "a special-purpose address"
    for label, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("site-local", getattr(ip, "is_site_local", False)),
    ):
        if flag:
            return f"a {label} address"
    if not ip.is_global:
        return "not a public address"
    return None


def _parse(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"Not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused("Only http:// and https:// URLs are allowed.")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("Credentials in the URL are not allowed.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise OutboundRefused("The URL has no host.")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError("dns_error", f"Could not resolve {host}: {exc}") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


def resolve_allowed(url: str) -> tuple[str, str, int, IPAddress]:
    """``(scheme, host, port, address)`` to connect to, or :class:`OutboundError`.

    Every resolved address must pass (a host with one private answer among public ones is
    refused: the client could pick either); the first one is returned to be pinned."""
    scheme, host, port = _parse(url)
    names, networks = _allow_list()
    addresses = _resolve(host, port)
    if not addresses:
        raise OutboundError("dns_error", f"{host} has no address.")
    if host.lower() in names:
        return scheme, host, port, addresses[0]
    for ip in addresses:
        if any(ip in net for net in networks):
            continue
        reason = address_refused(ip)
        if reason:
            raise OutboundRefused(
                f"{host} resolves to {ip}, {reason}; an admin can allow it in OUTBOUND_ALLOWED_HOSTS."
            )
    return scheme, host, port, addresses[0]


def validate_url(url: str) -> None:
    """Save-time check, as a Django validator (``ValidationError``).

    A host that does not resolve right now is accepted (it may be created later); it meets the
    full check at delivery time."""
    try:
        resolve_allowed(url)
    except OutboundRefused as exc:
        raise ValidationError(str(exc), code="outbound_refused") from exc
    except OutboundError as exc:
        if exc.error_class != "dns_error":
            raise ValidationError(str(exc), code="outbound_invalid") from exc


# ----------------------------------------------------------------------------- requests


def _pool(scheme: str, host: str, port: int, ip: IPAddress, timeout: float) -> urllib3.HTTPConnectionPool:
    address = str(ip)
    limits = urllib3.Timeout(connect=min(timeout, 10.0), read=timeout)
    if scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=limits,
            retries=False,
            maxsize=1,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
    return urllib3.HTTPConnectionPool(address, port, timeout=limits, retries=False, maxsize=1)


def _host_header(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return shown if port == default else f"{shown}:{port}"


def _error_class(exc: Exception) -> str:
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # a subclass of the timeout error
        return "connection_error"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timeout"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "tls_error"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "protocol_error"
    return "connection_error"


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    read_body: bool = False,
) -> OutboundResponse:
    """Check ``url`` against the policy, connect to the checked address, send one request.

    Never follows redirects and never retries. The answer's body is read only when
    ``read_body`` (at most :data:`MAX_BODY_BYTES`); raises :class:`OutboundError` (with a short
    ``error_class``) when refused or when no HTTP answer came back."""
    scheme, host, port, ip = resolve_allowed(url)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent_headers = {"User-Agent": USER_AGENT, **(headers or {}), "Host": _host_header(scheme, host, port)}
    pool = _pool(scheme, host, port, ip, timeout)
    try:
        response = pool.urlopen(
            method, target, body=body, headers=sent_headers, redirect=False, retries=False, preload_content=False
        )
        try:
            content = response.read(MAX_BODY_BYTES) if read_body else b""
            answer = OutboundResponse(status=response.status, headers=dict(response.headers), content=content)
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise OutboundError(_error_class(exc), f"{method} {scheme}://{host}:{port}: {type(exc).__name__}") from exc
    finally:
        pool.close()
    return answer


def error_class_for_status(status: int) -> str:
    """The short error class stored for a non-2xx answer."""
    if 300 <= status < 400:
        return "redirect"
    return f"http_{status}"
