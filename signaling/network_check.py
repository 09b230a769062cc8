"""The pre-join network check: can this browser's media reach the relay, and how?

A page on the pre-join screen opens a websocket of its own and sends ``network_check``. The server
makes a small aiortc peer connection here, in the main process (no relay worker, no media): one
data channel, gathered with the relay's ICE settings (``MEETNOW_ICE_HOST_ADDRESSES``, which the
server sets process-wide at start-up, the public address and ``MEETNOW_ICE_PORT_RANGE``), so the
check knocks on the ports media would use. The page answers; whether the data channel opens, and
over which candidate pair, is decided in the page (``web_client/js/netcheck.js``).

A probe must not become a tool: its answer is screened like a call's (the relay never sends
checks where a call's answer could not make it send them), each probe closes after
:data:`NETWORK_CHECK_SECONDS`, and probes are capped per address (at once and per minute) and in
total, since each holds UDP ports of the media range. A socket that ran a check never joins.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from .aiortc_hooks import ice_ports_in
from .errors import TooManyCandidates
from .ice_policy import CandidateScreen, policy_from_settings
from .limits import Bucket, KeyedLimiter
from .protocol import ClientMessage, ErrorCode, IceServerInfo, ProtocolError, ServerMessage
from .protocol_netcheck import (
    NetworkCheckAnswerMessage,
    NetworkCheckMessage,
    NetworkCheckOfferMessage,
)
from .relay import RelayConfig, announce_public_address
from .settings import Settings
from .tasks import spawn

if TYPE_CHECKING:
    from .server import MeetnowServer

__all__ = [
    "CHECKS_PER_ADDRESS",
    "NETWORK_CHECK_MESSAGES",
    "NETWORK_CHECK_SECONDS",
    "PROBES_IN_TOTAL",
    "PROBES_PER_ADDRESS",
    "PROBE_TURN_TTL_SECONDS",
    "NetworkCheckSession",
    "NetworkChecks",
    "network_checks",
]

logger = logging.getLogger(__name__)

NETWORK_CHECK_SECONDS = 10.0
"""A probe's peer connection (and then its socket) is closed this long after the offer: the page
decides within about 5 s, and a probe must not hold its ports for longer."""
PROBES_PER_ADDRESS = 2
"""Probes one address may have running at once (two tabs opened together)."""
PROBES_IN_TOTAL = 16
"""Probes running at once on the whole server: each binds UDP ports of the media range."""
CHECKS_PER_ADDRESS = Bucket(burst=5, per_second=5 / 60)
"""Checks one address may start: five back to back, then five a minute ("Check again" clicks)."""
PROBE_TURN_TTL_SECONDS = 60
"""A probe's TURN credential expires this soon: long enough for the check, useless after."""
NETWORK_CHECK_MESSAGES = (NetworkCheckMessage, NetworkCheckAnswerMessage)
"""The client messages :class:`NetworkCheckSession` handles (``connection.py`` dispatches them)."""

SendMessage = Callable[[ServerMessage], Awaitable[None]]
CloseSocket = Callable[[], Awaitable[None]]


class NetworkChecks:
    """Every probe of one server: the caps, and the probes running now."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = RelayConfig(
            ice_servers=tuple(settings.ice_servers),
            public_address=settings.ice_public_address,
            port_range=settings.ice_port_range,
        )
        """The relay's ICE settings: the probe gathers as a participant's peer connection would."""
        self._started = KeyedLimiter(CHECKS_PER_ADDRESS, asyncio.get_running_loop().time)
        self._running: Counter[str] = Counter()
        self.probes: set[Probe] = set()
        """Probes whose peer connection is open."""

    def admit(self, ip: str) -> None:
        """Count a new probe from ``ip``, or raise the ``rate_limited`` error saying which cap."""
        if sum(self._running.values()) >= PROBES_IN_TOTAL:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                "The server is running too many network checks right now; try again shortly.",
            )
        if self._running[ip] >= PROBES_PER_ADDRESS:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                "Network checks from this address are already running; wait for them to end.",
            )
        if not self._started.allow(ip):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                "Too many network checks from this address; try again in a minute.",
            )
        self._running[ip] += 1

    def release(self, ip: str) -> None:
        self._running[ip] -= 1
        if self._running[ip] <= 0:
            del self._running[ip]

    def peer_connection_count(self) -> int:
        """Probe peer connections open now (tests, and the metrics)."""
        return len(self.probes)


_checks: weakref.WeakKeyDictionary[MeetnowServer, NetworkChecks] = weakref.WeakKeyDictionary()


def network_checks(server: MeetnowServer) -> NetworkChecks:
    """The server's probes, made on first use (the server object holds nothing of them)."""
    checks = _checks.get(server)
    if checks is None:
        checks = _checks[server] = NetworkChecks(server.settings)
    return checks


