"""Who is speaking, from the audio levels publishers put in their RTP headers (RFC 6464).

Never decodes audio. The relay counts, per microphone, how many packets arrived and how many of
them were louder than speech level (:class:`LevelCounter`: two integer increments per audio
packet, the hot path's whole cost); a few times a second :class:`SpeakerDetector` reads and
resets those counters and decides:

- ``speaking``: who had speech-level packets in the last ``HOLD_SECONDS`` (the hold bridges the
  gaps between words, so the set does not flicker);
- ``dominant``: one speaker who holds the floor. The first to speak takes it; a challenger takes
  it only after out-speaking the dominant speaker (a smoothed activity score ``SWITCH_MARGIN``
  higher) for ``SWITCH_SECONDS`` without a break, so a cough or a short "yes" never moves it,
  and the dominant speaker keeps it through pauses. It is dropped only when that person leaves
  or stops being heard (muted by a host).

:class:`SpeakerDetector` is pure logic on an injected clock; :meth:`SpeakerDetector.tick`
returns what to send, at most once per ``MIN_SEND_INTERVAL`` (rate limited per room).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "HOLD_SECONDS",
    "MIN_SEND_INTERVAL",
    "SPEECH_LEVEL",
    "SWITCH_SECONDS",
    "TICK_SECONDS",
    "LevelCounter",
    "SpeakerDetector",
    "Speakers",
]

SPEECH_LEVEL = 50
"""RFC 6464 level (``-dBov``, 0 loudest, 127 silence) at or below which a packet counts as speech:
louder than -50 dBov. Browsers send about 127 for silence and for a muted track, and 20-45 for
speech after their own processing."""
ACTIVE_FRACTION = 0.3
"""Share of a tick's packets that must be speech for the tick to count as speaking (a lone loud
packet in a tick of silence is noise)."""
TICK_SECONDS = 0.1
"""How often the relay reads the counters."""
HOLD_SECONDS = 0.6
"""How long someone stays ``speaking`` after their last speech-level tick."""
SCORE_SECONDS = 1.0
"""Time constant of the smoothed activity score the dominant speaker is chosen on."""
SWITCH_MARGIN = 0.15
"""How much higher a challenger's score must be than the dominant speaker's."""
SWITCH_SECONDS = 1.0
"""How long, without a break, a challenger must out-speak the dominant speaker to take over."""
MIN_SEND_INTERVAL = 0.3
"""Least time between two ``speakers`` messages of one room (a busy room never floods)."""


@dataclass(frozen=True)
class Speakers:
    """What a ``speakers`` message says."""

    dominant: str | None
    speaking: tuple[str, ...]
    """Sorted, so the same set always compares equal."""


class LevelCounter:
    """One microphone's packets since the last tick: all of them, and those at speech level."""

    __slots__ = ("loud", "total")

    def __init__(self) -> None:
        self.total = 0
        self.loud = 0

    def add(self, level: int) -> None:
        """One packet's RFC 6464 level (the 7-bit ``-dBov``)."""
        self.total += 1
        if level <= SPEECH_LEVEL:
            self.loud += 1

    def take(self) -> bool:
        """Whether this tick counts as speaking; the counts start again."""
        active = self.total > 0 and self.loud >= ACTIVE_FRACTION * self.total
        self.total = self.loud = 0
        return active


@dataclass
class _Voice:
    last_active: float = -1e18
    score: float = 0.0


class SpeakerDetector:
    """Speaking set and dominant speaker of one room, from per-tick activity."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._voices: dict[str, _Voice] = {}
        self._dominant: str | None = None
        self._challenger: str | None = None
        self._challenge_since = 0.0
        self._last_tick: float | None = None
        self._sent = Speakers(None, ())
        self._sent_at = -1e18

    @property
    def current(self) -> Speakers:
        """The state now, sent or not."""
        now = self._clock()
        speaking = tuple(
            sorted(
                who for who, voice in self._voices.items() if now - voice.last_active < HOLD_SECONDS
            )
        )
        return Speakers(self._dominant, speaking)

    @property
    def last_sent(self) -> Speakers:
        """What :meth:`tick` last returned (what the room was last told)."""
        return self._sent

    def tick(self, activity: Iterable[tuple[str, bool]]) -> Speakers | None:
        """Take one tick's activity (participant id, spoke in this tick) of every microphone
        heard; participants not listed are treated as silent. Returns what to send now, or None
        (nothing changed, or the last message went out less than ``MIN_SEND_INTERVAL`` ago: the
        change then goes out on a later tick)."""
        now = self._clock()
        elapsed = TICK_SECONDS if self._last_tick is None else now - self._last_tick
        self._last_tick = now
        decay = min(1.0, max(0.0, elapsed) / SCORE_SECONDS)
        active = {who for who, spoke in activity if spoke}
        for who in active:
            self._voices.setdefault(who, _Voice())
        for who, voice in self._voices.items():
            spoke = who in active
            if spoke:
                voice.last_active = now
            voice.score += decay * ((1.0 if spoke else 0.0) - voice.score)
        self._choose_dominant(now)
        return self._due(now)

    def forget(self, participant_id: str) -> None:
        """The participant left or can no longer be heard (a host muted them)."""
        self._voices.pop(participant_id, None)
        if self._dominant == participant_id:
            self._dominant = None
        if self._challenger == participant_id:
            self._challenger = None

    def _choose_dominant(self, now: float) -> None:
        speaking = [
            (voice.score, who)
            for who, voice in self._voices.items()
            if now - voice.last_active < HOLD_SECONDS
        ]
        if not speaking:
            self._challenger = None
            return
        best_score, best = max(speaking)
        if self._dominant is None:
            self._dominant, self._challenger = best, None
            return
        if best == self._dominant:
            self._challenger = None
            return
        held = self._voices.get(self._dominant)
        held_score = held.score if held is not None else 0.0
        if best_score < held_score + SWITCH_MARGIN:
            self._challenger = None
            return
        if self._challenger != best:
            self._challenger, self._challenge_since = best, now
        elif now - self._challenge_since >= SWITCH_SECONDS:
            self._dominant, self._challenger = best, None

    def _due(self, now: float) -> Speakers | None:
        state = self.current
        if state == self._sent or now - self._sent_at < MIN_SEND_INTERVAL:
            return None
        self._sent, self._sent_at = state, now
        return state
