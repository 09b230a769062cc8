"""Every aiortc and aioice internal the relay touches, and nothing else.

aiortc is built to decode what it receives and encode what it sends. The relay forwards RTP packets
instead, so it needs a few private entry points. They live here, behind small functions, so that an
aiortc upgrade breaks ``tests/test_aiortc_hooks.py`` (the contract tests), not a call. The pinned
version is in ``pyproject.toml``.

Hooks:

- :func:`tap_receiver`: see each decrypted RTP packet of a receiver before aiortc's jitter buffer, and
  stop the receiver's decoder thread so no decoder is ever created;
- :func:`attach_forwarding_sender`: give a sender a track that never yields, so aiortc's own send loop
  sleeps (no encoder) while the relay writes packets itself, with the sender's SSRC and header
  extension ids, into the sender's history so NACKs are answered;
- :func:`request_keyframe`: send a PLI to a publisher;
- :func:`filter_datagrams`: pass every datagram of a peer connection through filters (the load
  generator's network impairment); :func:`observe_nacks`: see the NACKs a sender gets (tests);
- :func:`count_rtp_datagrams` and :class:`ReceiverFeedback`: the load generator's receive path,
  which counts SRTP datagrams without decrypting them and still sends the RTCP a browser would;
- :func:`set_host_addresses`: choose the addresses aioice gathers host candidates on;
- :func:`ice_ports_in`: bind the ICE sockets gathered inside it on ports of a range.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import secrets
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from struct import pack_into
from typing import Any

import aioice.ice
from aioice.ice import StunProtocol
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.clock import current_ntp_time
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTP_HISTORY_SIZE,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from pylibsrtp._binding import ffi
from pylibsrtp._binding import lib as srtp_lib

from .loss_recovery import BROWSER_NACKS, NackPolicy, StreamRecovery
from .tasks import spawn

__all__ = [
    "HISTORY_SIZE",
    "DatagramFilter",
    "IcePortBinding",
    "IcePortsExhausted",
    "IdleTrack",
    "ReceiverFeedback",
    "SenderState",
    "UpstreamRemb",
    "attach_forwarding_sender",
    "bind_udp_in_range",
    "count_rtp_datagrams",
    "current_ntp_time",
    "filter_datagrams",
    "ice_ports_in",
    "observe_nacks",
    "observe_sender_feedback",
    "request_keyframe",
    "route_keyframe_requests",
    "set_host_addresses",
    "tap_receiver",
]

HISTORY_SIZE: int = RTP_HISTORY_SIZE
"""Packets aiortc keeps per sender for retransmission."""

PacketHandler = Callable[[RtpPacket], Awaitable[None]]

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


def tap_receiver(
    receiver: RTCRtpReceiver,
    on_packet: PacketHandler,
    *,
    keep_feedback: bool = True,
    nack_policy: NackPolicy | None = None,
    on_given_up: Callable[[int], None] | None = None,
) -> StreamRecovery | None:
    """Call ``on_packet`` with every RTP packet the receiver gets, then keep aiortc's receive
    statistics (its receiver reports) and bandwidth estimate (REMB) up to date and NACK what is
    missing, again about once per round trip (``nack_policy``) until it arrives or is given up:
    then ``on_given_up(ssrc)``. The packet never reaches aiortc's jitter buffer, and the
    receiver's decoder thread is stopped as soon as aiortc starts it, so nothing is ever
    decoded. Returns the NACK state (None for audio: nothing is NACKed), so that a subscriber's
    NACK for a packet that never arrived can be passed upstream (:meth:`StreamRecovery.request`).

    ``keep_feedback=False`` hands packets to ``on_packet`` only (no RTCP feedback at all): for the
    load generator, which counts packets and must stay cheaper than the relay it measures."""
    internals: Any = receiver  # private aiortc state: see the module docstring
    receive = internals.receive
    recovery: StreamRecovery | None = None
    if keep_feedback and internals._RTCRtpReceiver__nack_generator is not None:
        recovery = StreamRecovery(
            nack_policy or BROWSER_NACKS, _nack_sender(internals), on_given_up
        )

    async def tapped_handle_rtp(packet: RtpPacket, arrival_time_ms: int) -> None:
        if receiver._enabled:
            await on_packet(packet)
            if keep_feedback:
                await _feedback(internals, packet, arrival_time_ms)
                if recovery is not None:
                    recovery.add(packet.ssrc, packet.sequence_number)

    async def receive_without_decoder(parameters: Any) -> None:
        await receive(parameters)
        internals._RTCRtpReceiver__stop_decoder()

    internals._handle_rtp_packet = tapped_handle_rtp
    internals.receive = receive_without_decoder
    return recovery


def _nack_sender(receiver: Any) -> Callable[[int, list[int]], None]:
    """NACKs out through the receiver's own RTCP path (SRTCP on its DTLS transport)."""

    def send_nack(media_ssrc: int, lost: list[int]) -> None:
        spawn(receiver._send_rtcp_nack(media_ssrc, lost), what="NACK")

    return send_nack


