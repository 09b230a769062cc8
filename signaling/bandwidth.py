"""Bandwidth that follows each receiver: subscribers' feedback in, one REMB per publisher out.

Without simulcast a publisher sends one stream to everyone, so it should send what its subscribers
can take. Each subscriber's browser estimates its whole downlink and says so in REMB (RTCP PSFB,
one number for the transport, listing the SSRCs it covers); its receiver reports say what share of
each stream was lost. :class:`Downlink` turns that into a bitrate for each video stream the
subscriber receives (audio is served first: its share is set aside before video is split).
:class:`UpstreamBitrate` keeps those per-stream bitrates for one publication: its subscribers can
take the lowest of them, but never less than ``REMB_FLOOR_BPS`` (one subscriber on a poor link
must not ruin the picture for everyone: below the floor it gets fewer temporal layers, see
:mod:`signaling.vp8_layers`). A browser reads a REMB as the estimate for its whole send budget,
whatever SSRCs it lists, so :class:`UplinkBudget` asks a publisher for one figure covering all its
videos (a camera and a screen): the sum of what each one's subscribers can take, never above the
relay's own estimate of the whole uplink.

A receiver's REMB is bounded by what it receives: Chromium's (and aiortc's) rate control never
estimates above 1.5 x the incoming bitrate + 10 kbit/s. A subscriber sent only some temporal layers
therefore asks for little more than those, whatever its link could take; read as its limit, that
would keep it on those layers for good and pull the publisher down to the floor, round after round
(measured: 52-102 kbit/s per video on links where peer to peer ran 600-1100). So
:func:`plan_stream` reads a REMB as a limit only when it is below what the subscriber receives
(its link is full); otherwise the subscriber may step up one layer and does not hold the publisher
back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "AUDIO_SHARE_BPS",
    "CONGESTED_BELOW",
    "LOSS_MIN_PACKETS",
    "REMB_FLOOR_BPS",
    "Downlink",
    "DownlinkStream",
    "LayerBitrates",
    "LossBasedLimit",
    "StreamPlan",
    "UplinkBudget",
    "UplinkStream",
    "UpstreamBitrate",
    "plan_stream",
]

REMB_FLOOR_BPS = 150_000
"""The least the relay asks a publisher for because of one subscriber (a 640x480 VP8 stream is
still watchable there; below it the subscriber loses frame rate, not picture quality for all)."""

AUDIO_SHARE_BPS = 40_000
"""Set aside per received audio stream before the downlink is split among videos (Opus at up to
32 kbit/s plus headers): audio always goes first."""

ESTIMATE_TTL_SECONDS = 10.0
"""A subscriber that stopped sending feedback stops limiting its publishers after this long."""

SIGNIFICANT_CHANGE = 0.1
"""A lowest estimate that moved by more than this fraction is sent to the publisher at once,
without waiting for the relay's next own REMB."""

LOSS_HIGH = 0.10
"""Reported loss above which a stream's bitrate is cut (as in WebRTC's loss-based controller)."""
LOSS_LOW = 0.02
"""Reported loss under which a cut stream may grow again."""

LOSS_MIN_PACKETS = 50
"""Packets a loss figure covers at least: a receiver report's own fraction covers the packets
since the previous report, and a browser sends one with every NACK, so at the bitrates of a poor
link it read 10-33% from one or two packets of 2% random loss, and cut streams that were fine."""

CONGESTED_BELOW = 0.9
"""A subscriber's share of its REMB under this fraction of what it receives of a stream says
its downlink is full (an overuse makes the REMB 0.85 x the incoming bitrate); between this and
1.0 the layers it gets are held, at or above 1.0 it may take one more."""

ALL_LAYERS = 3
"""Every temporal layer (as :data:`signaling.vp8_layers.ALL_LAYERS`)."""


class LayerBitrates(Protocol):
    """A publication's bitrate per temporal layer (:class:`~signaling.vp8_layers.LayerRates`)."""

    @property
    def top_layer(self) -> int:
        """Highest layer the stream has (0: no temporal layers)."""

    def cumulative(self, tid: int) -> float:
        """Bit/s of layers 0 to ``tid``."""

    def highest_within(self, bitrate: float) -> int:
        """The most layers that fit ``bitrate`` (``ALL_LAYERS`` when all do, never none)."""


class StreamPlan:
    """What one subscriber gets of one video stream, and what it asks of the publisher."""

    __slots__ = ("layers", "upstream")

    def __init__(self, layers: int, upstream: float) -> None:
        self.layers = layers
        """Highest temporal layer to forward (``ALL_LAYERS``: every one)."""
        self.upstream = upstream
        """Bit/s this subscriber lets the publisher send (see :class:`UpstreamBitrate`)."""


