"""Which receiver an incoming RTP packet belongs to: aiortc's router, less one guess.

aiortc's ``RtpRouter`` routes a packet by its SSRC, and a packet of an SSRC it has not been told
about to the one receiver of its payload type, binding that SSRC to it for good. Every video
m-line here has the same payload type (one codec per kind), so when a participant starts a
screen share, the first screen packets, sent as soon as the participant has answered and before
the relay has applied that answer, were bound to the participant's *camera* receiver: screen
packets went out on every subscriber's camera m-line, with another stream's sequence numbers, and
their decoders stalled for seconds (seen in about half the runs of a share).

:class:`SignalledRtpRouter` keeps the guess only for a receiver that has no SSRC yet (an answer
without ``a=ssrc`` lines): a receiver already fed by one stream never adopts a stranger. The
stranger's packets are dropped until its own receiver is registered (the share's keyframe is
asked for again by then). Installed for every peer connection created after
:func:`keep_streams_apart` (the relay's, and the Python participants').
"""

from __future__ import annotations

from typing import Any

import aiortc.rtcdtlstransport as dtls
from aiortc.rtp import RtpPacket

__all__ = ["SignalledRtpRouter", "keep_streams_apart"]


class SignalledRtpRouter(dtls.RtpRouter):
    """aiortc's router, except that an unknown SSRC never joins a receiver that has one."""

    def route_rtp(self, packet: RtpPacket) -> Any:
        known = self.ssrc_table.get(packet.ssrc)
        candidates = self.payload_type_table.get(packet.payload_type, set())
        if known is not None:  # as aiortc: the SSRC's receiver, if it takes this payload type
            return known if known in candidates else None
        if len(candidates) != 1:
            return None
        (receiver,) = candidates
        if receiver in self.ssrc_table.values():
            return None  # fed by its own stream already: this one is someone else's
        self.ssrc_table[packet.ssrc] = receiver
        return receiver


def keep_streams_apart() -> None:
    """Make every DTLS transport created from now on route with :class:`SignalledRtpRouter`
    (idempotent; aiortc looks the router class up when it creates a transport)."""
    dtls.RtpRouter = SignalledRtpRouter  # type: ignore[misc]
