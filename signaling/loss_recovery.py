"""Which RTP packets of a stream are still missing, and when to ask for each of them again.

aiortc's own NACK generator asks for a missing packet only when a new gap appears: if that NACK
or the retransmission is lost, the packet is asked for again only at the next gap (~0.5 s later at
2% loss) or never, and the receivers freeze until their own 3 s keyframe timeout. A browser
re-asks about once per round trip, a bounded number of times; :class:`MissingPackets` does the
same for the relay (upstream, towards each publisher) and for the load generator's receivers.
Once a packet is given up, the caller asks for a keyframe at once instead of waiting for the
subscribers' timeout. Pure bookkeeping, no I/O: the clock is passed in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BROWSER_NACKS", "MissingPackets", "NackPolicy", "StreamRecovery", "relay_nack_policy"]

MAX_TRACKED = 512
"""Most missing packets kept per stream: a larger jump is a restart, not loss."""


@dataclass(frozen=True)
class NackPolicy:
    """How hard to ask for a missing packet."""

    retries: int = 10
    """NACKs after the first one for the same packet (0: ask once, never again)."""
    interval: float = 0.06
    """Seconds between two NACKs for one packet: about one round trip on a real network."""
    deadline: float = 1.0
    """Seconds after the gap was seen after which a packet is given up (too late to play)."""
    keyframe_on_loss: bool = True
    """Ask for a keyframe as soon as a packet is given up (False: leave it to the receivers'
    own timeout, as before this policy existed)."""
    answer_subscribers: bool = True
    """Pass a subscriber's NACK for a packet still missing here upstream at once."""


BROWSER_NACKS = NackPolicy()
"""What a browser does (Chromium's NackRequester retries about once per round trip, 10 times)."""

_relay_policy = NackPolicy()


def relay_nack_policy(policy: NackPolicy | None = None) -> NackPolicy:
    """The relay's policy for NACKs towards publishers; with ``policy``, set it for the
    publications made from now on (tests compare with ``NackPolicy(retries=0)``)."""
    global _relay_policy  # one process-wide setting, read as each publication starts
    if policy is not None:
        _relay_policy = policy
    return _relay_policy


@dataclass
class _Ask:
    seen_at: float
    asked_at: float
    asks: int
    given_up: bool = False


def _ahead(a: int, b: int) -> int:
    """How far sequence number ``a`` is ahead of ``b`` (negative: behind), modulo 2^16."""
    delta = (a - b) & 0xFFFF
    return delta - 0x10000 if delta >= 0x8000 else delta


class MissingPackets:
    """The missing sequence numbers of one RTP stream and the NACKs they are due."""

    def __init__(self, policy: NackPolicy) -> None:
        self.policy = policy
        self.highest: int | None = None
        """Highest sequence number received."""
        self._missing: dict[int, _Ask] = {}

    @property
    def missing(self) -> list[int]:
        """Sequence numbers still missing, oldest first."""
        return list(self._missing)

    def add(self, seq: int, now: float) -> list[int]:
        """Account a received packet; returns the sequence numbers a new gap just opened (to
        NACK now)."""
        highest = self.highest
        if highest is None:
            self.highest = seq
            return []
        ahead = _ahead(seq, highest)
        if ahead <= 0:
            self._missing.pop(seq, None)  # a retransmission or a late packet
            return []
        self.highest = seq
        if ahead > MAX_TRACKED:
            self._missing.clear()  # the stream jumped: nothing to ask for
            return []
        opened = [(highest + step) & 0xFFFF for step in range(1, ahead)]
        for missing in opened:
            self._missing[missing] = _Ask(seen_at=now, asked_at=now, asks=1)
        while len(self._missing) > MAX_TRACKED:
            del self._missing[next(iter(self._missing))]
        return opened

    def due(self, now: float) -> tuple[list[int], list[int]]:
        """(packets to NACK again now, packets given up now: out of retries with no answer
        within an interval, or past the deadline, so only a keyframe repairs the picture). A
        packet given up is still recognised, and asked for on a subscriber's request, until the
        deadline."""
        policy = self.policy
        again: list[int] = []
        given_up: list[int] = []
        expired: list[int] = []
        for seq, ask in self._missing.items():
            late = now - ask.seen_at >= policy.deadline
            waited = now - ask.asked_at >= policy.interval
            if late:
                expired.append(seq)
            if ask.given_up:
                continue
            if late or (waited and ask.asks > policy.retries):
                ask.given_up = True
                given_up.append(seq)
            elif waited:
                ask.asked_at = now
                ask.asks += 1
                again.append(seq)
        for seq in expired:
            del self._missing[seq]
        return again, given_up

    def next_due(self) -> float | None:
        """When :meth:`due` has something to do next (None: nothing is missing)."""
        if not self._missing:
            return None
        policy = self.policy
        return min(
            ask.seen_at + policy.deadline
            if ask.given_up
            else min(ask.asked_at + policy.interval, ask.seen_at + policy.deadline)
            for ask in self._missing.values()
        )

    def ask_now(self, seq: int, now: float) -> bool:
        """A subscriber asked for ``seq``: whether to NACK it upstream now (it is missing here
        and was not asked for within half an interval)."""
        ask = self._missing.get(seq)
        if ask is None or not self.policy.answer_subscribers:
            return False
        if now - ask.asked_at < self.policy.interval / 2:
            return False
        ask.asked_at = now
        return True