async def _feedback(receiver: Any, packet: RtpPacket, arrival_time_ms: int) -> None:
    """The part of ``RTCRtpReceiver._handle_rtp_packet`` a forwarder needs: the bandwidth estimate
    (REMB) and receive statistics (for receiver reports, whose fraction lost tells the publisher
    what it needs to know to turn on Opus FEC). NACKs are :class:`StreamRecovery`'s. The rest of
    it, depayloading and the jitter buffer, only feeds a decoder; skipping it halves the cost."""
    codec = receiver._RTCRtpReceiver__codecs.get(packet.payload_type)
    if codec is None:
        return
    streams = receiver._RTCRtpReceiver__remote_streams
    statistics = streams.get(packet.ssrc)
    if statistics is None:
        statistics = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
    in_order = statistics.max_seq is None or _seq_after(packet.sequence_number, statistics.max_seq)
    statistics.add(packet)
    estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator
    # Only in-order arrivals feed the estimate: a late (reordered or retransmitted) packet
    # would stretch its send-time group's arrival time, read as queuing delay, and an estimate
    # that collapses under jitter, as measured with 40 +- 10 ms (docs/architecture.md).
    if estimator is not None and in_order and packet.extensions.abs_send_time is not None:
        remb = estimator.add(
            abs_send_time=packet.extensions.abs_send_time,
            arrival_time_ms=arrival_time_ms,
            payload_size=len(packet.payload) + packet.padding_size,
            ssrc=packet.ssrc,
        )
        rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc
        if rtcp_ssrc is not None and remb is not None:
            await receiver._send_rtcp(
                RtcpPsfbPacket(
                    fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
                )
            )


def _seq_after(a: int, b: int) -> bool:
    """Whether RTP sequence number ``a`` comes after ``b`` (modulo 2^16)."""
    return 0 < ((a - b) & 0xFFFF) < 0x8000


def count_rtp_datagrams(pc: RTCPeerConnection, on_rtp: Callable[[bytes], None]) -> None:
    """Load generator only: take every SRTP datagram off the peer connection's sockets before
    aioice and aiortc see it, and hand it (header in clear, payload still encrypted) to
    ``on_rtp``. Nothing is decrypted or checked: a counter that costs a few microseconds a
    packet, so one process can receive what a whole room of people would. RTCP still reaches
    aiortc, and :class:`ReceiverFeedback` sends what a browser would send back."""
    for transceiver in pc.getTransceivers():
        connection: Any = transceiver.receiver.transport.transport._connection
        for protocol in connection._protocols:
            if getattr(protocol, "_meetnow_counting", False):
                continue
            original = protocol.datagram_received

            def datagram_received(data: bytes, addr: Any, original: Any = original) -> None:
                # RTP version 2 and not an RTCP packet type (RFC 5761 section 4).
                if 127 < data[0] < 192 and not 191 < data[1] < 224:
                    on_rtp(data)
                else:
                    original(data, addr)

            protocol.datagram_received = datagram_received
            protocol._meetnow_counting = True
            # A whole room arrives on this socket; the default buffer (~200 KB) is 80 ms of it.
            sock = protocol.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)


