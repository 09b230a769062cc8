"""Raised hands (issue 15, docs/protocol.md "Chat and hands"), over real websockets against the
real server: ``raise_hand``, the host's ``lower_hand``, ``hand_raised_at`` in every
``ParticipantInfo``, the order hands went up in, and what a reconnect or a leave does to a hand.

The room service runs on a clock the test moves, so every ``hand_raised_at`` is known exactly.
"""

from __future__ import annotations

from typing import Any

from signaling.client import ParticipantClient

from ..conftest import FakeClock
from ..signaling.test_relay import wait_until
from ..support.security import (
    SignalingOnly,
    command,
    create_room,
    crowd,
    enter,
    meetnow,
    refused,
    reply,
    round_trip,
)


def ms(clock: FakeClock) -> int:
    return int(clock() * 1000)


async def hand(client: ParticipantClient, raised: bool) -> int:
    return await command(client, {"type": "raise_hand", "raised": raised})


async def update_about(
    client: ParticipantClient, participant_id: str | None, *, since: int
) -> dict[str, Any]:
    """The first ``participant_updated`` about ``participant_id`` after ``since``."""
    mark = since
    while True:
        update = await reply(client, {"participant_updated"}, since=mark)
        if update["participant"]["id"] == participant_id:
            return update["participant"]  # type: ignore[no-any-return]
        mark = client.messages.index(update, mark) + 1


def updates(client: ParticipantClient, since: int) -> list[dict[str, Any]]:
    """The participants of the ``participant_updated`` messages received after ``since``."""
    return [m["participant"] for m in client.messages[since:] if m["type"] == "participant_updated"]


def raise_order(participants: list[dict[str, Any]]) -> list[str]:
    """Names of the raised hands in the order a page shows them: by time, ties by id."""
    raised = [p for p in participants if p["hand_raised_at"] is not None]
    return [p["name"] for p in sorted(raised, key=lambda p: (p["hand_raised_at"], p["id"]))]


def test_the_raise_order_is_by_time_then_id() -> None:
    people: list[dict[str, Any]] = [
        {"id": "b", "name": "tie, id b", "hand_raised_at": 5},
        {"id": "z", "name": "first", "hand_raised_at": 4},
        {"id": "a", "name": "tie, id a", "hand_raised_at": 5},
        {"id": "c", "name": "lowered", "hand_raised_at": None},
    ]
    assert raise_order(people) == ["first", "tie, id a", "tie, id b"]


async def test_raising_and_lowering_tells_everyone_and_raising_again_keeps_the_time() -> None:
    clock = FakeClock()
    async with meetnow(clock) as running, crowd() as clients:
        room_id = running.new_room()
        ann = SignalingOnly(running.base_url, room_id, name="Ann")
        bob = SignalingOnly(running.base_url, room_id, name="Bob")
        clients.extend([ann, bob])
        for person in (ann, bob):
            joined = await enter(person)
            assert all(p["hand_raised_at"] is None for p in joined["participants"])

        raised_at = ms(clock)
        marks = {p.name: len(p.messages) for p in (ann, bob)}
        await hand(ann, True)
        for person in (ann, bob):  # the owner too: every page agrees
            info = await update_about(person, ann.participant_id, since=marks[person.name])
            assert info["hand_raised_at"] == raised_at
            assert info["name"] == "Ann"

        # Raising again later keeps the first time: nobody jumps the queue.
        clock.advance(30)
        marks = {p.name: len(p.messages) for p in (ann, bob)}
        await hand(ann, True)
        info = await update_about(bob, ann.participant_id, since=marks["Bob"])
        assert info["hand_raised_at"] == raised_at

        marks = {p.name: len(p.messages) for p in (ann, bob)}
        await hand(ann, False)
        for person in (ann, bob):
            info = await update_about(person, ann.participant_id, since=marks[person.name])
            assert info["hand_raised_at"] is None
        # Raised again after lowering: a new time, at the back of the queue.
        clock.advance(1)
        mark = len(bob.messages)
        await hand(ann, True)
        info = await update_about(bob, ann.participant_id, since=mark)
        assert info["hand_raised_at"] == ms(clock) == raised_at + 31_000
        assert ann.errors == [] and bob.errors == []


