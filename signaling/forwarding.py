"""Packet-level media forwarding: one publisher's RTP to many subscribers, never decoded.

A :class:`Publication` is one track a participant sends (audio or video). An :class:`Outbound` is one
m-line of a subscriber's peer connection; it is bound to at most one publication at a time and
reused when that publication ends. Each forwarded packet keeps its payload byte for byte; only the
header changes: SSRC, sequence number and timestamp (shifted by a per-binding offset, so losses stay
visible and NACKs stay meaningful) and the MID extension.

A subscriber starts on a keyframe: until one arrives its video packets are dropped and the publisher
is asked for a keyframe again every ``KEYFRAME_RETRY_SECONDS``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Literal

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import RtpPacket

from .aiortc_hooks import (
    UpstreamRemb,
    attach_forwarding_sender,
    observe_sender_feedback,
    request_keyframe,
    tap_receiver,
)
from .aiortc_hooks.feedback import Uplink, shared_uplink
from .aiortc_hooks.red import RED_PAYLOAD_TYPE, unwrap_red
from .bandwidth import Downlink, LossBasedLimit, UpstreamBitrate, plan_stream
from .loss_recovery import relay_nack_policy
from .metrics import FORWARDED
from .protocol_media import Source
from .speaker import LevelCounter
from .tasks import spawn
from .vp8_layers import ALL_LAYERS, LayerRates, LayerSelector, Vp8Descriptor, parse_vp8_descriptor

__all__ = [
    "KEYFRAME_RETRY_SECONDS",
    "Outbound",
    "Publication",
    "is_vp8_keyframe_start",
    "kind_of",
    "source_of",
]

logger = logging.getLogger(__name__)

Kind = Literal["audio", "video"]


def kind_of(source: Source) -> Kind:
    """``audio`` for a microphone or a screen's tab audio, ``video`` for a camera or a screen."""
    return "audio" if source in ("microphone", "screen_audio") else "video"


def source_of(kind: Kind) -> Source:
    """The source a participant's join publishes for ``kind``: its microphone or its camera."""
    return "microphone" if kind == "audio" else "camera"


KEYFRAME_RETRY_SECONDS = 0.3
"""Least time between two keyframe requests to one publisher (subscribers' PLIs are merged)."""


def is_vp8_keyframe_start(payload: bytes) -> bool:
    """Whether an RTP payload is the first packet of a VP8 keyframe (RFC 7741 sections 4.2-4.3)."""
    if len(payload) < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x0F:  # S bit set and partition index 0: start of a frame
        return False
    index = 1
    if first & 0x80:  # X: extension byte follows
        ext = payload[1]
        index = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= index:
                return False
            index += 2 if payload[index] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            index += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            index += 1
    return len(payload) > index and not payload[index] & 0x01  # P bit clear: keyframe


