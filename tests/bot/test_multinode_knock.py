"""A lobby's Admit / Deny clicked on a chat card is answered on whichever node receives the click
(issue 16, many nodes): the card was posted by node B (the slash command landed there), a guest
knocks through node A (which claims the room: its lobby is in A's memory alone), and the host's
click is POSTed to node B. B asks A over the node bus (:mod:`signaling.redis_knock`) and the
guest is admitted, or denied. Two real servers (the whole meetnow app each, in this process) on a
real ``redis-server``, the real slack-bolt adapter on both against the fake Slack.

The test of the test turns the cross-node path off on B: the same click then answers "They are
no longer waiting." (B has nobody waiting in memory) and the guest still waits on A."""

from __future__ import annotations

from typing import Any

import pytest

from signaling.client import ParticipantClient

from ..conftest import RunningServer
from ..fakes.slack import FakeSlack, block_actions
from .test_cards_restart import command
from .test_multinode_cards import fake, nodes
from .test_slack import buttons, wait_rows

__all__ = ["fake", "nodes"]  # the fixtures, shared with the cards test


async def guest_knocking_on_a(
    nodes: tuple[RunningServer, RunningServer], fake: FakeSlack
) -> tuple[ParticipantClient, dict[str, Any]]:
    """``/meetnow --lobby Interview`` through node B (a Block Kit card: the buttons go on it);
    Mallory knocks through node A. Returns her client and the card's row of buttons for her,
    as node A drew them on B's card."""
    node_a, node_b = nodes
    fake.fail("calls.add", "missing_scope")
    await command(node_b, fake, "--lobby Interview")
    await fake.wait_calls("chat.postMessage")
    await node_b.meetnow.rooms.flush()  # the card's reference is in Redis for node A
    [room] = node_b.meetnow.rooms.rooms()
    mallory = ParticipantClient(node_a.base_url, room.id, name="Mallory")
    await mallory.join(wait_for="waiting")
    rows = await wait_rows(fake, {"Mallory"})
    [waiting_id] = node_a.meetnow.rooms.get_room(room.id).waiting  # type: ignore[union-attr]
    assert node_b.meetnow.rooms.get_room(room.id).waiting == {}  # type: ignore[union-attr]
    row = buttons(rows["Mallory"])
    assert row["Admit"]["value"] == f"{room.id}:{waiting_id}"
    return mallory, row


async def test_admit_clicked_on_another_node_lets_the_guest_in(
    nodes: tuple[RunningServer, RunningServer], fake: FakeSlack
) -> None:
    node_b = nodes[1]
    mallory, row = await guest_knocking_on_a(nodes, fake)
    try:
        click = block_actions(
            "meetnow_admit", row["Admit"]["value"], response_url=fake.response_url("ada")
        )
        assert await fake.click(f"{node_b.base_url}/slack/events", click) == 200
        joined = await mallory.next_message("joined", since=0)
        assert joined["host"] is False
        await wait_rows(fake, set())
        assert fake.responses == []  # the host was told nothing: the card shows it
    finally:
        await mallory.close()


async def test_deny_clicked_on_another_node_turns_the_guest_away(
    nodes: tuple[RunningServer, RunningServer], fake: FakeSlack
) -> None:
    node_b = nodes[1]
    mallory, row = await guest_knocking_on_a(nodes, fake)
    try:
        click = block_actions(
            "meetnow_deny", row["Deny"]["value"], response_url=fake.response_url("ada")
        )
        assert await fake.click(f"{node_b.base_url}/slack/events", click) == 200
        error = await mallory.next_message("error", since=0)
        assert error["code"] == "denied"
        await wait_rows(fake, set())
        assert fake.responses == []
    finally:
        await mallory.close()


async def test_the_test_without_the_cross_node_path_the_click_finds_nobody_waiting(
    nodes: tuple[RunningServer, RunningServer], fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    node_a, node_b = nodes
    mallory, row = await guest_knocking_on_a(nodes, fake)
    # Deliberately broken: node B answers the click from its own memory.
    monkeypatch.setattr(node_b.meetnow.rooms, "knocks", None)
    try:
        click = block_actions(
            "meetnow_admit", row["Admit"]["value"], response_url=fake.response_url("ada")
        )
        assert await fake.click(f"{node_b.base_url}/slack/events", click) == 200
        # B's private reply is the round trip: the click was handled to its end.
        await fake.wait_responses()
        [(where, reply)] = fake.responses
        assert (where, reply["text"]) == ("ada", "They are no longer waiting.")
        room = node_a.meetnow.rooms.get_room(row["Admit"]["value"].split(":")[0])
        assert room is not None and len(room.waiting) == 1
        assert not any(m["type"] == "joined" for m in mallory.messages)
    finally:
        await mallory.close()
