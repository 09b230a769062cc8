"""The Discord adapter against a local fake Discord: the real discord.py client (gateway bot), the
HTTP interactions endpoint with really signed requests, live card edits from real participants,
and the failures Discord hands out."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.discord import DISCORD, INVITE_PERMISSIONS, DiscordAdapter, invite_url
from signaling.client import ParticipantClient

from .conftest import FakeClock, RunningServer, start_server, test_settings
from .fakes.discord import (
    APPLICATION_ID,
    GUILD_ID,
    FakeDiscord,
    forbidden,
    rate_limited,
    token_expired,
    user,
)

STARTER = user(1_300_000_000_000_000_001, "starter", "Starter")


@dataclass
class Env:
    fake: FakeDiscord
    server: RunningServer
    runner: web.AppRunner
    clock: FakeClock

    @property
    def adapter(self) -> DiscordAdapter:
        return self.server.app[DISCORD]

    async def settle(self) -> None:
        await self.adapter.cards.drained()


@asynccontextmanager
async def discord_env(*, gateway: bool = True, **overrides: Any) -> AsyncIterator[Env]:
    fake = await FakeDiscord().start()
    clock = FakeClock()
    values: dict[str, Any] = {
        "discord_api_url": fake.api_url,
        "room_empty_grace_seconds": 30,
    }
    if gateway:
        values |= {"discord_token": fake.token, "discord_guild_ids": [GUILD_ID]}
    values |= overrides
    running, runner = await start_server(test_settings(**values), clock)
    try:
        if gateway and "discord_token" not in overrides:
            await fake.wait_for(fake.ready.is_set)
        yield Env(fake, running, runner, clock)
    finally:
        await runner.cleanup()
        await fake.close()


def embed_of(message: dict[str, Any]) -> dict[str, Any]:
    embed: dict[str, Any] = message["embeds"][0]
    return embed


def in_the_call(message: dict[str, Any]) -> str:
    fields = embed_of(message).get("fields", [])
    return "\n".join(f["value"] for f in fields if f["name"] == "In the call")


def join_url(message: dict[str, Any]) -> str:
    (row,) = message["components"]
    (button,) = row["components"]
    assert button["type"] == 2 and button["style"] == 5 and button["label"] == "Join"
    assert "custom_id" not in button
    url: str = button["url"]
    return url


async def join(env: Env, url: str, name: str) -> ParticipantClient:
    client = ParticipantClient(env.server.base_url, url.rsplit("/", 1)[1], name=name)
    await client.join()
    return client


async def answered(env: Env, **interaction: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send ``/meetnow`` through the gateway; the interaction and the message it produced."""
    payload = await env.fake.send_interaction(**interaction)
    message = await env.fake.wait_for(lambda: env.fake.message_for(payload["token"]))
    return payload, message


# 1. The gateway bot, start to end -----------------------------------------------------------------


