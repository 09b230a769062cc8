"""The relay's send path: aiortc senders that never encode, whose RTP packets the relay writes
itself (SRTP-protected with the sender's keys), answering NACKs from their history."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from struct import pack_into
from typing import Any

from aioice.ice import StunProtocol
from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.clock import current_ntp_time
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import (
    RTP_HISTORY_SIZE,
)
from pylibsrtp._binding import ffi
from pylibsrtp._binding import lib as srtp_lib

from ..tasks import spawn

__all__ = [
    "HISTORY_SIZE",
    "IdleTrack",
    "SenderState",
    "attach_forwarding_sender",
    "observe_nacks",
    "route_keyframe_requests",
]

HISTORY_SIZE: int = RTP_HISTORY_SIZE
"""Packets aiortc keeps per sender for retransmission."""


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
        """Called with a sequence number the subscriber NACKed that was never sent to it: the
        relay may not have it either, and can ask upstream."""
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
        elif self.on_missing is not None and (
            entry is None or not 0 < (entry[1] - sequence_number) & 0xFFFF < 0x8000
        ):
            # Its slot holds nothing or an older packet: never sent to this subscriber. A slot
            # holding a newer packet means it was sent and left the history (an overloaded
            # subscriber re-asking for it): the publisher's copy would be as late, so nothing
            # is asked upstream.
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


def observe_nacks(sender: RTCRtpSender, on_nack: Callable[[int], None]) -> None:
    """Call ``on_nack(sequence_number)`` for each packet the remote side NACKs on this sender,
    before aiortc retransmits it (tests watch a publisher's NACKs with it)."""
    internals: Any = sender
    retransmit = internals._retransmit

    async def observed(sequence_number: int) -> None:
        on_nack(sequence_number)
        await retransmit(sequence_number)

    internals._retransmit = observed
