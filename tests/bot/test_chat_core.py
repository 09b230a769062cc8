"""The chat adapters' shared core: card updates in order, per room, from real room events."""

from __future__ import annotations

import asyncio
import re

import pytest

from bot.core import (
    ENDED_TEXT,
    NOT_HOST_TEXT,
    NOT_WAITING_TEXT,
    CallSummary,
    ChatCards,
    summarize,
)
from bot.options import DURATION_ERROR, OPTION_ERROR, ChatOptions, parse_options
from meetnow.chat_port import ServerChatPort
from signaling.limits import ServerLimits
from signaling.metrics import ServerMetrics
from signaling.rooms import Participant, Room, RoomLimits, RoomService

from ..conftest import FakeClock


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
        ("--lobby Standup", ChatOptions(lobby=True, rest="Standup")),
        ("--for 2h --lobby  Weekly sync", ChatOptions(True, 7200, rest="Weekly sync")),
        ("\u2014lobby x", ChatOptions(lobby=True, rest="x")),
        ("--for=90m", ChatOptions(lifetime_seconds=5400)),
        ("Standup --lobby", ChatOptions(rest="Standup --lobby")),  # only at the start
        ("\u2014Budget review", ChatOptions(rest="\u2014Budget review")),  # a dash, no option
        ("-- notes", ChatOptions(rest="-- notes")),
        ("", ChatOptions()),
        # One behaviour for every platform: an unknown option is a mistake, not a topic.
        ("--lobbyist meeting", ChatOptions(error=OPTION_ERROR)),
        ("--LOBBY=yes x", ChatOptions(error=OPTION_ERROR)),
        ("--for 8d x", ChatOptions(error=DURATION_ERROR)),
        ("--for", ChatOptions(error=DURATION_ERROR)),
    ],
)
def test_the_shared_option_parser(text: str, expected: ChatOptions) -> None:
    assert parse_options(text) == expected


def test_mentions_sit_among_options_and_are_collected_anywhere() -> None:
    mention = re.compile(r"<@(\w+)>")
    parsed = parse_options("<@ann> --lobby <@bob> Design <@ann> <@cy>", mention)
    expected = ChatOptions(lobby=True, invitees=("ann", "bob", "cy"), rest="Design <@ann> <@cy>")
    assert parsed == expected


async def test_the_host_click_flow_every_adapter_shares() -> None:
    """card lookup -> ended? -> host? -> answer the knock -> full?, with the shared texts."""
    rooms = RoomService(RoomLimits(max_participants=2))
    cards = RecordingCards(chat_port(rooms))
    room = rooms.create_room(origin="test", lobby=True)
    cards.track(room, ["host:ada"])
    rooms.join(room.id, "Ada", "a" * 20, host_token=rooms.issue_host_token(room))
    bob, _ = rooms.join(room.id, "Bob", "b" * 20)
    cy, _ = rooms.join(room.id, "Cy", "c" * 20)
    assert set(room.waiting) == {bob.id, cy.id}

    def host_is_ada(card: list[str]) -> str | None:
        return None if card[0] == "host:ada" else NOT_HOST_TEXT

    def nobody_is_host(card: list[str]) -> str | None:
        return NOT_HOST_TEXT

    assert (await cards.host_click("nope", bob.id, True, host_is_ada)).text == ENDED_TEXT
    assert (await cards.host_click(room.id, bob.id, True, nobody_is_host)).text == NOT_HOST_TEXT
    assert bob.id in room.waiting  # a refused click changes nothing
    assert (await cards.host_click(room.id, bob.id, True, host_is_ada)).text is None
    assert bob.id in room.participants
    full = await cards.host_click(room.id, cy.id, True, host_is_ada)
    assert full.text == "The meeting is full (2 people): nobody else can come in now."
    assert (await cards.host_click(room.id, cy.id, False, host_is_ada)).text is None  # denied
    assert (await cards.host_click(room.id, cy.id, True, host_is_ada)).text == NOT_WAITING_TEXT