async def test_gateway_bot_answers_and_keeps_the_card_up_to_date() -> None:
    async with discord_env() as env:
        fake = env.fake
        # Sharded client: the gateway was discovered through REST, and IDENTIFY named a shard.
        assert fake.calls_to("gateway_bot")
        assert fake.identify is not None and fake.identify["shard"] == [0, 1]
        assert fake.identify["intents"] == 1  # guilds only: nothing privileged
        # /meetnow registered in the configured guild (shows at once), not globally.
        (command,) = fake.commands[GUILD_ID]
        assert None not in fake.commands
        assert command["name"] == "meetnow"
        assert [(o["name"], o["type"], o["required"]) for o in command["options"]] == [
            ("topic", 3, False),
            ("invite", 6, False),
        ]
        assert env.adapter.invite_url == invite_url(APPLICATION_ID)
        assert env.adapter.invite_url.endswith(f"&scope=bot&permissions={INVITE_PERMISSIONS}")

        _, message = await answered(env, topic="Weekly sync")
        (callback,) = fake.calls_to("callback")
        assert callback.query.get("with_response") in ("1", "true")
        assert callback.body["type"] == 4  # answered at once, well within 3 s
        embed = embed_of(message)
        assert embed["title"] == "Weekly sync"
        assert f"<@{STARTER['id']}>" in embed["description"]
        assert in_the_call(message) == "Nobody yet"
        url = join_url(message)
        assert url.startswith(env.server.base_url + "/r/")
        async with aiohttp.ClientSession() as http, http.get(url) as page:
            assert page.status == 200

        ada = await join(env, url, "Ada Lovelace")
        grace = await join(env, url, "Grace Hopper")
        await fake.wait_for(lambda: "Grace Hopper" in in_the_call(message))
        assert "Ada Lovelace" in in_the_call(message)

        await ada.close()
        await fake.wait_for(lambda: "Ada Lovelace" not in in_the_call(message))
        assert "Grace Hopper" in in_the_call(message)
        await grace.close()
        await fake.wait_for(lambda: in_the_call(message) == "Nobody right now")
        assert join_url(message) == url  # the button stays while the room is open

        env.clock.advance(31)
        assert [room.origin for room in env.server.meetnow.rooms.sweep()] == ["discord"]
        await fake.wait_for(lambda: message["components"] == [])
        assert embed_of(message)["description"].startswith("Ended · 1 min · 2 people")
        await env.settle()
        # Fresh token all along: every edit went through the interaction's webhook.
        assert fake.edits and all(route == "webhook_patch" for route, _, _ in fake.edits)
        assert not fake.calls_to("channel_patch")
        assert env.adapter.cards.cards() == []  # nothing about the room outlives it


# 2. Invite -----------------------------------------------------------------------------------------


async def test_the_invited_user_is_mentioned_and_nobody_else() -> None:
    async with discord_env() as env:
        invitee = user(1_300_000_000_000_000_042, "invitee")
        _, message = await answered(env, invite=invitee)
        assert message["content"].startswith(f"<@{invitee['id']}>")
        allowed = message["allowed_mentions"]
        assert allowed["parse"] == []  # no @everyone, no roles, no other users
        assert [str(u) for u in allowed["users"]] == [invitee["id"]]
        assert embed_of(message)["title"] == "Meet now"


# 3. After 15 minutes: the bot token ------------------------------------------------------------


async def test_after_15_minutes_edits_go_through_the_channel_with_the_bot_token() -> None:
    async with discord_env() as env:
        payload, message = await answered(env, topic="Long one")
        url = join_url(message)
        env.clock.advance(15 * 60)
        env.fake.expire(payload["token"])
        client = await join(env, url, "Late Joiner")
        await env.fake.wait_for(lambda: "Late Joiner" in in_the_call(message))
        await client.close()
        await env.fake.wait_for(lambda: in_the_call(message) == "Nobody right now")
        env.clock.advance(31)
        env.server.meetnow.rooms.sweep()
        await env.fake.wait_for(lambda: message["components"] == [])
        await env.settle()
        patches = env.fake.calls_to("channel_patch")
        assert len(patches) >= 2
        assert all(
            p.path.endswith(f"/channels/{payload['channel_id']}/messages/{message['id']}")
            for p in patches
        )
        assert all(p.headers["Authorization"] == f"Bot {env.fake.token}" for p in patches)
        assert not env.fake.calls_to("webhook_patch")  # the stale token was never tried


# 4. HTTP interactions endpoint -------------------------------------------------------------------


