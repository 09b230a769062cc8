"""Bandwidth feedback around the relay: what subscribers say about each sender (REMB, loss), and
the REMB the relay sends each publisher, capped by what its subscribers can take."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from ..tasks import spawn

__all__ = ["UpstreamRemb", "observe_sender_feedback"]


def observe_sender_feedback(
    sender: RTCRtpSender, on_remb: Callable[[int], None], on_loss: Callable[[int, int], None]
) -> None:
    """Show the relay what a subscriber says about what one sender sends it: each REMB that
    lists the sender's SSRC (``on_remb``, bit/s, an estimate for the subscriber's whole
    downlink) and the loss counters of each receiver report about it (``on_loss``: cumulative
    packets lost, retransmissions that arrived deducted, and the extended highest sequence
    number; the report's own fraction lost covers whatever few packets arrived since the last
    report, which a NACK's compound RTCP makes a handful, so it reads 33% for one lost of three).
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
                    on_loss(report.packets_lost, report.highest_sequence)
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
