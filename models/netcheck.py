"""Is a host one a chat-added source may point at? Pure checks of names and addresses.

Private, loopback, link-local, multicast, reserved and unspecified addresses are refused (they
would let a chat user make the server fetch its own network); so are names that only resolve
locally (``localhost``, ``*.localhost``, ``*.local``, ``*.internal``).
"""

from __future__ import annotations

import ipaddress

LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


def address_problem(address: str) -> str | None:
    """A reason ``address`` (an IP literal) is not public, or None."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for label, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("unspecified", ip.is_unspecified),
    ):
        if flag:
            return f"{address} is a {label} address"
    if not ip.is_global:
        return f"{address} is not a public address"
    return None


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


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
