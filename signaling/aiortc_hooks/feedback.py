"""Bandwidth feedback around the relay: what subscribers say about each sender (REMB, loss), and
the REMB the relay sends each publisher, one figure for its whole uplink, capped by what its
subscribers can take."""

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

from ..bandwidth import UplinkBudget
from ..tasks import spawn

__all__ = ["Uplink", "UpstreamRemb", "observe_sender_feedback", "shared_uplink"]


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


class Uplink:
    """Everything one publisher sends the relay on one transport (all its m-lines are bundled),
    as one estimate and one REMB. aiortc gives each video receiver an estimator of its own, fed
    only that receiver's packets, whose estimate stays under 1.5 x that one stream's bitrate, and
    a browser applies every REMB to its whole send budget. Measured with aiortc peers (a camera at
    1.2 Mbit/s, a screen at 0.4): REMBs alternated between 1.2-1.5 Mbit/s listing the camera and
    0.49-0.6 listing the screen; with a subscriber able to take 576 kbit/s of the two, each asked
    for 288. Here the receivers share one estimator (libwebrtc's receive side keeps one per
    transport too), and every REMB carries :attr:`budget`'s figure for all the publisher's
    videos."""

    def __init__(self) -> None:
        self.budget = UplinkBudget()
        """What the publisher's subscribers can take, all its videos together."""
        self.estimator: Any = None
        """aiortc's ``RemoteBitrateEstimator`` every video receiver of the transport feeds."""
        self.own_estimate: int | None = None
        """The estimator's last estimate of the whole uplink, in bit/s."""
        self.listed: list[int] = []
        """The SSRCs the estimator listed last."""
        self.sent: int | None = None
        """The last bitrate sent to the publisher."""
        self.via: tuple[Callable[[Any], Coroutine[Any, Any, None]], int] | None = None
        """The RTCP path (a receiver's send, its RTCP SSRC) aiortc's last REMB took."""

    def share_estimator(self, receiver: Any) -> None:
        """Make a video receiver feed the uplink's estimator (the first one's own, so an estimate
        made on the camera goes on when a screen joins it)."""
        name = "_RTCRtpReceiver__remote_bitrate_estimator"
        own = getattr(receiver, name, None)
        if own is None:  # audio: aiortc estimates on video only
            return
        if self.estimator is None:
            self.estimator = own
        else:
            setattr(receiver, name, self.estimator)


def shared_uplink(receiver: RTCRtpReceiver) -> Uplink:
    """The :class:`Uplink` of the transport ``receiver`` is on (one per publisher's peer
    connection), kept on the transport itself so that it goes with it."""
    transport: Any = receiver.transport
    uplink: Uplink | None = getattr(transport, "_meetnow_uplink", None)
    if uplink is None:
        uplink = Uplink()
        transport._meetnow_uplink = uplink
    return uplink


class UpstreamRemb:
    """The REMB the relay sends one publisher through one of its receivers. aiortc's estimator
    (fed by ``tap_receiver``) measures the upstream link and sends REMB through the receiver's
    ``_send_rtcp``; this wraps that method so each REMB's bitrate passes through ``cap`` (the
    relay's own estimate in, what the subscribers can take out) and lists ``ssrcs()``, whoever
    builds the packet. Receivers given the same ``uplink`` share its estimator and state; without
    one, the receiver is an uplink of its own."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        cap: Callable[[int], int],
        uplink: Uplink | None = None,
        ssrcs: Callable[[], list[int]] | None = None,
    ) -> None:
        internals: Any = receiver
        self.uplink = uplink if uplink is not None else Uplink()
        self.uplink.share_estimator(internals)
        self._send: Callable[[Any], Coroutine[Any, Any, None]] = internals._send_rtcp
        self._cap = cap
        self._ssrcs = ssrcs
        internals._send_rtcp = self._send_rtcp

    @property
    def own_estimate(self) -> int | None:
        """aiortc's last estimate of the upstream link, in bit/s."""
        return self.uplink.own_estimate

    @property
    def sent(self) -> int | None:
        """The last bitrate sent to the publisher."""
        return self.uplink.sent

    async def _send_rtcp(self, packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                pass
            else:
                uplink = self.uplink
                uplink.own_estimate, uplink.listed = bitrate, ssrcs
                uplink.via = (self._send, packet.ssrc)
                packet = self._remb(self._cap(bitrate), packet.ssrc)
        await self._send(packet)

    def resend(self) -> None:
        """Send the capped estimate now (a subscriber's estimate moved), once aiortc has sent
        one of its own (before that, neither the upstream estimate nor the SSRCs are known)."""
        own, via = self.uplink.own_estimate, self.uplink.via
        if own is None or via is None:
            return
        send, rtcp_ssrc = via
        spawn(send(self._remb(self._cap(own), rtcp_ssrc)), what="REMB")

    def _remb(self, bitrate: int, rtcp_ssrc: int) -> RtcpPsfbPacket:
        self.uplink.sent = bitrate
        listed = (self._ssrcs() if self._ssrcs is not None else []) or self.uplink.listed
        fci = pack_remb_fci(bitrate, listed)
        return RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci)
