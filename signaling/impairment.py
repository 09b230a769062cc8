"""A bad network for one synthetic participant, in process: no root, no netem.

Each direction of a participant's datagrams goes through an :class:`ImpairedLink`, in the order a
real path applies them: random loss, then a rate cap (a token bucket feeding a bounded queue, as
``tbf`` does: what the bucket cannot take waits, what the queue cannot hold is dropped), then
delay with uniform jitter, each datagram on its own, so that packets reorder as they do under
netem or the NFQUEUE program in ``../shared/findings.md``. Seeded: a run can be repeated. The rate
cap may apply to one direction only (``rate_direction``): a subscriber on a slow downlink still
publishes at full rate, as behind a real asymmetric link.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCPeerConnection

from .aiortc_hooks import filter_datagrams

__all__ = ["RATE_DIRECTIONS", "ImpairedLink", "Impairment", "impair_peer_connection"]

Deliver = Callable[[bytes, Any], None]

BUCKET_BYTES = 16_000
"""Burst the rate cap lets through at once (``tbf ... burst 16kb``)."""
QUEUE_SECONDS = 0.15
"""Longest wait in the rate cap's queue (``tbf ... latency 150ms``): beyond it, drop."""
RATE_DIRECTIONS = ("both", "down", "up")
"""Where the rate cap applies: both directions, what the participant receives, what it sends."""


@dataclass(frozen=True)
class Impairment:
    """What the network does to each synthetic participant's datagrams, in both directions."""

    loss_percent: float = 0.0
    """Chance that a datagram is dropped, in percent."""
    delay_ms: float = 0.0
    """One-way delay added to each datagram."""
    jitter_ms: float = 0.0
    """Each datagram's delay is ``delay_ms`` plus uniform noise within +- this (it reorders)."""
    rate_kbps: float | None = None
    """Cap on each direction, kilobits per second (None: none)."""
    rate_direction: str = "both"
    """Which directions ``rate_kbps`` caps (:data:`RATE_DIRECTIONS`); loss and delay are
    always both ways."""
    seed: int = 1
    """Seed of the random draws: the same seed drops and delays the same way."""

    def __post_init__(self) -> None:
        if not 0 <= self.loss_percent <= 100:
            raise ValueError("loss must be between 0 and 100 percent")
        if self.delay_ms < 0 or self.jitter_ms < 0 or self.jitter_ms > self.delay_ms:
            raise ValueError("delay and jitter must be >= 0, and jitter at most the delay")
        if self.rate_kbps is not None and self.rate_kbps <= 0:
            raise ValueError("rate must be > 0 kbit/s")
        if self.rate_direction not in RATE_DIRECTIONS:
            raise ValueError(f"rate direction must be one of {', '.join(RATE_DIRECTIONS)}")

    @property
    def active(self) -> bool:
        """Whether it changes anything at all."""
        return bool(self.loss_percent or self.delay_ms or self.rate_kbps)

    def caps(self, inbound: bool) -> bool:
        """Whether the rate cap applies to this direction (``inbound``: what the participant
        receives)."""
        return self.rate_kbps is not None and self.rate_direction in (
            "both",
            "down" if inbound else "up",
        )

    def link(
        self, stream: int, clock: Callable[[], float] = time.monotonic, *, capped: bool = True
    ) -> ImpairedLink:
        """One direction of one participant; ``stream`` tells the random draws apart;
        ``capped=False``: this direction without the rate cap."""
        rng = random.Random(self.seed * 1_000_003 + stream)  # noqa: S311
        return ImpairedLink(self, rng, clock, capped=capped)


