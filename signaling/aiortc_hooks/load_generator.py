"""The load generator's hooks: count SRTP datagrams without decrypting them and still send the
RTCP a browser would (:class:`ReceiverFeedback`), put every datagram through filters (its
network impairment), and packetize pre-encoded video with temporal layers (:func:`use_packetizer`)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, Protocol

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    pack_remb_fci,
)

from ..loss_recovery import BROWSER_NACKS, StreamRecovery
from ..tasks import spawn
from .receive import nack_sender

__all__ = [
    "DatagramFilter",
    "Packetizer",
    "ReceiverFeedback",
    "count_rtp_datagrams",
    "filter_datagrams",
    "use_packetizer",
]


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
            self._nacks = StreamRecovery(BROWSER_NACKS, nack_sender(internals))
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


class Packetizer(Protocol):
    """What aiortc asks of an encoder for pre-encoded media (``av.Packet`` from the track)."""

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        """RTP payloads of one encoded frame and its timestamp in the codec's clock."""


def use_packetizer(sender: RTCRtpSender, packetizer: Packetizer) -> None:
    """Packetize what this sender's (pre-encoded) track yields with ``packetizer`` instead of the
    encoder aiortc would create, whose ``pack()`` writes no temporal layer ids. Before the
    sender's first frame (aiortc creates its encoder only when it finds none)."""
    internals: Any = sender
    internals._RTCRtpSender__encoder = packetizer
