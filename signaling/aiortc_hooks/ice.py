"""ICE: the addresses aioice gathers host candidates on, and the UDP port range its sockets are
bound in (aioice has an option for neither)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import secrets
import socket
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import aioice.ice

from ..errors import MeetnowError

__all__ = [
    "IcePortBinding",
    "IcePortsExhausted",
    "PortRange",
    "bind_udp_in_range",
    "ice_ports_in",
    "set_host_addresses",
]

_original_get_host_addresses = aioice.ice.get_host_addresses


def set_host_addresses(addresses: list[str]) -> None:
    """Gather host candidates on exactly these addresses (empty list: aioice's own choice, which
    skips loopback). Process-wide: aioice reads it as a module global for every connection."""
    if not addresses:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        return
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


PortRange = tuple[int, int]
"""First and last UDP port (inclusive) ICE sockets may use."""


class IcePortsExhausted(MeetnowError, OSError):
    """Every port of the range is taken on an address. An ``OSError``, so aioice skips that
    address as it skips any address it cannot bind, and gathering itself never fails."""


@dataclass
class IcePortBinding:
    """What :func:`ice_ports_in` did for the gathering inside it."""

    ports: PortRange | None
    exhausted: bool = False
    """An address found no free port in the range: its host candidate is missing."""


_ice_port_binding: ContextVar[IcePortBinding | None] = ContextVar(
    "meetnow_ice_port_binding", default=None
)
_next_port: dict[PortRange, int] = {}
"""Where each range's next search starts: after the last port bound, so a bind takes one try
while the range has room, and processes sharing a range (relay workers) start apart."""


@contextlib.contextmanager
def ice_ports_in(ports: PortRange | None) -> Iterator[IcePortBinding]:
    """Inside this context (and the tasks it starts, such as aiortc's gathering), aioice binds
    each host candidate socket on a free port of ``ports`` instead of one the OS picks, which is
    all a firewall then has to open. ``None``: the OS's ephemeral ports.

    aioice has no option for this (aiortc/aioice#112): it binds with
    ``asyncio.get_running_loop().create_datagram_endpoint(..., local_addr=(address, 0))`` in
    ``Connection.get_component_candidates``, so aioice's ``asyncio`` is replaced by one whose
    loop binds that call in the range. Everything else aioice asks of asyncio is untouched."""
    binding = IcePortBinding(ports)
    if ports is None:
        yield binding
        return
    aioice.ice.asyncio = _ASYNCIO_FOR_AIOICE  # type: ignore[attr-defined,assignment]
    token = _ice_port_binding.set(binding)
    try:
        yield binding
    finally:
        _ice_port_binding.reset(token)


def bind_udp_in_range(address: str, ports: PortRange) -> socket.socket:
    """A non-blocking UDP socket bound on ``address`` at a free port of ``ports``; raises
    :class:`IcePortsExhausted` when there is none. No ``SO_REUSEADDR``: on Linux it would let
    two sockets share a UDP port."""
    first, last = ports
    family, _, _, _, sockaddr = socket.getaddrinfo(
        address, first, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICHOST
    )[0]
    size = last - first + 1
    start = _next_port.get(ports, first + secrets.randbelow(size)) - first
    for step in range(size):
        port = first + (start + step) % size
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((sockaddr[0], port, *sockaddr[2:]))
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        _next_port[ports] = first + (port - first + 1) % size
        return sock
    raise IcePortsExhausted(errno.EADDRINUSE, f"no free UDP port in {first}-{last} on {address}")


class _LoopBindingInRange:
    """The running loop, except that an ICE socket bound at port 0 gets a port of the range."""

    def __init__(self, loop: asyncio.AbstractEventLoop, binding: IcePortBinding) -> None:
        self._loop = loop
        self._binding = binding

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_datagram_endpoint(
        self, protocol_factory: Callable[[], Any], local_addr: Any = None, **kwargs: Any
    ) -> Any:
        ports = self._binding.ports
        if ports is None or kwargs or local_addr is None or local_addr[1] != 0:
            return await self._loop.create_datagram_endpoint(
                protocol_factory, local_addr=local_addr, **kwargs
            )
        try:
            sock = bind_udp_in_range(local_addr[0], ports)
        except IcePortsExhausted:
            self._binding.exhausted = True
            raise
        return await self._loop.create_datagram_endpoint(protocol_factory, sock=sock)


class _AsyncioForAioice:
    """``asyncio`` as ``aioice.ice`` sees it: the real module, but inside :func:`ice_ports_in`
    ``get_running_loop()`` answers :class:`_LoopBindingInRange`."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    def get_running_loop() -> Any:
        loop = asyncio.get_running_loop()
        binding = _ice_port_binding.get()
        return loop if binding is None else _LoopBindingInRange(loop, binding)


_ASYNCIO_FOR_AIOICE = _AsyncioForAioice()
