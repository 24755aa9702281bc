"""Is a host one a chat-added source may point at? Pure checks of names and addresses.

Private, loopback, link-local, multicast, reserved and unspecified addresses are refused (they
would let a chat user make the server fetch its own network); so are names that only resolve
locally (``localhost``, ``*.localhost``, ``*.local``, ``*.internal``). An IPv6 address that
carries an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16`` and Teredo) is judged by the IPv4 address it reaches.
"""

from __future__ import annotations

import ipaddress

LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to (mapped, compatible, NAT64, 6to4, Teredo)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client address behind the relay
    return None


def parse_address(address: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def address_problem(address: str) -> str | None:
    """A reason ``address`` (an IP literal) is not public, or None."""
    ip = parse_address(address)
    if ip is None:
        return None
    inner = embedded_ipv4(ip)
    if inner is not None:
        problem = _problem(inner)
        return f"{address} reaches {inner}, {problem}" if problem else None
    if isinstance(ip, ipaddress.IPv6Address) and ip in NAT64_LOCAL:
        return f"{address} is a local NAT64 address"
    problem = _problem(ip)
    return f"{address} is {problem}" if problem else None


def _problem(ip: IPAddress) -> str | None:
    for label, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("unspecified", ip.is_unspecified),
    ):
        if flag:
            return f"a {label} address"
    if not ip.is_global:
        return "not a public address"
    return None


def is_ip_literal(host: str) -> bool:
    return parse_address(host) is not None


def host_problem(host: str) -> str | None:
    """A reason ``host`` (a name or an IP literal) is not a public host, or None."""
    name = host.strip().rstrip(".").lower()
    if not name:
        return "the URL has no host"
    if is_ip_literal(name):
        return address_problem(name)
    if name == "localhost" or name.endswith(LOCAL_SUFFIXES) or "." not in name:
        return f"{host} is a local name"
    return None
