"""The speaker detector on a stepped clock: who speaks, who holds the floor, and no flapping."""

from __future__ import annotations

import itertools

from signaling.speaker import (
    HOLD_SECONDS,
    MIN_SEND_INTERVAL,
    SPEECH_LEVEL,
    TICK_SECONDS,
    LevelCounter,
    SpeakerDetector,
    Speakers,
)

from ..conftest import FakeClock

Script = list[tuple[float, set[str]]]
"""(seconds, who speaks during them), in order."""


def run(detector: SpeakerDetector, clock: FakeClock, script: Script) -> list[Speakers]:
    """Tick the detector through ``script`` as the relay does; every message it would send."""
    sent: list[Speakers] = []
    for seconds, active in script:
        for _ in range(round(seconds / TICK_SECONDS)):
            clock.advance(TICK_SECONDS)
            change = detector.tick([(who, who in active) for who in ("a", "b", "c")])
            if change is not None:
                sent.append(change)
    return sent


def dominant_changes(sent: list[Speakers]) -> int:
    """How many times the floor moved from one speaker to another (None to someone is not a
    change: that is the first speaker taking it)."""
    holders = [s.dominant for s in sent if s.dominant is not None]
    return sum(1 for before, after in itertools.pairwise(holders) if before != after)


def alternating(burst: float, total: float) -> Script:
    script: Script = []
    for index in range(round(total / burst)):
        script.append((burst, {"b"} if index % 2 == 0 else {"a"}))
    return script


def test_a_level_counter_counts_speech_level_packets_only() -> None:
    counter = LevelCounter()
    for level in (SPEECH_LEVEL, 127, 127, 20):
        counter.add(level)
    assert counter.take() is True  # half of them loud
    for _ in range(10):
        counter.add(127)
    counter.add(10)  # one loud packet among silence: noise, not speech
    assert counter.take() is False
    assert counter.take() is False  # no packets at all


def test_the_first_speaker_takes_the_floor_and_a_silent_one_never_speaks() -> None:
    clock = FakeClock()
    detector = SpeakerDetector(clock)
    sent = run(detector, clock, [(1.0, {"a"})])
    assert sent[0] == Speakers("a", ("a",))
    assert all("b" not in s.speaking and s.dominant != "b" for s in sent)


def test_speaking_holds_through_a_short_gap_and_ends_after_the_hold() -> None:
    clock = FakeClock()
    detector = SpeakerDetector(clock)
    run(detector, clock, [(1.0, {"a"}), (HOLD_SECONDS / 2, set())])
    assert detector.current.speaking == ("a",)
    sent = run(detector, clock, [(HOLD_SECONDS + MIN_SEND_INTERVAL, set())])
    assert sent[-1] == Speakers("a", ())  # silent now, still holding the floor


def test_a_sustained_challenger_takes_the_floor() -> None:
    clock = FakeClock()
    detector = SpeakerDetector(clock)
    run(detector, clock, [(2.0, {"a"})])
    sent = run(detector, clock, [(3.0, {"b"})])
    assert sent[-1].dominant == "b"
    assert dominant_changes([Speakers("a", ("a",)), *sent]) == 1


def test_a_cough_does_not_take_the_floor() -> None:
    clock = FakeClock()
    detector = SpeakerDetector(clock)
    sent = run(detector, clock, [(2.0, {"a"}), (0.3, {"b"}), (0.5, set()), (1.0, {"a"})])
    assert {s.dominant for s in sent} == {"a"}
    assert any("b" in s.speaking for s in sent)  # heard speaking, all the same


def test_alternating_short_bursts_do_not_flip_the_dominant_speaker() -> None:
    clock = FakeClock()
    detector = SpeakerDetector(clock)
    sent = run(detector, clock, [(2.0, {"a"}), *alternating(0.4, 20.0)])
    assert dominant_changes(sent) == 0
    assert detector.current.dominant == "a"


def test_the_flapping_check_sees_flapping_when_there_is_some() -> None:
    """The test of the test: bursts long enough to be real turns move the floor back and forth,
    and :func:`dominant_changes` counts each move."""
    clock = FakeClock()
    detector = SpeakerDetector(clock)
    sent = run(detector, clock, [(2.0, {"a"}), *alternating(3.0, 12.0)])
    assert dominant_changes(sent) >= 3


def test_messages_are_rate_limited_and_a_change_is_sent_later_not_lost() -> None:
    clock = FakeClock()
    detector = SpeakerDetector(clock)
    clock.advance(TICK_SECONDS)
    assert detector.tick([("a", True)]) == Speakers("a", ("a",))
    clock.advance(TICK_SECONDS)
    assert detector.tick([("a", True), ("b", True)]) is None  # too soon after the last one
    clock.advance(MIN_SEND_INTERVAL)
    assert detector.tick([("a", True), ("b", True)]) == Speakers("a", ("a", "b"))


def test_a_forgotten_speaker_loses_the_floor_at_once() -> None:
    clock = FakeClock()
    detector = SpeakerDetector(clock)
    run(detector, clock, [(1.0, {"a"})])
    detector.forget("a")
    assert detector.current == Speakers(None, ())
    sent = run(detector, clock, [(MIN_SEND_INTERVAL, set())])
    assert sent == [Speakers(None, ())]
