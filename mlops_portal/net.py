"""The client's address, resolved once for the audit log, login lockout and token last use.

``REMOTE_ADDR`` is the address of whoever opened the connection. Only when that peer is one
of the reverse proxies named in ``TRUSTED_PROXIES`` (addresses or networks) is the
``X-Forwarded-For`` header believed, and then only the hops those proxies appended: the chain
is read from the right, trusted proxies are skipped, and the first address that is not a
trusted proxy is the client (django-ipware picks it with that proxy count). A client that
sends its own ``X-Forwarded-For`` straight to the portal changes nothing.
"""

from __future__ import annotations

import ipaddress
from functools import cache

from django.conf import settings
from ipware import get_client_ip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def clean_ip(value) -> str | None:
    """A valid address in its canonical text form (IPv4-mapped IPv6 as IPv4), or None."""
    try:
        address = ipaddress.ip_address(str(value or "").strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


@cache
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def in_networks(address: str | None, entries) -> bool:
    """Whether ``address`` lies in one of the networks (or is one of the addresses) in ``entries``."""
    if not address:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in _networks(tuple(entries)))


def _trusted_hops(forwarded: list[str], trusted) -> int:
    """How many hops at the right end of ``X-Forwarded-For`` are trusted proxies themselves."""
    hops = 0
    for entry in reversed(forwarded[1:]):  # the left-most entry is the client, never a proxy hop
        if not in_networks(clean_ip(entry), trusted):
            break
        hops += 1
    return hops


def client_ip(request) -> str | None:
    """The client address: ``REMOTE_ADDR``, or what a trusted proxy says it forwarded from."""
    remote = clean_ip(request.META.get("REMOTE_ADDR"))
    trusted = getattr(settings, "TRUSTED_PROXIES", ())
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not header or not in_networks(remote, trusted):
        return remote
    forwarded = [entry.strip() for entry in header.split(",") if entry.strip()]
    hops = _trusted_hops(forwarded, trusted)
    ip, _routable = get_client_ip(
        request, proxy_count=hops, request_header_order=["HTTP_X_FORWARDED_FOR"], strict=False
    )
    return clean_ip(ip) or remote