class StreamRecovery:
    """NACKs for the streams of one receiver: at once for a new gap, then again on a timer until
    each packet arrives or is given up (then ``on_given_up(ssrc)``, for a keyframe request).
    The timer runs only while something is missing."""

    def __init__(
        self,
        policy: NackPolicy,
        send_nack: Callable[[int, list[int]], None],
        on_given_up: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._send_nack = send_nack
        self._on_given_up = on_given_up
        self._clock = clock
        self._streams: dict[int, MissingPackets] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False

    def add(self, ssrc: int, seq: int) -> None:
        """Account a received packet; NACK the packets a new gap opened."""
        stream = self._streams.get(ssrc)
        if stream is None:
            stream = self._streams[ssrc] = MissingPackets(self.policy)
        elif stream.highest is not None and seq == (stream.highest + 1) & 0xFFFF:
            stream.highest = seq  # the common case, per packet: in order, nothing to NACK
            return
        now = self._clock()
        opened = stream.add(seq, now)
        if opened:
            self._send_nack(ssrc, opened)
            # The new packets are due first at this time; anything missing before is due no
            # later, and already has its wake-up. No scan of every missing packet per gap: under
            # heavy loss that scan, hundreds of entries per gap, was the cost of recovery.
            self._schedule_at(now + min(self.policy.interval, self.policy.deadline))

    def request(self, ssrc: int, seq: int) -> bool:
        """A subscriber NACKed ``seq``, which never arrived here: ask upstream now (unless it
        was just asked for). Returns whether a NACK went out."""
        stream = self._streams.get(ssrc)
        if stream is None or not stream.ask_now(seq, self._clock()):
            return False
        self._send_nack(ssrc, [seq])
        return True

    def missing(self, ssrc: int) -> list[int]:
        """Sequence numbers of ``ssrc`` still being asked for."""
        stream = self._streams.get(ssrc)
        return stream.missing if stream is not None else []

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        if self._closed:
            return
        due = [when for s in self._streams.values() if (when := s.next_due()) is not None]
        if due:
            self._schedule_at(min(due))

    def _schedule_at(self, when: float) -> None:
        """Wake up at ``when`` unless an earlier wake-up is set."""
        if self._closed:
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= when:
            return  # an earlier wake-up is already set; it reschedules
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        delay = max(0.0, when - self._clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        now = self._clock()
        for ssrc, stream in self._streams.items():
            again, given_up = stream.due(now)
            if again:
                self._send_nack(ssrc, again)
            if given_up and self.policy.keyframe_on_loss and self._on_given_up is not None:
                self._on_given_up(ssrc)
        self._schedule()
