"""Who is on the other end of an HTTP request, behind the proxies we were told to trust.

``X-Forwarded-For`` is anyone's to write: it is read only when the request came
from a configured proxy, and then from the right, skipping trusted hops, so a
client cannot put an address of its choice in front of the real one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

__all__ = ["ClientAddresses"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddresses:
    """``of(request)``: the client's address; ``trusted``: proxy addresses or networks."""

    def __init__(self, trusted: Iterable[str] = ()) -> None:
        self._trusted: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(entry.strip(), strict=False) for entry in trusted if entry.strip()
        )

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def of(self, request: web.BaseRequest) -> str:
        remote = request.remote or "unknown"
        if not self._trusted or not self._is_trusted(remote):
            return remote
        hops = [
            hop.strip()
            for header in request.headers.getall("X-Forwarded-For", [])
            for hop in header.split(",")
        ]
        for hop in reversed(hops):
            if not hop:
                continue
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return remote  # a garbled header: trust nothing in it
            if not self._is_trusted(hop):
                return hop
        return remote
