"""Every aiortc and aioice internal the relay touches, and nothing else.

aiortc is built to decode what it receives and encode what it sends. The relay forwards RTP packets
instead, so it needs a few private entry points. They live here, behind small functions, so that an
aiortc upgrade breaks ``tests/signaling/test_aiortc_hooks.py`` (the contract tests), not a call. The pinned
version is in ``pyproject.toml``. Import from this package: its modules are split by concern
(``receive``, ``sender``, ``feedback``, ``load_generator``, ``ice``) and may move.

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
- :func:`ice_ports_in`: bind the ICE sockets gathered inside it on ports of a range."""

from __future__ import annotations

from aiortc.clock import current_ntp_time

from .feedback import UpstreamRemb, observe_sender_feedback
from .ice import (
    IcePortBinding,
    IcePortsExhausted,
    PortRange,
    bind_udp_in_range,
    ice_ports_in,
    set_host_addresses,
)
from .load_generator import DatagramFilter, ReceiverFeedback, count_rtp_datagrams, filter_datagrams
from .receive import PacketHandler, decoder_running, request_keyframe, tap_receiver
from .sender import (
    HISTORY_SIZE,
    IdleTrack,
    SenderState,
    attach_forwarding_sender,
    observe_nacks,
    route_keyframe_requests,
)

__all__ = [
    "HISTORY_SIZE",
    "DatagramFilter",
    "IcePortBinding",
    "IcePortsExhausted",
    "IdleTrack",
    "PacketHandler",
    "PortRange",
    "ReceiverFeedback",
    "SenderState",
    "UpstreamRemb",
    "attach_forwarding_sender",
    "bind_udp_in_range",
    "count_rtp_datagrams",
    "current_ntp_time",
    "decoder_running",
    "filter_datagrams",
    "ice_ports_in",
    "observe_nacks",
    "observe_sender_feedback",
    "request_keyframe",
    "route_keyframe_requests",
    "set_host_addresses",
    "tap_receiver",
]
