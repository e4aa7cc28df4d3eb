"""Which receivers a webhook may be sent to: no server of ours by accident (SSRF).

A receiver's URL must be HTTPS (HTTP only where ``BATCHCAM_WEBHOOK_ALLOW_HTTP`` says so), carry no
credentials, and every address its host resolves to must be public: private, loopback, link-local,
reserved, multicast, unspecified and other non-global addresses are refused unless
``BATCHCAM_WEBHOOK_ALLOWED_NETWORKS`` names them (a CIDR) or the host itself. Checked when an
endpoint is registered and again before every send, since DNS answers change.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from persistence.settings import Settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int], list[str]]


class UnsafeDestinationError(ValueError):
    """The URL may not receive webhooks; the message says why, for the tenant to read."""


@dataclass(frozen=True)
class DestinationPolicy:
    allow_http: bool = False
    networks: tuple[IpNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> DestinationPolicy:
        return cls.of(settings.webhook_allowed_networks, allow_http=settings.webhook_allow_http)

    @classmethod
    def of(cls, allowed: Sequence[str], *, allow_http: bool = False) -> DestinationPolicy:
        """``allowed``: CIDRs (or single addresses) and host names, as the setting lists them."""
        networks, hosts = [], set()
        for entry in allowed:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(entry.strip().lower().rstrip("."))
        return cls(allow_http, tuple(networks), frozenset(hosts))


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an address literal resolves to itself)."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeDestinationError(f"the host {host!r} cannot be resolved") from error
    return sorted({str(answer[4][0]) for answer in answers})


def check_destination(url: str, policy: DestinationPolicy, resolve: Resolve = resolve_host) -> None:
    """Raises ``UnsafeDestinationError`` unless ``url`` may receive webhooks now."""
    host, port = _host_and_port(url, policy)
    if host in policy.hosts:
        return
    addresses = resolve(host, port)
    if not addresses:
        raise UnsafeDestinationError(f"the host {host!r} has no address")
    for text in addresses:
        address = _parsed(text)
        if not any(address in network for network in policy.networks) and not _public(address):
            raise UnsafeDestinationError(
                f"{host!r} resolves to {address}, which is not a public address "
                "(private, loopback, link-local, reserved or multicast receivers are refused)"
            )


def _host_and_port(url: str, policy: DestinationPolicy) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeDestinationError(f"not a URL: {error}") from error
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeDestinationError(f"the URL must start with {' or '.join(f'{s}://' for s in allowed)}")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestinationError("the URL may not carry credentials")
    if not parts.hostname:
        raise UnsafeDestinationError("the URL names no host")
    return parts.hostname.lower().rstrip("."), port or (443 if parts.scheme == "https" else 80)


def _parsed(text: str) -> IpAddress:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 scope is no part of the address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _public(address: IpAddress) -> bool:
    refused = (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )
    return address.is_global and not refused