DatagramFilter = Callable[[bytes, Any, Callable[[bytes, Any], None]], None]
"""(datagram, address, deliver): pass the datagram on with ``deliver`` now, later, or never."""


def filter_datagrams(
    pc: RTCPeerConnection, *, outbound: DatagramFilter, inbound: DatagramFilter
) -> None:
    """Put every datagram of the peer connection's ICE sockets through filters: ``outbound``
    sees all aioice sends (STUN, DTLS, SRTP, SRTCP), ``inbound`` all that arrives, before any
    other hook of ours (install it after :func:`count_rtp_datagrams`). The load generator's
    network impairment (:mod:`signaling.impairment`), no root needed. Each socket once; call it
    after the first local description, when the sockets exist."""
    for transceiver in pc.getTransceivers():
        connection: Any = transceiver.receiver.transport.transport._connection
        for protocol in connection._protocols:
            if getattr(protocol, "_meetnow_filtered", False):
                continue
            protocol._meetnow_filtered = True
            receive = protocol.datagram_received
            transport = protocol.transport

            def datagram_received(data: bytes, addr: Any, receive: Any = receive) -> None:
                inbound(data, addr, receive)

            async def send_data(data: bytes, addr: Any, transport: Any = transport) -> None:
                outbound(data, addr, transport.sendto)

            def send_stun(message: Any, addr: Any, transport: Any = transport) -> None:
                outbound(bytes(message), addr, transport.sendto)

            protocol.datagram_received = datagram_received
            protocol.send_data = send_data
            protocol.send_stun = send_stun


def observe_nacks(sender: RTCRtpSender, on_nack: Callable[[int], None]) -> None:
    """Call ``on_nack(sequence_number)`` for each packet the remote side NACKs on this sender,
    before aiortc retransmits it (tests watch a publisher's NACKs with it)."""
    internals: Any = sender
    retransmit = internals._retransmit

    async def observed(sequence_number: int) -> None:
        on_nack(sequence_number)
        await retransmit(sequence_number)

    internals._retransmit = observed


class _Header:
    """The two RTP header fields aiortc's receive statistics and NACK generator read."""

    __slots__ = ("sequence_number", "timestamp")

    def __init__(self) -> None:
        self.sequence_number = 0
        self.timestamp = 0


class ReceiverFeedback:
    """The RTCP a browser sends about what one receiver gets, for a receiver whose packets are
    counted still encrypted (:func:`count_rtp_datagrams`). The RTP header is in clear in SRTP:
    each one feeds aiortc's own receive statistics, so the receiver's RTCP loop sends receiver
    reports every 0.5-1.5 s as for any aiortc receiver; a new sequence gap of a video stream is
    NACKed at once and again about once per round trip, as a browser does
    (:data:`~signaling.loss_recovery.BROWSER_NACKS`). PLI and REMB go out on request, through the
    receiver's own RTCP path (SRTCP on its DTLS transport)."""

    def __init__(self, receiver: RTCRtpReceiver, kind: str) -> None:
        internals: Any = receiver
        self._receiver = internals
        self.kind = kind
        self._codecs: dict[int, Any] = internals._RTCRtpReceiver__codecs
        # Filled here, read by aiortc's RTCP loop (``_run_rtcp``) for its receiver reports.
        self._statistics: dict[int, Any] = internals._RTCRtpReceiver__remote_streams
        self._nacks: StreamRecovery | None = None  # video only, as browsers NACK
        if internals._RTCRtpReceiver__nack_generator is not None:
            self._nacks = StreamRecovery(BROWSER_NACKS, _nack_sender(internals))
        self._header = _Header()

    @property
    def ssrcs(self) -> list[int]:
        """Media SSRCs seen so far."""
        return list(self._statistics)

    def add(self, ssrc: int, payload_type: int, sequence_number: int, timestamp: int) -> None:
        """Account one received packet; NACK the packets missing if it opened a new gap."""
        statistics: Any = self._statistics.get(ssrc)
        if statistics is None:
            codec = self._codecs.get(payload_type)
            if codec is None:  # not negotiated, or the receiver not started yet: aiortc drops it
                return
            statistics = self._statistics[ssrc] = StreamStatistics(codec.clockRate)
        header = self._header
        header.sequence_number, header.timestamp = sequence_number, timestamp
        statistics.add(header)
        if self._nacks is not None:
            self._nacks.add(ssrc, sequence_number)

    def close(self) -> None:
        """Stop re-sending NACKs."""
        if self._nacks is not None:
            self._nacks.close()

    def request_keyframe(self, ssrc: int) -> None:
        """Send a PLI for this media SSRC."""
        spawn(self._receiver._send_rtcp_pli(ssrc), what="PLI")

    def send_remb(self, bitrate: int, ssrcs: list[int]) -> None:
        """Send a REMB (receiver estimated maximum bitrate) covering these media SSRCs."""
        rtcp_ssrc = self._receiver._RTCRtpReceiver__rtcp_ssrc
        if rtcp_ssrc is not None and ssrcs:
            fci = pack_remb_fci(bitrate, ssrcs)
            packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci)
            spawn(self._receiver._send_rtcp(packet), what="REMB")


