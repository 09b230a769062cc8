"""The room service on its own: ids, lookups, expiry, joins and events, with a hand-moved clock."""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from signaling.errors import RoomFull, RoomNotFound, TooManyRooms
from signaling.rooms import (
    ROOM_ID_PATTERN,
    Participant,
    Room,
    RoomLimits,
    RoomService,
    iso_utc,
    new_room_id,
)
from signaling.text import clean_text

from ..conftest import FakeClock

SESSION_A = "session-aaaaaaaaaaaa"
SESSION_B = "session-bbbbbbbbbbbb"
SESSION_C = "session-cccccccccccc"


def counting_ids(prefix: str, width: int) -> Callable[[], str]:
    """Predictable ids of a fixed width: ``prefix`` and a zero-padded counter."""
    counter = itertools.count(1)

    def make() -> str:
        return f"{prefix}{next(counter):0{width - len(prefix)}d}"

    return make


def make_service(
    clock: FakeClock, limits: RoomLimits | None = None, **kwargs: object
) -> RoomService:
    return RoomService(
        limits,
        clock=clock,
        make_participant_id=counting_ids("p", 4),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rooms(clock: FakeClock) -> RoomService:
    return make_service(clock)


@dataclass
class Recorder:
    """A RoomEvents listener that writes down what it is told, in order."""

    events: list[tuple[str, str, str]] = field(default_factory=list)

    def participant_joined(self, room: Room, participant: Participant) -> None:
        self.events.append(("joined", room.id, participant.name))

    def participant_left(self, room: Room, participant: Participant) -> None:
        self.events.append(("left", room.id, participant.name))

    def room_closed(self, room: Room, reason: str) -> None:
        self.events.append(("closed", room.id, reason))

    def participant_waiting(self, room: Room, participant: Participant) -> None:
        self.events.append(("waiting", room.id, participant.name))

    def waiting_resolved(self, room: Room, participant: Participant, admitted: bool) -> None:
        self.events.append(("admitted" if admitted else "turned away", room.id, participant.name))

    def room_changed(self, room: Room) -> None:
        self.events.append(("changed", room.id, ""))


# ---------------------------------------------------------------- room ids


def test_new_room_id_shape() -> None:
    room_id = new_room_id()
    assert len(room_id) == 22
    assert ROOM_ID_PATTERN.match(room_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", room_id)


def test_new_room_id_carries_128_bits() -> None:
    room_id = new_room_id()
    raw = base64.urlsafe_b64decode(room_id + "==")
    assert len(raw) == 16
    # Re-encoding gives back the same text: nothing is lost or padded.
    assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == room_id


def test_new_room_ids_are_distinct() -> None:
    ids = [new_room_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(ROOM_ID_PATTERN.match(room_id) for room_id in ids)


def test_created_rooms_get_valid_distinct_ids(rooms: RoomService) -> None:
    created = [rooms.create_room() for _ in range(200)]
    assert len({room.id for room in created}) == 200
    for room in created:
        assert ROOM_ID_PATTERN.match(room.id)
        assert rooms.get_room(room.id) is room


def test_colliding_id_source_is_retried(clock: FakeClock) -> None:
    ids = iter(["A" * 22, "A" * 22, "A" * 22, "B" * 22])
    service = make_service(clock, make_room_id=lambda: next(ids))
    first = service.create_room()
    second = service.create_room()
    assert (first.id, second.id) == ("A" * 22, "B" * 22)
    assert service.get_room("A" * 22) is first
    assert service.get_room("B" * 22) is second


# ---------------------------------------------------------------- get_room

MALFORMED_IDS = [
    pytest.param("", id="empty"),
    pytest.param("short", id="short"),
    pytest.param("A" * 21, id="21-chars"),
    pytest.param("A" * 23, id="23-chars"),
    pytest.param("../etc/passwd", id="traversal"),
    pytest.param("AAAAAAAAAA/AAAAAAAAAAA", id="slash-22"),
    pytest.param("AAAAAAAAAA.AAAAAAAAAAA", id="dot-22"),
    pytest.param("AAAAAAAAAA AAAAAAAAAAA", id="space-22"),
    pytest.param("AAAAAAAAAA+AAAAAAAAAAA", id="plus-22"),
    pytest.param("AAAAAAAAAA=AAAAAAAAAAA", id="padding-22"),
    pytest.param("é" * 22, id="unicode-letters-22"),
    pytest.param("\uff11" * 22, id="fullwidth-digits-22"),
    pytest.param("AAAAAAAAAA\x00AAAAAAAAAAA", id="nul-22"),
]


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
def test_get_room_refuses_malformed_ids(clock: FakeClock, bad_id: str) -> None:
    # The store really holds a room under this very id (an injected id source can do that), so a
    # None can only come from the id check, not from an empty store.
    service = make_service(clock, make_room_id=lambda: bad_id)
    room = service.create_room()
    assert room.id == bad_id
    assert service.get_room(bad_id) is None
    with pytest.raises(RoomNotFound):
        service.join(bad_id, "Alex", SESSION_A)


def test_room_id_pattern_rejects_trailing_newline(clock: FakeClock) -> None:
    bad_id = "A" * 22 + "\n"
    assert len(bad_id) == 23
    service = make_service(clock, make_room_id=lambda: bad_id)
    service.create_room()
    assert service.get_room(bad_id) is None
    assert not ROOM_ID_PATTERN.match(bad_id)


def test_get_room_unknown_valid_looking_id(rooms: RoomService) -> None:
    real = rooms.create_room()
    unknown = new_room_id()
    assert unknown != real.id
    assert ROOM_ID_PATTERN.match(unknown)
    assert rooms.get_room(unknown) is None
    assert rooms.get_room(real.id) is real


def test_get_room_is_exact_and_case_sensitive(clock: FakeClock) -> None:
    service = make_service(clock, make_room_id=lambda: "abcdefghijKLMNOPQRST_-")
    room = service.create_room()
    assert service.get_room("abcdefghijKLMNOPQRST_-") is room
    assert service.get_room("ABCDEFGHIJKLMNOPQRST_-") is None
    assert service.get_room("abcdefghijKLMNOPQRST_-" + "\n") is None


# ---------------------------------------------------------------- expiry


def test_unused_room_expires_at_ttl(clock: FakeClock, rooms: RoomService) -> None:
    room = rooms.create_room()
    ttl = rooms.limits.unused_ttl_seconds
    assert room.expires_at == room.created_at + ttl
    clock.advance(ttl - 0.001)
    assert rooms.get_room(room.id) is room
    assert rooms.sweep() == []
    clock.advance(0.001)
    assert rooms.get_room(room.id) is None
    assert rooms.rooms() == []


def test_unused_room_stays_gone_after_ttl(clock: FakeClock, rooms: RoomService) -> None:
    room = rooms.create_room()
    clock.advance(rooms.limits.unused_ttl_seconds + 3600)
    assert rooms.get_room(room.id) is None
    clock.now -= 7200  # even if the clock stepped back, the room was closed for good
    assert rooms.get_room(room.id) is None


def test_sweep_returns_expired_rooms_once(clock: FakeClock, rooms: RoomService) -> None:
    old = rooms.create_room()
    clock.advance(3600)
    young = rooms.create_room()
    clock.advance(rooms.limits.unused_ttl_seconds - 3600)
    assert rooms.sweep() == [old]
    assert rooms.sweep() == []
    assert rooms.rooms() == [young]
    clock.advance(3600)
    assert rooms.sweep() == [young]
    assert rooms.rooms() == []


def test_occupied_room_does_not_expire(clock: FakeClock, rooms: RoomService) -> None:
    room = rooms.create_room()
    rooms.join(room.id, "Alex", SESSION_A)
    clock.advance(rooms.limits.unused_ttl_seconds * 10)
    assert rooms.sweep() == []
    assert rooms.get_room(room.id) is room
    assert room.ever_joined


def test_empty_room_closes_after_grace(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(empty_grace_seconds=60))
    room = rooms.create_room()
    alex, _ = rooms.join(room.id, "Alex", SESSION_A)
    clock.advance(100)
    assert rooms.leave(room, alex.id) is alex
    assert room.empty_since == clock.now
    clock.advance(59.999)
    assert rooms.sweep() == []
    assert rooms.get_room(room.id) is room
    clock.advance(0.001)
    assert rooms.sweep() == [room]
    assert rooms.get_room(room.id) is None


def test_empty_room_grace_is_checked_by_get_room(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(empty_grace_seconds=60))
    room = rooms.create_room()
    alex, _ = rooms.join(room.id, "Alex", SESSION_A)
    rooms.leave(room, alex.id)
    clock.advance(60)
    assert rooms.get_room(room.id) is None
    with pytest.raises(RoomNotFound):
        rooms.join(room.id, "Alex", SESSION_A)


def test_rejoin_within_grace_keeps_room(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(empty_grace_seconds=60))
    room = rooms.create_room()
    alex, _ = rooms.join(room.id, "Alex", SESSION_A)
    rooms.leave(room, alex.id)
    clock.advance(30)
    again, replaced = rooms.join(room.id, "Alex", SESSION_A)
    assert replaced is None  # the old participant had already left
    assert room.empty_since is None
    clock.advance(600)
    assert rooms.sweep() == []
    assert rooms.get_room(room.id) is room
    # The next time it empties, a fresh grace period starts from that moment.
    rooms.leave(room, again.id)
    clock.advance(59)
    assert rooms.get_room(room.id) is room
    clock.advance(1)
    assert rooms.get_room(room.id) is None


def test_left_room_uses_grace_not_ttl(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(unused_ttl_seconds=100, empty_grace_seconds=60))
    room = rooms.create_room()
    clock.advance(90)
    alex, _ = rooms.join(room.id, "Alex", SESSION_A)
    rooms.leave(room, alex.id)
    clock.advance(30)  # past expires_at, inside the grace
    assert clock.now > room.expires_at
    assert rooms.get_room(room.id) is room


def test_expired_room_cannot_be_joined(clock: FakeClock, rooms: RoomService) -> None:
    room = rooms.create_room()
    clock.advance(rooms.limits.unused_ttl_seconds)
    with pytest.raises(RoomNotFound):
        rooms.join(room.id, "Alex", SESSION_A)


# ---------------------------------------------------------------- join / leave


def test_join_unknown_room(rooms: RoomService) -> None:
    with pytest.raises(RoomNotFound) as caught:
        rooms.join(new_room_id(), "Alex", SESSION_A)
    assert str(caught.value)  # fit to show a user


def test_join_adds_participant(clock: FakeClock, rooms: RoomService) -> None:
    room = rooms.create_room()
    clock.advance(5)
    alex, replaced = rooms.join(room.id, "Alex", SESSION_A)
    assert replaced is None
    assert room.participants == {alex.id: alex}
    assert (alex.name, alex.session, alex.joined_at) == ("Alex", SESSION_A, clock.now)
    assert room.ever_joined
    assert room.empty_since is None


def test_join_full_room(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(max_participants=2))
    room = rooms.create_room()
    assert room.max_participants == 2
    rooms.join(room.id, "A", SESSION_A)
    rooms.join(room.id, "B", SESSION_B)
    with pytest.raises(RoomFull) as caught:
        rooms.join(room.id, "C", SESSION_C)
    assert "2" in str(caught.value)
    assert [p.name for p in room.participants.values()] == ["A", "B"]


def test_full_room_has_space_after_leave(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(max_participants=2))
    room = rooms.create_room()
    a, _ = rooms.join(room.id, "A", SESSION_A)
    rooms.join(room.id, "B", SESSION_B)
    rooms.leave(room, a.id)
    c, _ = rooms.join(room.id, "C", SESSION_C)
    assert sorted(p.name for p in room.participants.values()) == ["B", "C"]
    assert c.id in room.participants


def test_same_session_replaces_participant(rooms: RoomService) -> None:
    room = rooms.create_room()
    rooms.join(room.id, "Other", SESSION_B)
    first, _ = rooms.join(room.id, "Alex", SESSION_A)
    second, replaced = rooms.join(room.id, "Alex again", SESSION_A)
    assert replaced is first
    assert second.id != first.id
    assert len(room.participants) == 2
    assert first.id not in room.participants
    assert room.participants[second.id].name == "Alex again"


def test_same_session_rejoins_full_room(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(max_participants=2))
    room = rooms.create_room()
    rooms.join(room.id, "A", SESSION_A)
    b, _ = rooms.join(room.id, "B", SESSION_B)
    again, replaced = rooms.join(room.id, "B", SESSION_B)
    assert replaced is b
    assert len(room.participants) == 2
    assert again.id in room.participants


def test_leave_unknown_participant(rooms: RoomService) -> None:
    room = rooms.create_room()
    alex, _ = rooms.join(room.id, "Alex", SESSION_A)
    assert rooms.leave(room, "nobody") is None
    assert room.participants == {alex.id: alex}
    assert rooms.leave(room, alex.id) is alex
    assert rooms.leave(room, alex.id) is None


NAMES = [
    pytest.param("Alex", "Alex", id="plain"),
    pytest.param("  Alex  ", "Alex", id="trimmed"),
    pytest.param("Alex\x00\x07Smith", "Alex Smith", id="control-chars-folded"),
    pytest.param("Alex\t\r\nSmith", "Alex Smith", id="whitespace-collapsed"),
    pytest.param("Alex\x85\x9fSmith", "Alex Smith", id="c1-controls"),
    pytest.param("Alex\x7fSmith", "Alex Smith", id="delete"),
    pytest.param("", "Guest", id="empty"),
    pytest.param("   ", "Guest", id="blank"),
    pytest.param("\x00\x01\x1b", "Guest", id="only-controls"),
    pytest.param("x" * 100, "x" * 64, id="capped"),
    pytest.param("x" * 63 + " yz", "x" * 63, id="cap-then-trim"),
    pytest.param("Zoë 🎉", "Zoë 🎉", id="unicode-kept"),
]


@pytest.mark.parametrize(("typed", "kept"), NAMES)
def test_join_cleans_names(rooms: RoomService, typed: str, kept: str) -> None:
    room = rooms.create_room()
    participant, _ = rooms.join(room.id, typed, SESSION_A)
    assert participant.name == kept
    assert len(participant.name) <= rooms.limits.name_max_length


def test_name_cap_follows_limits(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(name_max_length=5))
    room = rooms.create_room()
    participant, _ = rooms.join(room.id, "Alexandra", SESSION_A)
    assert participant.name == "Alexa"


TOPICS = [
    pytest.param(None, None, id="none"),
    pytest.param("", None, id="empty"),
    pytest.param("  \t ", None, id="blank"),
    pytest.param("\x00\x01", None, id="only-controls"),
    pytest.param("  Weekly sync ", "Weekly sync", id="trimmed"),
    pytest.param("Weekly\nsync", "Weekly sync", id="newline-folded"),
    pytest.param("t" * 500, "t" * 200, id="capped"),
]


@pytest.mark.parametrize(("given", "kept"), TOPICS)
def test_create_room_cleans_topic(rooms: RoomService, given: str | None, kept: str | None) -> None:
    room = rooms.create_room(given)
    assert room.topic == kept


def test_topic_cap_follows_limits(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(topic_max_length=7))
    assert rooms.create_room("Weekly sync").topic == "Weekly"  # "Weekly " cut, then trimmed


def test_room_takes_limits(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(max_participants=7, unused_ttl_seconds=10))
    room = rooms.create_room()
    assert room.max_participants == 7
    assert room.created_at == clock.now
    assert room.expires_at == clock.now + 10
    assert not room.ever_joined
    assert room.participants == {}


# ---------------------------------------------------------------- limits and events


def test_too_many_rooms(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(max_rooms=3, unused_ttl_seconds=100))
    for _ in range(3):
        rooms.create_room()
    with pytest.raises(TooManyRooms) as caught:
        rooms.create_room()
    assert str(caught.value)
    assert len(rooms.rooms()) == 3
    # Expired rooms free their slots: create_room sweeps first.
    clock.advance(100)
    fresh = rooms.create_room()
    assert rooms.rooms() == [fresh]


def test_listener_sees_events_in_order(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(empty_grace_seconds=30))
    recorder = Recorder()
    rooms.add_listener(recorder)
    room = rooms.create_room()
    a, _ = rooms.join(room.id, "A", SESSION_A)
    rooms.join(room.id, "B", SESSION_B)
    rooms.join(room.id, "B2", SESSION_B)  # replaces B: B leaves first, then B2 joins
    rooms.leave(room, a.id)
    b2 = next(p for p in room.participants.values() if p.name == "B2")
    rooms.leave(room, b2.id)
    assert rooms.leave(room, b2.id) is None  # no event for a participant already gone
    clock.advance(30)
    assert rooms.sweep() == [room]
    assert recorder.events == [
        ("joined", room.id, "A"),
        ("joined", room.id, "B"),
        ("left", room.id, "B"),
        ("joined", room.id, "B2"),
        ("left", room.id, "A"),
        ("left", room.id, "B2"),
        ("closed", room.id, "expired"),
    ]


def test_listener_told_when_get_room_expires(clock: FakeClock, rooms: RoomService) -> None:
    recorder = Recorder()
    rooms.add_listener(recorder)
    room = rooms.create_room()
    clock.advance(rooms.limits.unused_ttl_seconds)
    assert rooms.get_room(room.id) is None
    assert rooms.get_room(room.id) is None
    assert recorder.events == [("closed", room.id, "expired")]


def test_refused_join_tells_no_listener(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits(max_participants=2))
    recorder = Recorder()
    room = rooms.create_room()
    rooms.join(room.id, "A", SESSION_A)
    rooms.join(room.id, "B", SESSION_B)
    rooms.add_listener(recorder)
    with pytest.raises(RoomFull):
        rooms.join(room.id, "C", SESSION_C)
    with pytest.raises(RoomNotFound):
        rooms.join(new_room_id(), "D", SESSION_C)
    assert recorder.events == []


def test_every_listener_is_told(rooms: RoomService) -> None:
    first, second = Recorder(), Recorder()
    rooms.add_listener(first)
    rooms.add_listener(second)
    room = rooms.create_room()
    rooms.join(room.id, "A", SESSION_A)
    assert first.events == second.events == [("joined", room.id, "A")]


# ---------------------------------------------------------------- helpers

CLEAN_TEXT = [
    pytest.param(None, 10, "", id="none"),
    pytest.param("", 10, "", id="empty"),
    pytest.param("abc", 10, "abc", id="plain"),
    pytest.param("  abc  ", 10, "abc", id="trim"),
    pytest.param("a  b   c", 10, "a b c", id="inner-spaces-collapsed"),
    pytest.param("a\x00b", 10, "a b", id="nul"),
    pytest.param("a\x1fb", 10, "a b", id="unit-separator"),
    pytest.param("a\x7fb", 10, "a b", id="del"),
    pytest.param("a\x80b\x9fc", 10, "a b c", id="c1"),
    pytest.param("a\xa0b", 10, "a b", id="nbsp-is-whitespace"),
    pytest.param("a\u2028b", 10, "a b", id="line-separator"),
    pytest.param("\x00\x00", 10, "", id="only-controls"),
    pytest.param("abcdefghij", 5, "abcde", id="cap"),
    pytest.param("abcd efgh", 5, "abcd", id="cap-trailing-space-trimmed"),
    pytest.param("   abcdef", 3, "abc", id="trim-before-cap"),
    pytest.param("éàü", 2, "éà", id="cap-counts-characters"),
    pytest.param("abc", 0, "", id="zero-cap"),
]


@pytest.mark.parametrize(("text", "cap", "expected"), CLEAN_TEXT)
def test_clean_text(text: str | None, cap: int, expected: str) -> None:
    assert clean_text(text, cap) == expected


def test_iso_utc_known_values() -> None:
    # Expected strings worked out with datetime arithmetic, independent of iso_utc.
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for timestamp in (0.0, 1_800_000_000.0, 1_800_000_000.0 + 24 * 3600, 951_782_400.0):
        moment = epoch + timedelta(seconds=timestamp)
        expected = (
            f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
            f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
        )
        assert iso_utc(timestamp) == expected
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
    assert iso_utc(951_782_400) == "2000-02-29T00:00:00Z"  # a leap day


def test_iso_utc_format_and_round_trip() -> None:
    for timestamp in (1.0, 1_234_567_890.75, 1_800_000_000.999):
        text = iso_utc(timestamp)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", text)
        parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert parsed.timestamp() == int(timestamp)  # fractions are dropped, not rounded


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ada\u202eecarG", "AdaecarG"),  # right-to-left override dropped
        ("A\u200bd\u200da", "Ada"),  # zero-width space and joiner dropped
        ("\ufeffBob", "Bob"),  # byte order mark dropped
    ],
)
def test_clean_text_drops_invisible_format_characters(raw: str, expected: str) -> None:
    assert clean_text(raw, 64) == expected


def test_a_participant_let_in_who_reconnects_skips_lock_and_lobby(clock: FakeClock) -> None:
    rooms = make_service(clock, RoomLimits())
    room = rooms.create_room(lobby=True)
    token = rooms.issue_host_token(room)
    host, _ = rooms.join(room.id, "Host", SESSION_A, host_token=token)
    guest, _ = rooms.join(room.id, "Guest", SESSION_B)
    assert guest.id in room.waiting
    rooms.admit(room, guest.id)
    rooms.set_muted(room, guest.id, True)
    rooms.set_locked(room, True)
    # A network blip: the same session joins again while its old connection lingers.
    again, replaced = rooms.join(room.id, "Guest", SESSION_B)
    assert replaced is guest
    assert again.id in room.participants  # not back in the lobby, not refused by the lock
    assert again.muted_by_host  # reconnecting does not undo a host's mute
    # Host rights survive a reconnect without the token too.
    host_again, _ = rooms.join(room.id, "Host", SESSION_A)
    assert host_again.host and host is not host_again
