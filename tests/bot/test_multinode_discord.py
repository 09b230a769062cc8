"""Discord cards with two nodes on one Redis (issue 16, many nodes): Discord's gateway bot is
logged in on one node only (the lease holder), yet the room's node, elsewhere, edits the card
with the bot token through Discord's REST API, no gateway needed. Two real servers (the whole
meetnow app each, in this process) on a real ``redis-server``, the real discord.py adapter on
both against the fake Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from pydantic import SecretStr

from bot.discord import DISCORD, DiscordAdapter
from signaling.client import ParticipantClient

from ..conftest import RunningServer, start_server, test_settings
from ..fakes.discord import CHANNEL_ID, GUILD_ID, FakeDiscord
from ..support.redis_server import RedisServer
from .test_discord import in_the_call, join_url


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord().start()
    yield fake
    await fake.close()


def adapter_of(node: RunningServer) -> DiscordAdapter:
    return node.app[DISCORD]


@pytest.fixture
async def nodes(
    redis_server: RedisServer, fake: FakeDiscord
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """Node A starts first and logs its bot in on the gateway; node B then waits for the lease."""
    settings: dict[str, Any] = {
        "discord_api_url": fake.api_url,
        "discord_token": fake.token,
        "discord_guild_ids": [GUILD_ID],
        "redis_url": SecretStr(redis_server.url),
    }
    async with AsyncExitStack() as stack:
        node_a, runner_a = await start_server(test_settings(**settings))
        stack.push_async_callback(runner_a.cleanup)
        await fake.wait_for(lambda: adapter_of(node_a).ready_client() is not None, timeout=30)
        node_b, runner_b = await start_server(test_settings(**settings))
        stack.push_async_callback(runner_b.cleanup)
        yield node_a, node_b


async def test_the_rooms_node_without_the_gateway_edits_the_card_with_the_bot_token(
    nodes: tuple[RunningServer, RunningServer], fake: FakeDiscord
) -> None:
    """``/meetnow`` over the gateway (node A posts the card); Ada joins through node B, which
    claims the room and has no gateway bot: B finds the card in Redis and edits it with a
    ``PATCH /channels/.../messages/...`` carrying the bot token, once per event."""
    node_a, node_b = nodes
    payload = await fake.send_interaction(topic="Standup")
    message = await fake.wait_for(lambda: fake.message_for(payload["token"]))
    room_id = join_url(message).rsplit("/", 1)[1]
    await adapter_of(node_a).cards.drained()
    await node_a.meetnow.rooms.flush()  # the card's reference is in Redis
    patches_before = len(fake.calls_to("channel_patch"))
    ada = ParticipantClient(node_b.base_url, room_id, name="Ada Lovelace")
    try:
        await ada.join()
        await fake.wait_for(lambda: in_the_call(message) == "• Ada Lovelace", timeout=30)
        assert adapter_of(node_b).ready_client() is None  # B never logged in on the gateway
        await ada.close()
        await fake.wait_for(lambda: in_the_call(message) == "Nobody right now", timeout=30)
    finally:
        await ada.close()
    for node in nodes:
        await adapter_of(node).cards.drained()
    patches = fake.calls_to("channel_patch")[patches_before:]
    assert len(patches) == 2  # Ada in, Ada out: each once, by B
    assert all(
        p.path.endswith(f"/channels/{CHANNEL_ID}/messages/{message['id']}")
        and p.headers["Authorization"] == f"Bot {fake.token}"
        and p.status == 200
        for p in patches
    )