def decoder_running(receiver: RTCRtpReceiver) -> bool:
    """Whether aiortc's decoder thread runs for this receiver (never, for a tapped one)."""
    internals: Any = receiver
    return internals._RTCRtpReceiver__decoder_thread is not None


async def request_keyframe(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the publisher for a keyframe (RTCP PLI)."""
    internals: Any = receiver
    await internals._send_rtcp_pli(media_ssrc)


class IdleTrack(MediaStreamTrack):
    """A track whose ``recv`` waits until the track stops. aiortc's send loop polls every 20 ms
    when a sender has no track at all; with this one it just waits, and never builds an encoder."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._stopped = asyncio.get_running_loop().create_future()

    async def recv(self) -> Any:
        await self._stopped
        raise MediaStreamError

    def stop(self) -> None:
        if not self._stopped.done():
            self._stopped.set_result(None)
        super().stop()


SRTP_MAX_TRAILER = 148
"""libsrtp's SRTP_MAX_TRAILER_LEN: room after a packet for its authentication tag."""
_SCRATCH = ffi.new("char[]", 2048 + SRTP_MAX_TRAILER)
_SCRATCH_VIEW = memoryview(ffi.buffer(_SCRATCH))
_SCRATCH_LENGTH = ffi.new("int *")
# One scratch buffer serves every sender: each packet is protected and handed to the kernel before
# the next one is written (all on the event loop's thread).


class SenderState:
    """The relay's handle on one aiortc sender that it writes RTP packets through itself.

    Packets skip aiortc's send path (four coroutines and two copies per packet): each is written
    into a scratch buffer from a shared template, its header patched, SRTP-protected in place with
    the sender's DTLS transport keys (libsrtp, through pylibsrtp's binding) and handed to the
    nominated ICE pair's socket. The templates are kept for retransmission (the subscriber's NACKs,
    which aiortc routes to :meth:`_retransmit`), and the counters aiortc puts in its RTCP sender
    reports are refreshed every ``REPORT_EVERY`` packets.
    """

    REPORT_EVERY = 32

    def __init__(self, sender: RTCRtpSender) -> None:
        self.sender: Any = sender
        """The aiortc sender, typed loosely: only private state of it is used here."""
        self.ssrc: int = sender._ssrc
        """The SSRC aiortc chose for this sender (fixed for its lifetime)."""
        self._history: list[tuple[bytes, int, int] | None] = [None] * HISTORY_SIZE
        self._unreported_packets = 0
        self._unreported_octets = 0
        self._last_timestamp = 0
        self._route: tuple[Any, Any, Any, Any, Any] | None = (
            None  # dtls, srtp, pair, socket, transport
        )
        self.on_missing: Callable[[int], None] | None = None
        """Called with a sequence number the subscriber NACKed that was never sent to it (or
        left the history): the relay may not have it either, and can ask upstream."""
        internals: Any = sender
        internals._retransmit = self._retransmit

    def ready(self) -> bool:
        """Negotiated and started: its header extension ids are known and keys exist."""
        # ``_state``, not ``state``: the property formats an enum, and this runs per packet
        # for a subscriber that is still connecting.
        return bool(self.sender._RTCRtpSender__started) and (
            self.sender.transport._state is DtlsState.CONNECTED
        )

    @property
    def mid(self) -> str | None:
        mid: str | None = self.sender._RTCRtpSender__mid
        return mid

    def extensions_map(self) -> Any:
        return self.sender._RTCRtpSender__rtp_header_extensions_map

    def remember(self, template: bytes, sequence_number: int, timestamp: int) -> None:
        """Keep a packet where :meth:`_retransmit` finds it when the subscriber NACKs it."""
        self._history[sequence_number % HISTORY_SIZE] = (template, sequence_number, timestamp)

    def send(
        self, template: bytes, sequence_number: int, timestamp: int, payload_length: int
    ) -> None:
        """Send ``template`` with this sender's SSRC and the given sequence number and timestamp.
        Raises ConnectionError when not connected."""
        self._transmit(template, sequence_number, timestamp)
        self._history[sequence_number % HISTORY_SIZE] = (template, sequence_number, timestamp)
        self._last_timestamp = timestamp
        self._unreported_octets += payload_length
        self._unreported_packets += 1
        if self._unreported_packets >= self.REPORT_EVERY:
            self.flush_report()

    def flush_report(self) -> None:
        """Hand aiortc's RTCP loop the counters of what was sent (for its sender reports)."""
        sender = self.sender
        sender._RTCRtpSender__ntp_timestamp = current_ntp_time()
        sender._RTCRtpSender__rtp_timestamp = self._last_timestamp
        sender._RTCRtpSender__packet_count += self._unreported_packets
        sender._RTCRtpSender__octet_count += self._unreported_octets
        self._unreported_packets = self._unreported_octets = 0

    def _resolve(self) -> tuple[Any, Any, Any, Any, Any]:
        dtls = self.sender.transport
        srtp = dtls._tx_srtp
        if srtp is None or dtls._state is not DtlsState.CONNECTED:
            raise ConnectionError("not connected")
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            raise ConnectionError("no ICE pair")
        protocol = pair.protocol
        transport: Any = protocol.transport if type(protocol) is StunProtocol else None
        sock = transport._sock if transport is not None else None
        self._route = (dtls, srtp, pair, sock, transport)
        return self._route

    def _transmit(self, template: bytes, sequence_number: int, timestamp: int) -> None:
        route = self._route
        if (
            route is None
            or route[0]._state is not DtlsState.CONNECTED
            or route[0]._tx_srtp is not route[1]
            or route[0].transport._connection._nominated.get(1) is not route[2]
        ):
            route = self._resolve()
        _, srtp, pair, sock, transport = route
        length = len(template)
        view = _SCRATCH_VIEW
        view[:length] = template
        pack_into("!HII", view, 2, sequence_number, timestamp, self.ssrc)
        _SCRATCH_LENGTH[0] = length
        if srtp_lib.srtp_protect(srtp._srtp[0], _SCRATCH, _SCRATCH_LENGTH):
            raise ConnectionError("SRTP protection failed")
        protected = view[: _SCRATCH_LENGTH[0]]
        address = pair.remote_addr
        if sock is not None and not transport._buffer:
            try:
                sock.sendto(protected, address)
                return
            except (BlockingIOError, InterruptedError):
                pass
        if transport is not None:
            transport.sendto(bytes(protected), address)  # asyncio queues it in order
        else:  # a TURN relay: its send path is a coroutine
            spawn(pair.protocol.send_data(bytes(protected), address), what="TURN send")

    async def _retransmit(self, sequence_number: int) -> None:
        entry = self._history[sequence_number % HISTORY_SIZE]
        if entry is not None and entry[1] == sequence_number:
            try:
                self._transmit(*entry)
            except ConnectionError:
                pass
        elif self.on_missing is not None:
            self.on_missing(sequence_number)


def route_keyframe_requests(sender: RTCRtpSender, on_keyframe_request: Callable[[], None]) -> None:
    """Send the subscriber's PLI/FIR for this sender to ``on_keyframe_request`` (aiortc would only
    set a flag for its encoder, which a sender of pre-encoded or forwarded media never uses)."""
    internals: Any = sender
    internals._send_keyframe = on_keyframe_request


def attach_forwarding_sender(
    sender: RTCRtpSender, kind: str, on_keyframe_request: Callable[[], None]
) -> SenderState:
    """Prepare a sender for forwarded packets: an idle track, and keyframe requests (PLI/FIR from
    the subscriber) routed to ``on_keyframe_request`` instead of an encoder that does not exist."""
    sender.replaceTrack(IdleTrack(kind))
    route_keyframe_requests(sender, on_keyframe_request)
    return SenderState(sender)


# ------------------------------------------------------------------ ICE port range

PortRange = tuple[int, int]
"""First and last UDP port (inclusive) ICE sockets may use."""


class IcePortsExhausted(OSError):
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


def observe_sender_feedback(
    sender: RTCRtpSender, on_remb: Callable[[int], None], on_loss: Callable[[float], None]
) -> None:
    """Show the relay what a subscriber says about what one sender sends it: each REMB that
    lists the sender's SSRC (``on_remb``, bit/s, an estimate for the subscriber's whole
    downlink) and the fraction lost in each receiver report about it (``on_loss``, 0 to 1).
    aiortc's own handling still runs afterwards (round-trip time, NACKs, PLIs); its REMB
    handling only feeds an encoder, which a forwarding sender never has."""
    internals: Any = sender
    handle = internals._handle_rtcp_packet
    ssrc: int = internals._ssrc

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            with contextlib.suppress(ValueError):
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
                if ssrc in ssrcs:
                    on_remb(bitrate)
        elif isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            for report in packet.reports:
                if report.ssrc == ssrc:
                    on_loss(report.fraction_lost / 256)
        await handle(packet)

    internals._handle_rtcp_packet = handle_rtcp_packet


class UpstreamRemb:
    """The REMB the relay sends one publisher. aiortc's estimator (fed by ``tap_receiver``)
    measures the upstream link and sends REMB through the receiver's ``_send_rtcp``; this
    wraps that method so each REMB's bitrate passes through ``cap`` (the relay's own estimate in,
    what the subscribers can take out), whoever builds the packet."""

    def __init__(self, receiver: RTCRtpReceiver, cap: Callable[[int], int]) -> None:
        internals: Any = receiver
        self._receiver = internals
        self._send: Callable[[Any], Coroutine[Any, Any, None]] = internals._send_rtcp
        self._cap = cap
        self.own_estimate: int | None = None
        """aiortc's last estimate of the upstream link, in bit/s."""
        self.sent: int | None = None
        """The last bitrate sent to the publisher."""
        self._ssrcs: list[int] = []
        internals._send_rtcp = self._send_rtcp

    async def _send_rtcp(self, packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                pass
            else:
                self.own_estimate, self._ssrcs = bitrate, ssrcs
                packet = self._remb(self._cap(bitrate), ssrcs, packet.ssrc)
        await self._send(packet)

    def resend(self) -> None:
        """Send the capped estimate now (a subscriber's estimate moved), once aiortc has sent
        one of its own (before that, neither the upstream estimate nor the SSRCs are known)."""
        rtcp_ssrc = self._receiver._RTCRtpReceiver__rtcp_ssrc
        if self.own_estimate is None or not self._ssrcs or rtcp_ssrc is None:
            return
        packet = self._remb(self._cap(self.own_estimate), self._ssrcs, rtcp_ssrc)
        spawn(self._send(packet), what="REMB")

    def _remb(self, bitrate: int, ssrcs: list[int], rtcp_ssrc: int) -> RtcpPsfbPacket:
        self.sent = bitrate
        fci = pack_remb_fci(bitrate, ssrcs)
        return RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci)
