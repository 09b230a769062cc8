"""What a test or load-generator participant counts of one stream it receives.

Frames are counted where they arrive (a new RTP timestamp is a new frame), never decoded in the
load generator. Every figure of a measured window starts at :meth:`ReceivedStream.mark`, and the
window's end is given when it is read, so a stream that stops before the end is seen stopping.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc.rtp import RtpPacket

__all__ = ["CLOCK_RATES", "FREEZE_SECONDS", "ReceivedStream"]

FREEZE_SECONDS = 0.5
"""A gap between two video frames longer than this is a freeze; so is a window that ends this
long after the last frame."""

CLOCK_RATES = {"video": 90_000, "audio": 48_000}
"""RTP clock rate by kind (VP8 and Opus, the only codecs the relay negotiates)."""


@dataclass
class ReceivedStream:
    """What arrived from one other participant's track."""

    participant: str
    kind: str
    frames: int = 0
    """Frames counted (decoded ones, or distinct RTP timestamps in packet-counting mode)."""
    first_frame_at: float | None = None
    """``time.monotonic()`` of the first frame."""
    last_frame_at: float | None = None
    width: int = 0
    """Width of the last decoded video frame."""
    height: int = 0
    packets: int = 0
    """RTP packets counted since :meth:`mark` (packet-counting mode only)."""
    bytes: int = 0
    """RTP payload bytes counted (packet-counting mode only)."""
    lost: int = 0
    """Packets missing from the sequence since :meth:`mark` (packet-counting mode only)."""
    freezes: int = 0
    """Gaps of more than ``FREEZE_SECONDS`` between two video frames since :meth:`mark`; a
    trailing gap is added only when the window is read (:meth:`window_freezes`)."""
    freeze_seconds: float = 0.0
    """Total time spent in those gaps (within the window)."""
    marked_frames: int = 0
    """``frames`` when :meth:`mark` was last called."""
    marked_bytes: int = 0
    """``bytes`` when :meth:`mark` was last called."""
    marked_at: float | None = None
    """``time.monotonic()`` of the last :meth:`mark`: the start of the measured window."""
    sent_ticks: int = 0
    """RTP clock ticks the sender's timestamps advanced over the frames counted since
    :meth:`mark` (from the frame before each): how long the sender took to send them."""
    sent_steps: int = 0
    """Frames counted since :meth:`mark` that had a frame before them (``sent_ticks`` spans
    that many frame intervals)."""
    _last_timestamp: int | None = None
    _highest_seq: int | None = None

    @property
    def clock_rate(self) -> int:
        return CLOCK_RATES.get(self.kind, 90_000)

    def mark(self, now: float | None = None) -> None:
        """Start a measurement window at ``now``: frames, bytes, packets, loss and freezes count
        from here on."""
        self.marked_frames, self.marked_bytes = self.frames, self.bytes
        self.freezes, self.freeze_seconds = 0, 0.0
        self.lost = self.packets = 0
        self.sent_ticks = self.sent_steps = 0
        self.marked_at = now

    def count_packet(self, packet: RtpPacket, now: float) -> None:
        """Account one RTP packet: a new RTP timestamp starts a new frame."""
        self.count_header(packet.sequence_number, packet.timestamp, len(packet.payload), now)

    def count_header(self, seq: int, timestamp: int, payload_length: int, now: float) -> None:
        self.packets += 1
        self.bytes += payload_length
        if self._highest_seq is not None:
            ahead = (seq - self._highest_seq) & 0xFFFF
            if 0 < ahead < 0x8000:
                self.lost += ahead - 1
                self._highest_seq = seq
            else:
                self.lost = max(0, self.lost - 1)  # a late packet fills a gap counted before
        else:
            self._highest_seq = seq
        # A new frame starts when the RTP timestamp moves forward (a late or retransmitted
        # packet of an older frame is not a new frame).
        last = self._last_timestamp
        step = None if last is None else (timestamp - last) & 0xFFFFFFFF
        if step is None or 0 < step < 0x80000000:
            self._last_timestamp = timestamp
            if step is not None:
                self.sent_ticks += step
                self.sent_steps += 1
            self.count_frame(now)

    def count_frame(self, now: float) -> None:
        if self.first_frame_at is None:
            self.first_frame_at = now
        elif self.kind == "video" and self.last_frame_at is not None:
            # Only the part of a gap inside the window counts.
            since = self.last_frame_at
            if self.marked_at is not None:
                since = max(since, self.marked_at)
            gap = now - since
            if gap > FREEZE_SECONDS:
                self.freezes += 1
                self.freeze_seconds += gap
        self.last_frame_at = now
        self.frames += 1

    def window_freezes(self, start: float, end: float) -> tuple[int, float]:
        """Freezes and frozen seconds of the window from ``start`` to ``end``, its edges
        included: a stream whose frames stopped more than ``FREEZE_SECONDS`` before the end, or
        that had none in the window, has one more freeze; so has one whose first frame came that
        late into the window. Video only (audio has silences)."""
        if self.kind != "video":
            return 0, 0.0
        freezes, seconds = self.freezes, self.freeze_seconds
        first, last = self.first_frame_at, self.last_frame_at
        if first is not None and first - start > FREEZE_SECONDS:
            freezes, seconds = freezes + 1, seconds + (first - start)
        trailing = end - (start if last is None else max(last, start))
        if trailing > FREEZE_SECONDS:
            freezes, seconds = freezes + 1, seconds + trailing
        return freezes, seconds

    def window_fps(self, seconds: float) -> float:
        """Frames per second since :meth:`mark` over the window (``seconds``), but never above
        the rate of the sender's own clock (RTP timestamps) over those frames: a backlog that
        arrives in a burst spans more sender time than wall time, so it cannot read above the
        rate it was sent at (packet-counting mode; decoded frames carry no RTP timestamp here)."""
        received = (self.frames - self.marked_frames) / max(seconds, 1e-6)
        if self.sent_ticks <= 0:
            return received
        return min(received, self.sent_steps * self.clock_rate / self.sent_ticks)