def plan_stream(
    remb_share: float | None, loss_limit: float | None, rates: LayerBitrates, current: int
) -> StreamPlan | None:
    """Layers and upstream ask for one subscriber of one video stream, from its share of its
    REMB, its loss-based limit and the layers it gets now (``current``); None without either."""
    full = rates.cumulative(ALL_LAYERS)
    receiving = rates.cumulative(current)
    if remb_share is None or remb_share < CONGESTED_BELOW * receiving:
        # No REMB, or a full downlink: the estimate is the limit, for the layers and upstream.
        limits = [b for b in (remb_share, loss_limit) if b is not None]
        if not limits:
            return None
        bitrate = min(limits)
        return StreamPlan(rates.highest_within(bitrate), bitrate)
    # The subscriber keeps up with what it gets: its REMB (bounded by that) limits nothing.
    reachable = receiving
    if remb_share >= receiving and current != ALL_LAYERS:
        step_up = current + 1 if current + 1 < rates.top_layer else ALL_LAYERS
        reachable = rates.cumulative(step_up)
    layers = rates.highest_within(max(remb_share, reachable))
    upstream = max(remb_share, full)
    if loss_limit is not None:
        layers = min(layers, rates.highest_within(loss_limit))
        upstream = min(upstream, loss_limit)
    return StreamPlan(layers, upstream)


class DownlinkStream(Protocol):
    """A stream a subscriber receives (an :class:`~signaling.forwarding.Outbound`)."""

    @property
    def kind(self) -> str:
        """``audio`` or ``video``."""

    @property
    def receiving(self) -> bool:
        """Bound to a publication: it takes part in the split."""

    def set_downlink_share(self, bitrate: float) -> None:
        """This stream's share of the subscriber's downlink estimate, in bit/s."""


class Downlink:
    """One subscriber's downlink: its latest REMB split among the streams it receives."""

    def __init__(self) -> None:
        self.streams: list[DownlinkStream] = []
        """Everything the subscriber receives on this peer connection."""
        self.estimate: int | None = None
        """The subscriber's last REMB, in bit/s (None before the first)."""

    def on_remb(self, bitrate: int) -> None:
        """A REMB from the subscriber. aiortc hands the same packet to every sender it lists,
        so a repeat of the current estimate is ignored."""
        if bitrate == self.estimate:
            return
        self.estimate = bitrate
        self.share()

    def video_share(self) -> float | None:
        """Bit/s for each video stream: the estimate less the audio streams' shares, split
        evenly (None before any estimate or without video)."""
        if self.estimate is None:
            return None
        receiving = [stream for stream in self.streams if stream.receiving]
        videos = sum(1 for stream in receiving if stream.kind == "video")
        if not videos:
            return None
        audio = (len(receiving) - videos) * AUDIO_SHARE_BPS
        return max(0.0, self.estimate - audio) / videos

    def share(self) -> None:
        """Tell every video stream its share (after an estimate or a change of streams)."""
        share = self.video_share()
        if share is None:
            return
        for stream in self.streams:
            if stream.kind == "video" and stream.receiving:
                stream.set_downlink_share(share)


class LossBasedLimit:
    """A cap for one stream from the loss its subscriber reports: cut when over ``LOSS_HIGH``
    (to what was sent less half the loss), grown 8% a report while under ``LOSS_LOW``, gone once
    above what the stream needs. A downlink that drops packets is full, whatever REMB says."""

    def __init__(self) -> None:
        self.limit: float | None = None
        """Bit/s, None while loss is low."""
        self._counted: tuple[int, int] | None = None  # (lost, highest) at the window's start

    def on_report(self, lost: int, highest: int, sending: float) -> float | None:
        """A receiver report's cumulative counters (packets lost, extended highest sequence
        number): once they cover ``LOSS_MIN_PACKETS`` since the last figure, the loss among
        those packets goes to :meth:`on_loss`."""
        if self._counted is None:
            self._counted = (lost, highest)
            return self.limit
        expected = highest - self._counted[1]
        if expected < 0:  # the stream started over (a new binding): count from here
            self._counted = (lost, highest)
        elif expected >= LOSS_MIN_PACKETS:
            fraction = min(1.0, max(0.0, (lost - self._counted[0]) / expected))
            self._counted = (lost, highest)
            return self.on_loss(fraction, sending)
        return self.limit

    def on_loss(self, fraction: float, sending: float) -> float | None:
        """A receiver report: ``fraction`` of packets lost since the last one while about
        ``sending`` bit/s (everything the stream could carry) was forwarded."""
        if fraction > LOSS_HIGH:
            base = sending if self.limit is None else min(self.limit, sending)
            self.limit = base * (1 - fraction / 2)
        elif fraction < LOSS_LOW and self.limit is not None:
            self.limit *= 1.08
            if self.limit > sending:
                self.limit = None
        return self.limit