class Publication:
    """One published track, fanned out to every bound :class:`Outbound`."""

    source: Source = "camera"
    """What it carries (``camera``, ``microphone``, ``screen``, ``screen_audio``); set by the
    room after creation, so that subclasses keep the constructor's signature."""
    levels: LevelCounter | None = None
    """For a microphone: its packets' RFC 6464 audio levels since the speaker detector's last
    tick (None for every other source: screen audio is not speech)."""

    def __init__(
        self,
        participant_id: str,
        kind: Kind,
        receiver: RTCRtpReceiver,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.participant_id = participant_id
        """Who publishes it."""
        self.kind: Kind = kind
        """``audio`` or ``video``."""
        self.source = source_of(kind)
        self.outbounds: list[Outbound] = []
        """Subscribers' m-lines it is forwarded to."""
        self._receiver = receiver
        self._clock = clock
        self._media_ssrc: int | None = None
        self._last_keyframe_request = -1e9
        self._closed = False
        self.paused = False
        """A host muted the publisher: packets arrive but are not forwarded."""
        self.layer_rates = LayerRates(clock)
        """Bitrate of each VP8 temporal layer (what each subscriber's share buys)."""
        self.upstream = UpstreamBitrate(clock=clock)
        """What its subscribers can take (the lowest of them, above the floor)."""
        # One REMB for all the publisher's videos: a browser applies each to its whole budget.
        self._uplink = self.join_uplink(receiver)
        if kind == "video":
            self._uplink.budget.add(self)
        budget = self._uplink.budget
        self._remb = UpstreamRemb(receiver, budget.cap, self._uplink, budget.ssrcs)
        # NACKs to the publisher, repeated until the packet arrives; a packet given up means
        # a broken picture for every subscriber: ask for a keyframe at once.
        self._recovery = tap_receiver(
            receiver,
            self._on_packet,
            nack_policy=relay_nack_policy(),
            on_given_up=lambda _ssrc: self.request_keyframe(),
        )

    @property
    def receiver(self) -> RTCRtpReceiver:
        """The publisher's m-line it arrives on."""
        return self._receiver

    def join_uplink(self, receiver: RTCRtpReceiver) -> Uplink:
        """The publisher's uplink this publication is part of: the one of its transport, shared
        by all the publisher's publications."""
        return shared_uplink(receiver)

    @property
    def subscribed(self) -> bool:
        """Someone receives it (its subscribers' limit counts in the publisher's budget)."""
        return bool(self.outbounds)

    @property
    def media_ssrc(self) -> int | None:
        """The SSRC its packets arrive with (None before the first)."""
        return self._media_ssrc

    def request_keyframe(self, *, urgent: bool = False) -> None:
        """Ask the publisher for a keyframe, at most once per ``KEYFRAME_RETRY_SECONDS`` (an
        ``urgent`` request, for a subscriber that just became able to receive, goes at once)."""
        if self.kind != "video" or self._media_ssrc is None or self._closed:
            return
        now = self._clock()
        if not urgent and now - self._last_keyframe_request < KEYFRAME_RETRY_SECONDS:
            return
        self._last_keyframe_request = now
        spawn(request_keyframe(self._receiver, self._media_ssrc), what="keyframe request")

    def recover(self, sequence_number: int) -> None:
        """A subscriber NACKed this packet (publisher's numbering) and the relay has not got it:
        NACK it upstream now, if it is still being asked for."""
        if self._recovery is not None and self._media_ssrc is not None:
            self._recovery.request(self._media_ssrc, sequence_number)

    def subscriber_bitrate(self, outbound: Outbound, bitrate: float | None) -> None:
        """What one subscriber can take of this stream now (None: it no longer receives it);
        the publisher hears at once when its whole budget moved enough."""
        if bitrate is None:
            self.upstream.forget(outbound)
        else:
            self.upstream.report(outbound, bitrate)
        if self._uplink.budget.changed() and not self._closed:
            self._remb.resend()

    def close(self) -> None:
        self._closed = True
        self._uplink.budget.remove(self)
        if self._recovery is not None:
            self._recovery.close()
        for outbound in list(self.outbounds):
            outbound.unbind()

    async def _on_packet(self, packet: RtpPacket) -> None:
        self._media_ssrc = packet.ssrc
        if self._closed or self.paused:
            return
        levels = self.levels
        if levels is not None:  # a microphone: two integer increments, never a decode
            level = packet.extensions.audio_level
            if level is not None:
                levels.add(level[1])
        if not self.outbounds:
            return
        descriptor: Vp8Descriptor | None = None
        keyframe = False
        if self.kind == "video":  # parsed once here, not per subscriber
            descriptor = parse_vp8_descriptor(packet.payload)
            keyframe = descriptor.keyframe
            self.layer_rates.add(descriptor.tid, len(packet.payload))
        templates: dict[bool, bytes | None] = {}  # serialized once per variant: RED or plain
        plain: RtpPacket | None = None
        red = packet.payload_type == RED_PAYLOAD_TYPE
        for outbound in self.outbounds:
            sent = packet
            if red and not outbound.takes_red:  # its answer dropped RED: the primary block only
                plain = plain or unwrap_red(packet)
                if plain is None:
                    continue
                sent = plain
            variant = sent is packet
            template = templates.get(variant)
            if template is None:
                template = templates[variant] = outbound.template(sent)
                if template is None:
                    continue
            outbound.forward(sent, template, keyframe, descriptor)


class Outbound:
    """One m-line a subscriber receives on; forwards the packets of the publication bound to it."""

    def __init__(self, kind: Kind, sender: RTCRtpSender, downlink: Downlink | None = None) -> None:
        self.kind: Kind = kind
        """``audio`` or ``video``; only publications of the same kind bind to it."""
        self.publication: Publication | None = None
        """What it forwards now; None while idle (its m-line is then ``inactive``)."""
        self.idle_since: int | None = None
        """Offer revision at which its m-line went idle (None while bound); the session reuses
        it once the client has answered a later offer."""
        self.takes_red = False
        """Whether the subscriber's answer kept RED here (else RED arrives unwrapped)."""
        self._sender = attach_forwarding_sender(sender, kind, self._on_keyframe_request)
        self._sender.on_missing = self._on_nack_missing
        self._started = False
        self._asked_when_ready = False
        self._seq_offset = 0
        self._ts_offset = 0
        self._next_seq = random.randint(0, 0xFFFF)  # noqa: S311 - RTP initial values need no CSPRNG
        self._next_ts = random.randint(0, 0xFFFFFFFF)  # noqa: S311
        self._last_ts_out = self._next_ts
        self._last_seq_in = 0
        self._last_seq_out = 0
        self.layers = LayerSelector()
        """Which VP8 temporal layers this subscriber gets, and the rewriting that hides the rest."""
        self.downlink = downlink if downlink is not None else Downlink()
        """The subscriber's downlink, shared by all its m-lines (its REMB covers them all)."""
        self.downlink.streams.append(self)
        self._downlink_share: float | None = None
        self._loss_limit = LossBasedLimit()
        observe_sender_feedback(sender, self.downlink.on_remb, self._on_loss)

    def bind(self, publication: Publication) -> None:
        """Start forwarding ``publication`` (from its next keyframe, for video)."""
        self.unbind()
        self.publication = publication
        self._started = False
        self._asked_when_ready = False
        publication.outbounds.append(self)
        self.layers = LayerSelector()
        self._loss_limit = LossBasedLimit()
        self.downlink.share()
        publication.request_keyframe()

    def unbind(self) -> None:
        """Stop forwarding; the outbound can be bound again later."""
        if self.publication is not None:
            self.publication.outbounds.remove(self)
            self.publication.subscriber_bitrate(self, None)
            self.publication = None
            self.downlink.share()
        if self._started:
            # Continue this m-line's sequence and timestamps where they stopped: the
            # subscriber's jitter buffer sees one stream, not a jump backwards.
            self._next_seq = (self._last_seq_out + 1) & 0xFFFF
            self._next_ts = (self._last_ts_out + 3000) & 0xFFFFFFFF
        self._started = False

    def template(self, packet: RtpPacket) -> bytes | None:
        """The packet serialized once for every subscriber: same payload and header extensions
        (abs-send-time, audio level; the extension ids are the same on every m-line, all offered
        by the relay), no MID (subscribers demultiplex on the SSRC signalled in the SDP).
        SSRC, sequence number and timestamp are placeholders that :meth:`forward` overwrites."""
        if not self._sender.ready():
            return None
        out = RtpPacket(
            payload_type=packet.payload_type, marker=packet.marker, payload=packet.payload
        )
        out.padding_size = packet.padding_size
        out.extensions.abs_send_time = packet.extensions.abs_send_time
        out.extensions.audio_level = packet.extensions.audio_level
        data: bytes = out.serialize(self._sender.extensions_map())
        return data

    def forward(
        self,
        packet: RtpPacket,
        template: bytes,
        keyframe: bool,
        descriptor: Vp8Descriptor | None = None,
    ) -> None:
        """Send one publisher packet to this subscriber (from a keyframe on, for video; only
        the temporal layers it can take, once its feedback says it cannot take them all)."""
        if not self._started:
            if not self._sender.ready():
                return
            if self.kind == "video" and not keyframe:
                assert self.publication is not None
                # The keyframe asked for at binding usually arrives before the subscriber's
                # DTLS is up and is lost to it: ask again the moment it can receive.
                self.publication.request_keyframe(urgent=not self._asked_when_ready)
                self._asked_when_ready = True
                return
            self._seq_offset = (self._next_seq - packet.sequence_number) & 0xFFFF
            self._ts_offset = (self._next_ts - packet.timestamp) & 0xFFFFFFFF
            self._started = True
        sequence_number = packet.sequence_number + self._seq_offset
        layers = self.layers
        if layers.engaged and descriptor is not None:
            payload_at = len(template) - len(packet.payload) - packet.padding_size
            admitted = layers.admit(packet.sequence_number, descriptor, template, payload_at)
            if admitted is None:
                return
            shift, template = admitted
            sequence_number -= shift
        else:
            sequence_number -= layers.seq_shift
        sequence_number &= 0xFFFF
        self._last_seq_in = packet.sequence_number
        self._last_seq_out = sequence_number
        timestamp = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        self._last_ts_out = timestamp
        try:
            self._sender.send(template, sequence_number, timestamp, len(packet.payload))
        except ConnectionError:
            return
        # Plain integers, read at scrape time: a metrics library call here would cost more.
        FORWARDED.packets += 1
        FORWARDED.bytes += len(template)

    def _on_nack_missing(self, sequence_number: int) -> None:
        """The subscriber NACKed a packet never sent to it: maybe the relay never got it."""
        if self.publication is not None and self._started:
            # The inverse of forward()'s rewrite (update both together).
            shifted = (sequence_number - self._seq_offset) & 0xFFFF
            self.publication.recover(self.layers.input_sequence_number(shifted))

    def _on_keyframe_request(self) -> None:
        if self.publication is not None:
            self.publication.request_keyframe()

    @property
    def receiving(self) -> bool:
        """Bound to a publication (it takes a share of the subscriber's downlink)."""
        return self.publication is not None

    def set_downlink_share(self, bitrate: float) -> None:
        """This stream's share of the subscriber's REMB (see :class:`Downlink`)."""
        self._downlink_share = bitrate
        self._apply_bandwidth()

    def _on_loss(self, lost: int, highest: int) -> None:
        """A receiver report from the subscriber about this stream (cumulative counters)."""
        if self.kind == "video" and self.publication is not None:
            sending = self.publication.layer_rates.cumulative(ALL_LAYERS)
            if sending > 0:
                self._loss_limit.on_report(lost, highest, sending)
                self._apply_bandwidth()

    def _apply_bandwidth(self) -> None:
        """Choose the layers that fit what the subscriber can take, and tell the publication."""
        publication = self.publication
        if publication is None or self.kind != "video":
            return
        rates = publication.layer_rates
        plan = plan_stream(self._downlink_share, self._loss_limit.limit, rates, self.layers.current)
        if plan is None:
            return
        self.layers.set_target(plan.layers, top=rates.top_layer)
        publication.subscriber_bitrate(self, plan.upstream)