async def test_hands_are_ordered_by_when_they_went_up_for_everyone_and_newcomers() -> None:
    clock = FakeClock()
    async with meetnow(clock) as running, crowd() as clients:
        room_id = running.new_room()
        people = [SignalingOnly(running.base_url, room_id, name=n) for n in ("A", "B", "C", "D")]
        clients.extend(people)
        for person in people:
            await enter(person)
        a, b, c, d = people
        # C first, then A and D at the same millisecond, then B; D's tie with A goes by id.
        for person, step in ((c, 0.0), (a, 2.5), (d, 0.0), (b, 0.001)):
            clock.advance(step)
            mark = len(person.messages)
            await hand(person, True)
            await update_about(person, person.participant_id, since=mark)
        expected_ties = sorted([a, d], key=lambda p: p.participant_id or "")
        expected = ["C", *(p.name for p in expected_ties), "B"]
        # Everyone in the call sees the same order, from the updates they received ...
        for person in people:  # (its own entry too: updates about oneself come as well)
            await wait_until(
                lambda p=person: len(raise_order([*p.participants.values()])) == 4,
                10,
                f"{person.name} hearing of every hand",
            )
            assert raise_order([*person.participants.values()]) == expected
        # ... and so does someone who joins now, from ``joined`` alone.
        late = SignalingOnly(running.base_url, room_id, name="Late")
        clients.append(late)
        joined = await enter(late)
        assert raise_order(joined["participants"]) == expected
        times = {p["name"]: p["hand_raised_at"] for p in joined["participants"]}
        assert times["C"] + 2500 == times["A"] == times["D"] == times["B"] - 1


async def test_a_host_lowers_anyones_hand_and_others_cannot() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running.base_url)
        host = SignalingOnly(running.base_url, created.id, name="Host")
        ann = SignalingOnly(running.base_url, created.id, name="Ann")
        bob = SignalingOnly(running.base_url, created.id, name="Bob")
        clients.extend([host, ann, bob])
        assert (await enter(host, host_token=created.host_token))["host"] is True
        await enter(ann)
        await enter(bob)
        mark = await hand(ann, True)
        await update_about(bob, ann.participant_id, since=0)
        await update_about(ann, ann.participant_id, since=mark)

        # A guest may not lower someone else's hand; nothing changes (checked after a round trip).
        marks = {p.name: len(p.messages) for p in (host, ann, bob)}
        lower_ann = {"type": "lower_hand", "participant_id": ann.participant_id}
        await refused(bob, lower_ann, "not_host")
        for person in (host, ann):
            await round_trip(person)
            assert updates(person, marks[person.name]) == []
        # The host may: everyone hears it, Ann included.
        marks = {p.name: len(p.messages) for p in (host, ann, bob)}
        await command(host, lower_ann)
        for person in (host, ann, bob):
            info = await update_about(person, ann.participant_id, since=marks[person.name])
            assert info["hand_raised_at"] is None
        room = running.meetnow.rooms.get_room(created.id)
        assert room is not None and room.raised_hands == {}
        # Nobody with that id: said so.
        error = await refused_error(host, {"type": "lower_hand", "participant_id": "nobody"})
        assert (error["code"], error["message"]) == ("out_of_order", "Nobody with that id is here.")
        await refused(host, {"type": "lower_hand", "participant_id": ""}, "invalid_message")


async def refused_error(client: ParticipantClient, message: dict[str, Any]) -> dict[str, Any]:
    mark = await command(client, message)
    error = await reply(client, {"error"}, since=mark)
    assert error["fatal"] is False
    return error


async def test_a_lobby_guest_cannot_raise_a_hand() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running.base_url, lobby=True)
        host = SignalingOnly(running.base_url, created.id, name="Host")
        guest = SignalingOnly(running.base_url, created.id, name="Guest")
        clients.extend([host, guest])
        await enter(host, host_token=created.host_token)
        assert (await enter(guest))["type"] == "waiting"
        mark = len(host.messages)
        await refused(guest, {"type": "raise_hand", "raised": True}, "out_of_order")
        await round_trip(host)
        assert updates(host, mark) == []


async def test_a_hand_survives_a_reconnect_of_the_same_session_and_goes_on_leave() -> None:
    clock = FakeClock()
    async with meetnow(clock) as running, crowd() as clients:
        room_id = running.new_room()
        ann = SignalingOnly(running.base_url, room_id, name="Ann")
        watcher = SignalingOnly(running.base_url, room_id, name="Watcher")
        clients.extend([ann, watcher])
        await enter(ann)
        await enter(watcher)
        raised_at = ms(clock)
        mark = await hand(ann, True)
        await update_about(ann, ann.participant_id, since=mark)
        clock.advance(10)

        # The same session joins again from a new connection (a reload, a network change).
        again = SignalingOnly(running.base_url, room_id, name="Ann", session=ann.session)
        clients.append(again)
        mark = len(watcher.messages)
        joined = await enter(again)
        assert joined["hand_raised_at"] == raised_at  # her own page is told too
        assert await ann.wait_closed(10) == 4000
        came_back = await reply(watcher, {"participant_joined"}, since=mark)
        assert came_back["participant"]["id"] == again.participant_id
        assert came_back["participant"]["hand_raised_at"] == raised_at

        # Leaving (``leave``) lowers it: the same session joining again has it down.
        await again.close()
        await reply(watcher, {"participant_left"}, since=mark)
        back = SignalingOnly(running.base_url, room_id, name="Ann", session=ann.session)
        clients.append(back)
        mark = len(watcher.messages)
        assert (await enter(back))["hand_raised_at"] is None
        rejoined = await reply(watcher, {"participant_joined"}, since=mark)
        assert rejoined["participant"]["hand_raised_at"] is None