class ImpairedLink:
    """One direction: :meth:`send` each datagram with the function that delivers it."""

    def __init__(
        self,
        impairment: Impairment,
        rng: random.Random,
        clock: Callable[[], float],
        *,
        capped: bool = True,
    ) -> None:
        self.impairment = impairment
        self._rng = rng
        self._clock = clock
        self._bytes_per_second = (impairment.rate_kbps or 0) * 125 if capped else 0.0
        self.rate_kbps = impairment.rate_kbps if capped else None
        """The cap on this direction (None: none)."""
        self._tokens = float(BUCKET_BYTES)
        self._refilled_at = clock()
        self._queue: deque[tuple[bytes, Any, Deliver]] = deque()
        self._queued_bytes = 0
        self._drain: asyncio.TimerHandle | None = None
        self._in_flight: set[asyncio.TimerHandle] = set()
        self._closed = False
        self.sent = 0
        """Datagrams handed in."""
        self.lost = 0
        """Dropped at random."""
        self.overflowed = 0
        """Dropped by the rate cap (its queue was full)."""

    def send(self, data: bytes, addr: Any, deliver: Deliver) -> None:
        """Drop, queue or delay ``data``; ``deliver(data, addr)`` when it gets through."""
        if self._closed:
            return
        self.sent += 1
        if self._rng.random() * 100 < self.impairment.loss_percent:
            self.lost += 1
            return
        if not self._bytes_per_second:
            self._delay(data, addr, deliver)
            return
        self._refill()
        if not self._queue and self._tokens >= len(data):
            self._tokens -= len(data)
            self._delay(data, addr, deliver)
            return
        if self._queued_bytes + len(data) > self._bytes_per_second * QUEUE_SECONDS:
            self.overflowed += 1
            return
        self._queue.append((data, addr, deliver))
        self._queued_bytes += len(data)
        self._schedule_drain()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(
            float(BUCKET_BYTES), self._tokens + (now - self._refilled_at) * self._bytes_per_second
        )
        self._refilled_at = now

    def _schedule_drain(self) -> None:
        if self._drain is not None or not self._queue:
            return
        missing = len(self._queue[0][0]) - self._tokens
        wait = max(0.0, missing / self._bytes_per_second)
        self._drain = asyncio.get_running_loop().call_later(wait, self._on_drain)

    def _on_drain(self) -> None:
        self._drain = None
        self._refill()
        while self._queue and self._tokens >= len(self._queue[0][0]):
            data, addr, deliver = self._queue.popleft()
            self._queued_bytes -= len(data)
            self._tokens -= len(data)
            self._delay(data, addr, deliver)
        self._schedule_drain()

    def _delay(self, data: bytes, addr: Any, deliver: Deliver) -> None:
        impairment = self.impairment
        if not impairment.delay_ms:
            deliver(data, addr)
            return
        jitter = impairment.jitter_ms
        delay_ms = impairment.delay_ms + (self._rng.uniform(-jitter, jitter) if jitter else 0.0)
        handle: asyncio.TimerHandle | None = None

        def arrive() -> None:
            self._in_flight.discard(handle)
            deliver(data, addr)

        handle = asyncio.get_running_loop().call_later(delay_ms / 1000, arrive)
        self._in_flight.add(handle)

    def close(self) -> None:
        """The connection closed: what is queued or on its way is lost with it (delivering it
        later would write to a closed transport)."""
        self._closed = True
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        for handle in self._in_flight:
            handle.cancel()
        self._in_flight.clear()
        self._queue.clear()
        self._queued_bytes = 0


def impair_peer_connection(
    pc: RTCPeerConnection, impairment: Impairment, participant: int
) -> tuple[ImpairedLink, ImpairedLink]:
    """Impair everything ``pc`` sends and receives (after its first local description);
    returns the (outbound, inbound) links, whose counters say what they did."""
    outbound = impairment.link(2 * participant, capped=impairment.caps(inbound=False))
    inbound = impairment.link(2 * participant + 1, capped=impairment.caps(inbound=True))
    filter_datagrams(pc, outbound=outbound.send, inbound=inbound.send)

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState == "closed":
            outbound.close()
            inbound.close()

    return outbound, inbound