def signed(key: Ed25519PrivateKey, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    signature = key.sign(timestamp.encode() + body).hex()
    return {
        "X-Signature-Ed25519": signature,
        "X-Signature-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


async def test_http_endpoint_checks_signatures_and_answers_the_command(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw().hex()
    async with discord_env(
        gateway=False, discord_public_key=public, discord_application_id=str(APPLICATION_ID)
    ) as env:
        endpoint = env.server.base_url + "/discord/interactions"
        async with aiohttp.ClientSession() as http:

            async def post(body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
                async with http.post(endpoint, data=body, headers=headers) as response:
                    text = await response.text()
                    is_json = response.content_type == "application/json"
                    return response.status, json.loads(text) if is_json else text

            ping = b'{"type":1,"id":"1","application_id":"1","token":"t","version":1}'
            assert await post(ping, signed(key, ping)) == (200, {"type": 1})

            # Forged: another key's signature; a signature of another body; no headers.
            other = Ed25519PrivateKey.generate()
            assert (await post(ping, signed(other, ping)))[0] == 401
            assert (await post(ping, signed(key, b'{"type":1}')))[0] == 401
            assert (await post(ping, {"Content-Type": "application/json"}))[0] == 401
            only_signature = signed(key, ping)
            del only_signature["X-Signature-Timestamp"]
            assert (await post(ping, only_signature))[0] == 401
            garbage = signed(key, ping) | {"X-Signature-Ed25519": "zz" * 64}
            assert (await post(ping, garbage))[0] == 401
            huge = b'{"type":1,"pad":"' + b"x" * 70_000 + b'"}'
            assert (await post(huge, signed(key, huge)))[0] == 413

            payload = env.fake.interaction_payload(topic="Retro")
            body = json.dumps(payload).encode()
            status, response = await post(body, signed(key, body))
            assert status == 200 and response["type"] == 4
            message = env.fake.create_answer(payload, response)
            assert embed_of(message)["title"] == "Retro"
            url = join_url(message)
            async with http.get(url) as page:
                assert page.status == 200

        # Edits go through the interaction's webhook with our own HTTP calls; a 429 waits
        # ``retry_after`` once and is retried.
        env.fake.fail("webhook_patch", rate_limited(0.1))
        ada = await join(env, url, "Ada")
        await env.fake.wait_for(lambda: "Ada" in in_the_call(message))
        assert [c.status for c in env.fake.calls_to("webhook_patch")][:2] == [429, 200]

        # No bot token: after 15 minutes the card can no longer change; said once in the log.
        env.clock.advance(15 * 60)
        bob = await join(env, url, "Bob")
        await env.settle()
        await bob.close()
        await env.settle()
        assert "Bob" not in in_the_call(message)
        no_token = [r for r in caplog.records if "no bot token" in r.getMessage()]
        assert len(no_token) == 1
        await ada.close()


async def test_http_endpoint_with_a_bot_token_edits_through_the_channel_after_15_minutes() -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw().hex()
    async with discord_env(discord_public_key=public) as env:
        payload = env.fake.interaction_payload(topic="Both")
        body = json.dumps(payload).encode()
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                env.server.base_url + "/discord/interactions", data=body, headers=signed(key, body)
            ) as response,
        ):
            assert response.status == 200
            message = env.fake.create_answer(payload, await response.json())
        # The answer's message id is looked up while the token works, for the bot path later.
        await env.fake.wait_for(lambda: env.fake.calls_to("webhook_get"))
        env.clock.advance(15 * 60)
        client = await join(env, join_url(message), "Ada")
        await env.fake.wait_for(lambda: "Ada" in in_the_call(message))
        assert [c.route for c in env.fake.calls if c.route.endswith("patch")] == ["channel_patch"]
        await client.close()


# 5. Failures --------------------------------------------------------------------------------------


async def test_missing_permissions_are_logged_once_and_the_room_keeps_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with discord_env() as env:
        _, message = await answered(env)
        url = join_url(message)
        env.fake.fail("webhook_patch", forbidden(), times=2)
        first = await join(env, url, "First")
        await env.settle()
        second = await join(env, url, "Second")
        await env.settle()
        assert [c.status for c in env.fake.calls_to("webhook_patch")] == [403, 403]
        refused = [r for r in caplog.records if "missing permissions" in r.getMessage()]
        assert len(refused) == 1 and "50013" in refused[0].getMessage()
        # The room works, and the card catches up once Discord lets it.
        third = await join(env, url, "Third")
        await env.fake.wait_for(lambda: "Third" in in_the_call(message))
        for client in (first, second, third):
            await client.close()


async def test_a_rate_limited_edit_is_retried_after_retry_after() -> None:
    async with discord_env() as env:
        _, message = await answered(env)
        env.fake.fail("webhook_patch", rate_limited(0.2))
        client = await join(env, join_url(message), "Patient")
        await env.fake.wait_for(lambda: "Patient" in in_the_call(message))
        first, second = env.fake.calls_to("webhook_patch")[:2]
        assert (first.status, second.status) == (429, 200)
        await client.close()


async def test_an_expired_interaction_token_falls_back_to_the_bot_token() -> None:
    async with discord_env() as env:
        _, message = await answered(env)
        env.fake.fail("webhook_patch", token_expired())
        client = await join(env, join_url(message), "Fallback")
        await env.fake.wait_for(lambda: "Fallback" in in_the_call(message))
        assert [c.status for c in env.fake.calls_to("webhook_patch")] == [401]
        assert [c.status for c in env.fake.calls_to("channel_patch")] == [200]
        await client.close()
        await env.fake.wait_for(lambda: "Fallback" not in in_the_call(message))
        # Once expired, the webhook is not tried again.
        assert len(env.fake.calls_to("webhook_patch")) == 1


async def test_a_bad_token_at_start_up_is_one_log_line_and_the_server_keeps_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with discord_env(discord_token="not-the-right-token") as env:
        await env.fake.wait_for(lambda: [c for c in env.fake.calls_to("users_me") if c.status])
        await env.fake.wait_for(lambda: [r for r in caplog.records if r.name == "bot.discord"])
        async with (
            aiohttp.ClientSession() as http,
            http.post(env.server.base_url + "/api/rooms", json={}) as response,
        ):
            assert response.status == 201
        assert not env.fake.calls_to("gateway_bot")
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1, [r.getMessage() for r in problems]
    assert problems[0].name == "bot.discord" and "refused" in problems[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)  # no traceback anywhere
    assert "not-the-right-token" not in caplog.text


async def test_too_many_rooms_is_an_ephemeral_answer() -> None:
    async with discord_env(max_rooms=1) as env:
        env.server.new_room()
        _, message = await answered(env, topic="One too many")
        assert message["flags"] & 64
        assert "too many" in message["content"]
        assert message["components"] == []


async def test_a_bot_that_cannot_see_the_channel_warns_the_user_at_once() -> None:
    async with discord_env() as env:
        await answered(env, app_permissions=1 << 11)  # Send Messages, but not View Channel
        (warning,) = await env.fake.wait_for(lambda: env.fake.followups)
        assert warning["flags"] & 64 and "15 minutes" in warning["content"]


# 6. Logs --------------------------------------------------------------------------------------


async def test_logs_of_a_whole_flow_hold_no_token_name_topic_or_room_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with discord_env() as env:
        env.fake.fail("webhook_patch", forbidden())
        env.fake.fail("webhook_patch", rate_limited(0.05))
        payload, message = await answered(env, topic="Secret Topic", invite=user(77, "Invitee"))
        url = join_url(message)
        room_id = url.rsplit("/", 1)[1]
        zelda = await join(env, url, "Zelda Secretname")
        sneaky = await join(env, url, "@everyone *look* <@123456789012345678>")
        await env.fake.wait_for(lambda: "Secretname" in in_the_call(message))
        await env.fake.wait_for(lambda: "look" in in_the_call(message))
        # Untrusted names are shown as text: no mention, no markdown.
        shown = in_the_call(message)
        assert "@everyone" not in shown and "<@123456789012345678>" not in shown
        assert "\\*look\\*" in shown
        env.fake.fail("channel_patch", forbidden())
        env.clock.advance(15 * 60)
        await zelda.close()
        await sneaky.close()
        env.clock.advance(31)
        env.server.meetnow.rooms.sweep()
        await env.fake.wait_for(lambda: message["components"] == [])
        await env.settle()
    secrets = [
        env.fake.token,
        payload["token"],
        "Secret Topic",
        "Secretname",
        "Zelda",
        "look",
        room_id,
        url,
    ]
    # The access log (off in ``meetnow serve``) prints request paths; everything else is ours
    # or a library's and must hold none of these.
    records = [r for r in caplog.records if r.name != "aiohttp.access"]
    assert any(r.name == "bot.discord" for r in records)
    text = "\n".join(caplog.handler.format(r) for r in records)
    for secret in secrets:
        assert secret not in text, secret