class Probe:
    """One check's peer connection: a data channel, no media, the relay's ICE settings."""

    def __init__(self, checks: NetworkChecks) -> None:
        config = checks.config
        ice = [RTCIceServer(s.urls, s.username, s.credential) for s in config.ice_servers]
        # Always our own ICE list (possibly empty): given none, aiortc would add a public server.
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=ice, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.pc.createDataChannel("network-check")
        self._checks = checks
        self._screen = CandidateScreen(policy_from_settings(checks.settings))
        self.answered = False
        self.closed = False
        checks.probes.add(self)

    async def offer(self) -> str:
        """The offer's SDP, every candidate in it; ``no_ports`` if the media range is full."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return announce_public_address(
            self.pc.localDescription.sdp, self._checks.config.public_address
        )

    async def apply_answer(self, sdp: str) -> None:
        if self.closed:
            raise ProtocolError(
                ErrorCode.OUT_OF_ORDER,
                "This network check is over; run a new one on a new connection.",
            )
        if self.answered:
            raise ProtocolError(ErrorCode.OUT_OF_ORDER, "This network check was already answered.")
        # The same screen as a call's answer: aioice sends checks to every candidate it is given.
        try:
            screened = self._screen.screen_answer(sdp)
        except TooManyCandidates as error:
            raise ProtocolError(ErrorCode.TOO_MANY_CANDIDATES, str(error)) from None
        from .connection import require_dtls_fingerprint  # connection.py imports this module

        require_dtls_fingerprint(screened)
        self.answered = True
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=screened, type="answer"))
        except Exception as exc:  # aiortc raises many types for a bad SDP
            logger.info("network check answer rejected: %s", type(exc).__name__)
            raise ProtocolError(
                ErrorCode.NEGOTIATION_FAILED,
                "The network check's answer could not be applied.",
                fatal=True,
            ) from None

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._checks.probes.discard(self)
        await self.pc.close()


class NetworkCheckSession:
    """One websocket's part in the network check: at most one probe, before (and instead of) a
    ``join``."""

    def __init__(
        self, server: MeetnowServer, client_ip: str, send: SendMessage, close_socket: CloseSocket
    ) -> None:
        self._server = server
        self._ip = client_ip
        self._send = send
        self._close_socket = close_socket
        self._probe: Probe | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self.used = False
        """This socket sent ``network_check``: it is a probe and may not join."""

    def refuse_join(self) -> None:
        """Raise the ``out_of_order`` error if this socket is a probe (called by ``join``)."""
        if self.used:
            raise ProtocolError(
                ErrorCode.OUT_OF_ORDER,
                "This connection ran a network check; join on a new connection.",
            )

    async def handle(self, message: ClientMessage, *, joined: bool) -> None:
        """``network_check`` or ``network_check_answer`` from this socket."""
        if isinstance(message, NetworkCheckMessage):
            await self._start(joined)
        elif isinstance(message, NetworkCheckAnswerMessage):
            if self._probe is None:
                raise ProtocolError(ErrorCode.OUT_OF_ORDER, "Send 'network_check' first.")
            await self._probe.apply_answer(message.sdp)

    async def _start(self, joined: bool) -> None:
        if joined:
            raise ProtocolError(
                ErrorCode.OUT_OF_ORDER,
                "A network check runs before 'join', on a connection of its own.",
            )
        if self.used:
            raise ProtocolError(
                ErrorCode.OUT_OF_ORDER,
                "This connection already ran a network check; open a new one for another.",
            )
        checks = network_checks(self._server)
        checks.admit(self._ip)
        self.used = True
        probe = self._probe = Probe(checks)
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(NETWORK_CHECK_SECONDS, lambda: spawn(self._expire()))
        with ice_ports_in(checks.config.port_range) as ports:
            sdp = await probe.offer()
        if ports.exhausted:
            raise ProtocolError(
                ErrorCode.NO_PORTS,
                "The meeting server has no free media port right now; try again later.",
                fatal=True,
            )
        await self._send(
            NetworkCheckOfferMessage(
                sdp=sdp,
                ice_servers=self._ice_servers(),
                ice_transport_policy=self._server.settings.ice_transport_policy,
                seconds=NETWORK_CHECK_SECONDS,
            )
        )

    def _ice_servers(self) -> list[IceServerInfo]:
        """What ``joined`` gives (``MeetnowServer.ice_servers_for``), with a TURN credential of
        its own that expires within :data:`PROBE_TURN_TTL_SECONDS`."""
        from .server import turn_credentials  # server.py imports connection.py, which imports us

        settings = self._server.settings
        servers = [IceServerInfo(**s.model_dump()) for s in settings.ice_servers]
        secret = settings.turn_secret
        if settings.turn_urls and secret is not None:
            user = f"netcheck-{secrets.token_hex(4)}"
            expires = self._server.rooms.now() + PROBE_TURN_TTL_SECONDS
            username, credential = turn_credentials(secret.get_secret_value(), user, expires)
            servers.append(
                IceServerInfo(urls=settings.turn_urls, username=username, credential=credential)
            )
        return servers

    async def _expire(self) -> None:
        await self.close()
        await self._close_socket()

    async def close(self) -> None:
        """Close the probe's peer connection (the deadline passed, or the socket closed)."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        probe = self._probe
        if probe is not None and not probe.closed:
            network_checks(self._server).release(self._ip)
            await probe.close()
