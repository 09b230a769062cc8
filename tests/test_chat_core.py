"""The chat adapters' shared core: card updates in order, per room, from real room events."""

from __future__ import annotations

import asyncio

import pytest

from bot.core import CallSummary, ChatCards, leading_options, summarize
from meetnow.chat_port import ServerChatPort
from signaling.limits import ServerLimits
from signaling.metrics import ServerMetrics
from signaling.rooms import Participant, Room, RoomLimits, RoomService

from .conftest import FakeClock


def chat_port(rooms: RoomService) -> ServerChatPort:
    """The real chat port over a room service alone (no web server)."""
    return ServerChatPort(
        rooms,
        ServerLimits(),
        ServerMetrics(rooms, None),
        lambda room_id: f"http://meet.test/r/{room_id}",
    )


class RecordingCards(ChatCards[list[str]]):
    """A test adapter: its "card" is the list of updates it received."""

    origin = "test"

    async def joined(self, card: list[str], room: Room, participant: Participant) -> None:
        await asyncio.sleep(0.01)  # a slow chat API must not reorder updates
        card.append(f"+{participant.name}")

    async def left(self, card: list[str], room: Room, participant: Participant) -> None:
        card.append(f"-{participant.name}")

    async def ended(self, card: list[str], room: Room, summary: CallSummary) -> None:
        card.append(summary.text())


class BrokenCards(ChatCards[list[str]]):
    origin = "test"

    async def joined(self, card: list[str], room: Room, participant: Participant) -> None:
        raise RuntimeError("chat API down")


async def test_updates_arrive_in_order_and_the_card_is_forgotten_at_the_end() -> None:
    clock = FakeClock()
    rooms = RoomService(RoomLimits(empty_grace_seconds=60), clock=clock)
    cards = RecordingCards(chat_port(rooms))
    room = rooms.create_room("standup", origin="test")
    card: list[str] = []
    cards.track(room, card)
    ada, _ = rooms.join(room.id, "Ada", "s" * 20)
    clock.advance(60)
    grace, _ = rooms.join(room.id, "Grace", "t" * 20)
    clock.advance(22 * 60)
    rooms.leave(room, ada.id)
    rooms.leave(room, grace.id)
    clock.advance(61)
    assert rooms.sweep() == [room]
    await cards.drained()
    assert card == ["+Ada", "+Grace", "-Ada", "-Grace", "Ended · 23 min · 2 people"]
    assert cards.card(room.id) is None  # nothing about the room is kept


async def test_rooms_of_other_origins_and_untracked_rooms_are_ignored() -> None:
    rooms = RoomService()
    cards = RecordingCards(chat_port(rooms))
    web_room = rooms.create_room()
    card: list[str] = []
    cards.track(web_room, card)  # tracked, but not a room this adapter created
    rooms.join(web_room.id, "Ada", "s" * 20)
    untracked = rooms.create_room(origin="test")
    rooms.join(untracked.id, "Bob", "b" * 20)
    await cards.drained()
    assert card == []


async def test_a_failing_adapter_does_not_break_joining(caplog: pytest.LogCaptureFixture) -> None:
    rooms = RoomService()
    cards = BrokenCards(chat_port(rooms))
    room = rooms.create_room(origin="test")
    cards.track(room, [])
    participant, _ = rooms.join(room.id, "Secret Name", "s" * 20)
    await cards.drained()
    assert participant.id in room.participants
    assert "RuntimeError" in caplog.text
    assert "Secret Name" not in caplog.text


def test_summaries() -> None:
    clock = FakeClock()
    rooms = RoomService(clock=clock)
    room = rooms.create_room()
    assert summarize(room, clock()).text() == "Ended · nobody joined"
    rooms.join(room.id, "Ada", "s" * 20)
    rooms.join(room.id, "Ada again", "s" * 20)  # the same person reconnecting counts once
    clock.advance(20)
    rooms.leave(room, next(iter(room.participants)))
    assert summarize(room, clock()) == CallSummary(minutes=1, people=1)
    assert summarize(room, clock()).text() == "Ended · 1 min · 1 person"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("--lobby Standup", (True, None, "Standup")),
        ("--for 2h --lobby  Weekly sync", (True, "2h", "Weekly sync")),
        ("\u2014lobby x", (True, None, "x")),
        ("--for=90m", (False, "90m", "")),
        ("Standup --lobby", (False, None, "Standup --lobby")),  # only at the start
        ("--lobbyist meeting", (False, None, "--lobbyist meeting")),
        ("", (False, None, "")),
    ],
)
def test_leading_options(text: str, expected: tuple[bool, str | None, str]) -> None:
    assert leading_options(text) == expected
