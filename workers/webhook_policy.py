"""Where webhooks may go: the host is resolved once, every address classified (docs/alerts.md).

Used when a subscription is saved (service/) and at every delivery attempt (workers/): the
addresses that passed are the ones the POST connects to (workers/webhook_post.py), so a
resolver that answers differently a moment later is never asked.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

from domain.errors import InvalidValue
from domain.subscription import check_host, webhook_host

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]


def ascii_host(host: str) -> str:
    """The host as DNS, TLS and the Host header know it: international labels as A-labels.

    A host with a non-ASCII character or an `xn--` label is mapped and checked by IDNA 2008
    with the UTS 46 mapping, non-transitional, as browsers do (case and width folded, the
    full stops 。．｡ read as dots, ß kept) and the STD3 rules (letters, digits, hyphens);
    the A-labels then pass the domain's host rules (a numeric one is a dotted quad). An
    invalid one is refused naming the url. Any other host is only lower-cased.
    """
    lowered = host.lower()
    if host.isascii() and not any(label.startswith("xn--") for label in lowered.split(".")):
        return lowered
    try:
        encoded = idna.encode(host, uts46=True, transitional=False, std3_rules=True)
    except (idna.IDNAError, UnicodeError) as error:
        why = f"not a valid international domain name ({error})"[:200]
        raise InvalidValue(f"the webhook URL names a host that is {why}", field="url") from None
    ascii_name = encoded.decode("ascii")
    check_host(ascii_name)
    return ascii_name


def webhook_ascii_host(url: str) -> str:
    """The host of a webhook URL as DNS knows it: the domain's syntax check, then `ascii_host`."""
    return ascii_host(webhook_host(url))


def _nets(kind: str, *cidrs: str) -> list[tuple[Network, str]]:
    return [(ipaddress.ip_network(c), kind) for c in cidrs]


# Cloud instance-metadata endpoints (AWS, ECS, EKS, GCP, Azure, Oracle, Alibaba...).
METADATA = _nets(
    "cloud-metadata",
    "169.254.169.254/32",
    "169.254.170.2/32",
    "169.254.170.23/32",
    "100.100.100.200/32",
    "192.0.0.192/32",
    "fd00:ec2::254/128",
    "fd00:ec2::23/128",
)
REFUSED = METADATA + [
    *_nets("unspecified", "0.0.0.0/8", "::/128"),
    *_nets("loopback", "127.0.0.0/8", "::1/128"),
    *_nets("link-local", "169.254.0.0/16", "fe80::/10"),
    *_nets("shared (CGNAT)", "100.64.0.0/10"),
    *_nets("private", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10"),
    *_nets("private", "64:ff9b:1::/48"),
    *_nets("multicast", "224.0.0.0/4", "ff00::/8"),
    *_nets("reserved", "240.0.0.0/4", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15"),
    *_nets("reserved", "198.51.100.0/24", "203.0.113.0/24", "192.88.99.0/24"),
    *_nets("reserved", "100::/64", "2001:db8::/32", "2001::/23"),
]
NAT64 = ipaddress.ip_network("64:ff9b::/96")
COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(ip: IP) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4), and how."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip in NAT64 or ip in COMPATIBLE:
        kind = "NAT64" if ip in NAT64 else "IPv4-compatible"
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), kind
    return None


def address_class(ip: IP) -> str | None:
    """Why an address is no place for a webhook (its class), or None for a public address."""
    for net, kind in REFUSED:
        if ip.version == net.version and ip in net:
            return kind
    inner = embedded_ipv4(ip)
    if inner is not None:
        v4, how = inner
        carried = address_class(v4)
        if carried is not None:
            return f"{carried} ({how} {v4})"
        return "reserved (IPv4-compatible)" if how == "IPv4-compatible" else None
    return None if ip.is_global else "reserved"


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses a host name resolves to, in the resolver's order; [] if it does not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _literal(host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return []


@dataclass(frozen=True)
class Target:
    """A webhook URL the policy admitted, with the addresses it was checked at."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class WebhookPolicy:
    """The same policy in every deployment: only public addresses, unless allow-listed.

    `allow_loopback` (ALLOW_LOOPBACK_WEBHOOKS) admits loopback only; `allowlist`
    (WEBHOOK_ALLOWLIST) holds host names and CIDRs admitted whatever their class (a
    cloud-metadata address only if listed exactly, as a /32 or /128).
    """

    allow_loopback: bool = False
    allowlist: tuple[str, ...] = ()
    resolve: Resolver = dataclasses.field(default=resolve_host, compare=False)

    def _networks(self) -> list[Network]:
        nets = []
        for entry in self.allowlist:
            try:
                nets.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                continue
        return nets

    def _names(self) -> set[str]:
        """The allow-listed names as A-labels (an entry that is no valid name matches none)."""
        names = set()
        for entry in self.allowlist:
            try:
                names.add(ascii_host(entry.strip()).rstrip("."))
            except InvalidValue:
                continue
        return names - {""}

    def refusal(self, address: str) -> str | None:
        """Why this address is refused (its class), or None if a webhook may go there."""
        ip = ipaddress.ip_address(address)
        kind = address_class(ip)
        if kind is None:
            return None
        candidates = [ip] + [inner[0] for inner in [embedded_ipv4(ip)] if inner]
        for net in self._networks():
            if any(c.version == net.version and c in net for c in candidates):
                if not kind.startswith("cloud-metadata") or net.num_addresses == 1:
                    return None
        if kind == "loopback" and self.allow_loopback:
            return None
        return kind

    def admit(self, url: str) -> Target:
        """Check the URL, resolve its host once and check every address; InvalidValue on url.

        The host is the URL's as DNS knows it (an international name as A-labels): it is
        the one resolved, compared with the allowlist, sent as Host and as TLS server name.
        """
        host = webhook_ascii_host(url)
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        addresses = _literal(host) or self.resolve(host, port)
        if not addresses:
            raise InvalidValue(f"the webhook host {host} does not resolve", field="url")
        if host.rstrip(".") not in self._names():
            for address in addresses:
                self._check(address)
        return Target(url, parts.scheme, host, port, path, tuple(addresses))

    def _check(self, address: str) -> None:
        kind = self.refusal(address)
        if kind is not None:
            hint = (
                "ALLOW_LOOPBACK_WEBHOOKS=true allows them"
                if kind == "loopback"
                else "WEBHOOK_ALLOWLIST admits a host or network"
            )
            raise InvalidValue(
                f"refused: resolves to a {kind} address ({address}; {hint})", field="url"
            )