class UpstreamBitrate:
    """The bitrate a publication's subscribers can take, and what the relay's REMB asks for."""

    def __init__(
        self, floor: int = REMB_FLOOR_BPS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.floor = floor
        self._clock = clock
        self._estimates: dict[int, tuple[float, float]] = {}
        self._sent_lowest: float | None = None

    def report(self, subscriber: object, bitrate: float) -> bool:
        """One subscriber's bitrate for this stream; True when the lowest moved enough that the
        publisher should hear about it now."""
        self._estimates[id(subscriber)] = (bitrate, self._clock())
        return self._changed()

    def forget(self, subscriber: object) -> bool:
        """The subscriber no longer receives this stream."""
        self._estimates.pop(id(subscriber), None)
        return self._changed()

    def lowest(self) -> float | None:
        """The lowest estimate still fresh, in bit/s (None: no subscriber limits)."""
        now = self._clock()
        fresh = [b for b, at in self._estimates.values() if now - at <= ESTIMATE_TTL_SECONDS]
        return min(fresh) if fresh else None

    def cap(self, own_estimate: int) -> int:
        """What to ask the publisher for, given the relay's own upstream estimate."""
        lowest = self.lowest()
        self._sent_lowest = lowest
        if lowest is None:
            return own_estimate
        return int(min(own_estimate, max(self.floor, lowest)))

    def _changed(self) -> bool:
        lowest, sent = self.lowest(), self._sent_lowest
        if lowest is None or sent is None:
            return lowest != sent
        return abs(lowest - sent) > SIGNIFICANT_CHANGE * sent


class UplinkStream(Protocol):
    """A video a publisher sends (a :class:`~signaling.forwarding.Publication`)."""

    @property
    def upstream(self) -> UpstreamBitrate:
        """What its subscribers can take."""

    @property
    def subscribed(self) -> bool:
        """Someone receives it: its subscribers' limit counts toward the budget."""

    @property
    def media_ssrc(self) -> int | None:
        """The SSRC its packets arrive with (None before the first)."""


class UplinkBudget:
    """The one bitrate the relay asks of a publisher for everything it sends on its peer
    connection. WebRTC applies a REMB to the sender's whole budget and ignores the SSRCs it lists,
    so one REMB per video (each with that video's share) would cap the whole sender to one video's
    share, or make it follow whichever came last (a Chromium camera fell to 60-230 kbit/s for
    10 s and more when its owner started sharing a screen). The ask is the sum, over the videos
    someone receives, of what each one's subscribers can take (each at least the floor), and never
    above the relay's own estimate of the whole uplink; a video whose subscribers set no limit yet
    leaves the whole uplink's estimate."""

    def __init__(self, floor: int = REMB_FLOOR_BPS) -> None:
        self.floor = floor
        self.streams: list[UplinkStream] = []
        """The publisher's videos, received or not."""
        self._sent_total: float | None = None

    def add(self, stream: UplinkStream) -> None:
        if stream not in self.streams:
            self.streams.append(stream)

    def remove(self, stream: UplinkStream) -> None:
        if stream in self.streams:
            self.streams.remove(stream)

    def total(self) -> float | None:
        """Bit/s the subscribers of all received videos can take together (None: no limit, as
        when nobody receives anything, or some received video has no fresh estimate yet)."""
        total: float | None = None
        for stream in self.streams:
            if not stream.subscribed:
                continue  # a stopped share or a video nobody receives needs nothing
            lowest = stream.upstream.lowest()
            if lowest is None:
                return None
            total = (total or 0.0) + max(self.floor, lowest)
        return total

    def cap(self, own_estimate: int) -> int:
        """What to ask the publisher for, given the relay's own estimate of its whole uplink."""
        total = self.total()
        self._sent_total = total
        return own_estimate if total is None else int(min(own_estimate, total))

    def changed(self) -> bool:
        """Whether the total moved enough since the last ask that the publisher should hear
        about it now, without waiting for the relay's next own REMB."""
        total, sent = self.total(), self._sent_total
        if total is None or sent is None:
            return total != sent
        return abs(total - sent) > SIGNIFICANT_CHANGE * sent

    def ssrcs(self) -> list[int]:
        """The SSRCs of the publisher's videos, for the REMB's list."""
        return sorted({s.media_ssrc for s in self.streams if s.media_ssrc is not None})
