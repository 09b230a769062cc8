"""The relay's receive path: each decrypted RTP packet of a publisher, before aiortc's jitter
buffer, with the feedback aiortc would have sent (receiver reports, REMB, NACK), and no decoder."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
)

from ..loss_recovery import BROWSER_NACKS, NackPolicy, StreamRecovery
from ..tasks import spawn

__all__ = ["PacketHandler", "decoder_running", "request_keyframe", "tap_receiver"]

PacketHandler = Callable[[RtpPacket], Awaitable[None]]


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
        recovery = StreamRecovery(nack_policy or BROWSER_NACKS, nack_sender(internals), on_given_up)

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


def nack_sender(receiver: Any) -> Callable[[int, list[int]], None]:
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


def decoder_running(receiver: RTCRtpReceiver) -> bool:
    """Whether aiortc's decoder thread runs for this receiver (never, for a tapped one)."""
    internals: Any = receiver
    return internals._RTCRtpReceiver__decoder_thread is not None


async def request_keyframe(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the publisher for a keyframe (RTCP PLI)."""
    internals: Any = receiver
    await internals._send_rtcp_pli(media_ssrc)
