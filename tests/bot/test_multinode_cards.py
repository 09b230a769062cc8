"""Chat cards with several nodes on one Redis (issue 16, many nodes): a Slack card posted by the
node that got the slash command (node B) is updated by the node whose room it is (node A, where
the participants join), exactly once per event, and never by B. Two real servers (the whole
meetnow app each, in this process) on a real ``redis-server``, the real slack-bolt adapter on
both against the fake Slack. The test of the test wires B's adapter to A's room events too (two
nodes delivering events) and sees the check report the card updated twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from pydantic import SecretStr

from bot.slack import SLACK, SlackAdapter
from signaling.client import ParticipantClient

from ..conftest import RunningServer, start_server, test_settings
from ..fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from ..support.redis_server import RedisServer
from .test_cards_restart import command, room_id_of


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def nodes(
    redis_server: RedisServer, fake: FakeSlack
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    settings: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "redis_url": SecretStr(redis_server.url),
    }
    async with AsyncExitStack() as stack:
        pair = []
        for _ in range(2):
            running, runner = await start_server(test_settings(**settings))
            stack.push_async_callback(runner.cleanup)
            pair.append(running)
        yield pair[0], pair[1]


def adapter_of(node: RunningServer) -> SlackAdapter:
    return node.app[SLACK]


def participant_updates(fake: FakeSlack, call_id: str) -> Counter[tuple[str, str]]:
    """How many times the card's Calls API call was told of each (method, person)."""
    counted: Counter[tuple[str, str]] = Counter()
    for call in fake.calls:
        if (
            call.ok
            and call.method.startswith("calls.participants.")
            and (call.params.get("id") == call_id)
        ):
            for user in call.params["users"]:
                counted[(call.method, str(user.get("display_name")))] += 1
    return counted


def updated_more_than_once(updates: Counter[tuple[str, str]]) -> list[tuple[str, str]]:
    """The events the card was told of more than once (empty: each exactly once)."""
    return [event for event, times in updates.items() if times > 1]


async def card_on_b_people_on_a(
    nodes: tuple[RunningServer, RunningServer], fake: FakeSlack
) -> Counter[tuple[str, str]]:
    """``/meetnow Standup`` through node B; Ada and Bea join through node A (which claims the
    room), then Ada leaves. Returns the card's participant updates once both nodes' adapters
    have run every update they scheduled (the events reach them as they happen)."""
    node_a, node_b = nodes
    await command(node_b, fake, "Standup")
    [add] = await fake.wait_calls("calls.add")
    await fake.wait_calls("chat.postMessage")
    await adapter_of(node_b).cards.drained()
    await node_b.meetnow.rooms.flush()  # the card's reference is in Redis
    room_id, call_id = room_id_of(add.params["join_url"]), add.answer["call"]["id"]
    ada = ParticipantClient(node_a.base_url, room_id, name="Ada")
    bea = ParticipantClient(node_a.base_url, room_id, name="Bea")
    try:
        await ada.join()
        await bea.join()
        await fake.wait_calls("calls.participants.add", 2)
        await ada.close()
        await fake.wait_calls("calls.participants.remove")
        for node in nodes:
            await adapter_of(node).cards.drained()
    finally:
        await bea.close()
        await ada.close()
    return participant_updates(fake, call_id)


async def test_a_card_posted_on_one_node_is_updated_once_by_the_rooms_node(
    nodes: tuple[RunningServer, RunningServer], fake: FakeSlack
) -> None:
    updates = await card_on_b_people_on_a(nodes, fake)
    assert updates == Counter(
        {
            ("calls.participants.add", "Ada"): 1,
            ("calls.participants.add", "Bea"): 1,
            ("calls.participants.remove", "Ada"): 1,
        }
    )
    assert updated_more_than_once(updates) == []


async def test_the_test_two_nodes_delivering_events_update_the_card_twice(
    nodes: tuple[RunningServer, RunningServer], fake: FakeSlack
) -> None:
    node_a, node_b = nodes
    # Deliberately broken: node B's adapter hears node A's room events as well.
    node_a.meetnow.rooms.add_listener(adapter_of(node_b).cards)
    updates = await card_on_b_people_on_a(nodes, fake)
    assert sorted(updated_more_than_once(updates)) == [
        ("calls.participants.add", "Ada"),
        ("calls.participants.add", "Bea"),
        ("calls.participants.remove", "Ada"),
    ]
