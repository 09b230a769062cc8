"""The Discord adapter against a local fake Discord: the real discord.py client (gateway bot), the
HTTP interactions endpoint with really signed requests, live card edits from real participants,
and the failures Discord hands out."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.discord import (
    COMMAND,
    DISCORD,
    INVITE_PERMISSIONS,
    DiscordAdapter,
    invite_url,
    live_edit,
    parse_duration,
)
from signaling.client import ParticipantClient
from signaling.rooms import Room, RoomService

from ..conftest import FakeClock, RunningServer, start_server, test_settings
from ..fakes.discord import (
    APPLICATION_ID,
    GUILD_ID,
    FakeDiscord,
    forbidden,
    rate_limited,
    token_expired,
    user,
)

STARTER = user(1_300_000_000_000_000_001, "starter", "Starter")
"""Who runs ``/meetnow`` in these tests (the fake's default invoker): the host."""
STRANGER = user(1_300_000_000_000_000_002, "stranger", "Stranger")
"""Someone else in the channel, who can see and click the same buttons."""


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
    row = message["components"][0]  # then a row of Admit / Deny per person waiting
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


def the_room(env: Env, message: dict[str, Any]) -> Room:
    room = env.server.meetnow.rooms.get_room(join_url(message).rsplit("/", 1)[1])
    assert room is not None
    return room


def field(message: dict[str, Any], name: str) -> str:
    fields = embed_of(message).get("fields", [])
    return "\n".join(f["value"] for f in fields if f["name"] == name)


def knock_rows(message: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The Admit / Deny buttons of the card, one row per person waiting."""
    return [row["components"] for row in message["components"][1:]]


async def host_link_for(env: Env, payload: dict[str, Any]) -> str:
    """The host link the command's author was sent: an ephemeral follow-up on their
    interaction's own webhook (nobody else's)."""
    call = await env.fake.wait_for(
        lambda: next(
            (
                c
                for c in env.fake.calls_to("followup")
                if c.status == 200 and "#host=" in c.body["content"]
            ),
            None,
        )
    )
    assert call.path.endswith(f"/webhooks/{APPLICATION_ID}/{payload['token']}")
    assert call.body["flags"] & 64  # ephemeral: the author alone sees it
    assert call.body["flags"] & 4  # no link preview: nothing fetches it
    content: str = call.body["content"]
    assert "Your host link — keep it to yourself" in content
    (link,) = [word for word in content.split() if "#host=" in word]
    return link


async def knock(env: Env, url: str, name: str) -> ParticipantClient:
    """A guest who joins a room with a lobby and is told to wait."""
    client = ParticipantClient(env.server.base_url, url.rsplit("/", 1)[1], name=name)
    await client.connect()
    since = len(client.messages)
    await client.send(
        {
            "type": "join",
            "version": 1,
            "name": name,
            "session": client.session,
            "audio": False,
            "video": False,
        }
    )
    await client.next_message("waiting", since=since)
    return client


def received(client: ParticipantClient) -> list[str]:
    return [m["type"] for m in client.messages]


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
            ("lobby", 5, False),
            ("for", 3, False),
        ]
        # What discord.py registers is what COMMAND (the HTTP-only setup's curl) says.
        fields = ("name", "type", "description", "description_localizations", "required")
        assert [{k: o[k] for k in fields} for o in command["options"]] == COMMAND["options"]
        assert env.adapter.invite_url == invite_url(APPLICATION_ID)
        assert env.adapter.invite_url.endswith(f"&scope=bot&permissions={INVITE_PERMISSIONS}")

        _, message = await answered(env, topic="Weekly sync")
        (callback,) = fake.calls_to("callback")
        assert callback.query.get("with_response") in ("1", "true")
        assert len(message["components"]) == 1  # no lobby: the Join link alone
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
        warning = await env.fake.wait_for(
            lambda: next((m for m in env.fake.followups if "15 minutes" in m["content"]), None)
        )
        assert warning["flags"] & 64


# 6. Logs --------------------------------------------------------------------------------------


async def test_logs_of_a_whole_flow_hold_no_token_name_topic_or_room_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with discord_env() as env:
        payload, message = await answered(
            env, topic="Secret Topic", invite=user(77, "Invitee"), lobby=True, duration="2h"
        )
        url = join_url(message)
        room_id = url.rsplit("/", 1)[1]
        link = await host_link_for(env, payload)
        # The lobby, answered from the chat: a stranger's click, then the host's.
        knocker = await knock(env, url, "Knocker Hiddenname")
        await env.fake.wait_for(lambda: knock_rows(message))
        admit = knock_rows(message)[0][0]["custom_id"]
        await env.fake.send_component(message, admit, STRANGER)
        await env.fake.send_component(message, admit, STARTER)
        await knocker.next_message("joined", since=0)
        await env.settle()
        env.fake.fail("webhook_patch", forbidden())
        env.fake.fail("webhook_patch", rate_limited(0.05))
        rooms = env.server.meetnow.rooms
        rooms.set_lobby(the_room(env, message), False)  # the others walk straight in
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
        await knocker.close()
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
        "Hiddenname",
        room_id,
        url,
        link,
        link.split("#host=")[1],
        admit,
    ]
    # The access log (off in ``meetnow serve``) prints request paths; everything else is ours
    # or a library's and must hold none of these.
    records = [r for r in caplog.records if r.name != "aiohttp.access"]
    assert any(r.name == "bot.discord" for r in records)
    text = "\n".join(caplog.handler.format(r) for r in records)
    for secret in secrets:
        assert secret not in text, secret


# 7. Zoombombing defences: host, lobby from the chat, lifetime, rate limits ------------------------


async def test_lobby_over_the_gateway_only_the_hosts_clicks_count() -> None:
    async with discord_env() as env:
        fake = env.fake
        payload, message = await answered(env, topic="Standup", lobby=True)
        room = the_room(env, message)
        assert room.lobby and room.origin == "discord"
        assert "Lobby on" in embed_of(message)["description"]
        # The host link goes to the author alone; the channel's message never holds it.
        link = await host_link_for(env, payload)
        url = join_url(message)
        assert link.startswith(url + "#host=")
        assert "#host=" not in json.dumps(message)
        holding = [m for m in fake.messages.values() if "#host=" in json.dumps(m)]
        assert [m["flags"] & 64 for m in holding] == [64]  # only the ephemeral follow-up
        assert all(link not in json.dumps(body) for _, _, body in fake.edits)

        ada = await knock(env, url, "Ada *Lovelace*")
        await fake.wait_for(lambda: knock_rows(message))
        assert field(message, "Waiting in the lobby") == "Ada \\*Lovelace\\* is waiting"
        ((admit, deny),) = knock_rows(message)
        (ada_id,) = room.waiting
        assert admit["label"] == "Admit Ada *Lovelace*" and admit["style"] == 3
        assert deny["label"] == "Deny Ada *Lovelace*" and deny["style"] == 4
        assert admit["custom_id"] == f"meetnow:admit:{room.id}:{ada_id}"
        assert deny["custom_id"] == f"meetnow:deny:{room.id}:{ada_id}"
        assert len(admit["custom_id"]) <= 100

        # Someone else clicks Admit: told so, alone; Ada still waits.
        click = await fake.send_component(message, admit["custom_id"], STRANGER)
        refusal = await fake.wait_for(lambda: fake.message_for(click["token"]))
        assert refusal["content"] == "Only the host can admit people."
        assert refusal["flags"] & 64 and refusal["id"] != message["id"]
        # ... and on a message that is not the card (say, a copy), not even the host's click.
        forged = {**message, "id": str(int(message["id"]) + 1)}
        fake.messages[int(forged["id"])] = forged
        click = await fake.send_component(forged, admit["custom_id"], STARTER)
        refusal = await fake.wait_for(lambda: fake.message_for(click["token"]))
        assert refusal["flags"] & 64 and "does not belong" in refusal["content"]
        await env.settle()
        assert list(room.waiting) == [ada_id] and "joined" not in received(ada)
        assert len(knock_rows(message)) == 1

        # The host admits her from the message: she is in, and her buttons are gone.
        since = len(ada.messages)
        click = await fake.send_component(message, admit["custom_id"], STARTER)
        joined = await ada.next_message("joined", since=since)
        assert joined["host"] is False
        # Ada's websocket and the click's callback race: wait for the callback too.
        (callback,) = await fake.wait_for(
            lambda: [c for c in fake.calls_to("callback") if click["id"] in c.path]
        )
        assert callback.body["type"] == 7  # the clicked message itself is updated
        await fake.wait_for(lambda: not knock_rows(message) and "Ada" in in_the_call(message))
        assert join_url(message) == url

        # Another guest; the host denies him.
        mallory = await knock(env, url, "Mallory")
        await fake.wait_for(lambda: knock_rows(message))
        ((_, deny),) = knock_rows(message)
        since = len(mallory.messages)
        await fake.send_component(message, deny["custom_id"], STARTER)
        error = await mallory.next_message("error", since=since)
        assert error["code"] == "denied"
        assert await mallory.wait_closed() is not None
        await fake.wait_for(lambda: not knock_rows(message))
        await env.settle()
        assert "Mallory" not in in_the_call(message) and not room.waiting
        assert "Waiting in the lobby" not in json.dumps(embed_of(message))
        # discord.py routed the clicks through KnockButton, a dynamic item: it keeps no View,
        # and so nothing about the room, per message.
        assert env.adapter.client is not None
        store = env.adapter.client._connection._view_store
        assert not store._views and not store._synced_message_views
        await ada.close()
        await mallory.close()


def signed_post(
    env: Env, key: Ed25519PrivateKey
) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
    """Post an interaction to the HTTP endpoint, signed as Discord signs it; its response."""

    async def post(payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                env.server.base_url + "/discord/interactions", data=body, headers=signed(key, body)
            ) as response,
        ):
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer

    return post


async def test_lobby_over_the_http_endpoint_only_the_hosts_clicks_count() -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw().hex()
    async with discord_env(gateway=False, discord_public_key=public) as env:
        fake, post = env.fake, signed_post(env, key)
        payload = fake.interaction_payload(topic="Standup", lobby=True)
        message = fake.create_answer(payload, await post(payload))
        room = the_room(env, message)
        assert room.lobby
        url = join_url(message)
        # Sent once Discord has posted the answer (a follow-up before that is a 404).
        link = await host_link_for(env, payload)
        assert link.startswith(url + "#host=") and "#host=" not in json.dumps(message)

        ada = await knock(env, url, "Ada")
        await fake.wait_for(lambda: knock_rows(message))
        ((admit, _),) = knock_rows(message)
        assert fake.edits[-1][0] == "webhook_patch"  # through the command's interaction token

        answer = await post(fake.component_payload(message, admit["custom_id"], STRANGER))
        assert answer["type"] == 4 and answer["data"]["flags"] & 64
        assert answer["data"]["content"] == "Only the host can admit people."
        await env.settle()
        assert len(room.waiting) == 1 and "joined" not in received(ada)

        since = len(ada.messages)
        click = fake.component_payload(message, admit["custom_id"], STARTER)
        answer = await post(click)
        assert answer["type"] == 7
        assert fake.respond(click, answer) is message
        assert not knock_rows(message)  # gone at once, in the answer to the click itself
        await ada.next_message("joined", since=since)
        await fake.wait_for(lambda: "Ada" in in_the_call(message))

        # The same Admit again (a second click, say): nobody waits; the card is shown as it is.
        answer = await post(click | {"id": str(int(click["id"]) + 10**6)})
        assert answer["type"] == 7 and len(answer["data"]["components"]) == 1
        assert len(room.participants) == 1

        mallory = await knock(env, url, "Mallory")
        await fake.wait_for(lambda: knock_rows(message))
        ((_, deny),) = knock_rows(message)
        since = len(mallory.messages)
        click = fake.component_payload(message, deny["custom_id"], STARTER)
        answer = await post(click)
        assert answer["type"] == 7
        fake.respond(click, answer)
        error = await mallory.next_message("error", since=since)
        assert error["code"] == "denied"
        assert not knock_rows(message) and "Mallory" not in in_the_call(message)
        await ada.close()
        await mallory.close()


async def test_the_host_link_makes_its_holder_a_host_who_skips_the_lobby() -> None:
    async with discord_env() as env:
        payload, message = await answered(env, lobby=True)
        link = await host_link_for(env, payload)
        url, token = link.split("#host=")
        room = the_room(env, message)
        host = ParticipantClient(env.server.base_url, room.id, name="Host")
        await host.connect()
        await host.send(
            {
                "type": "join",
                "version": 1,
                "name": "Host",
                "session": host.session,
                "audio": False,
                "video": False,
                "host_token": token,
            }
        )
        joined = await host.next_message("joined", since=0)
        assert joined["host"] is True and "waiting" not in received(host)
        assert not room.waiting and [p.host for p in room.participants.values()] == [True]
        # A guest knocks; the host admits from the call: the chat's buttons go away too.
        guest = await knock(env, url, "Guest")
        knocked = await host.next_message("knock", since=0)
        await env.fake.wait_for(lambda: knock_rows(message))
        await host.send({"type": "admit", "participant_id": knocked["participant"]["id"]})
        await guest.next_message("joined", since=0)
        await env.fake.wait_for(lambda: not knock_rows(message))
        assert "Guest" in in_the_call(message) and "Host" in in_the_call(message)
        # The host turns the lobby off in the call: the card says so, and people walk in.
        await host.send({"type": "set_lobby", "enabled": False})
        await env.fake.wait_for(lambda: "Lobby on" not in embed_of(message)["description"])
        walk_in = await join(env, url, "Walk In")
        await walk_in.close()
        await host.close()
        await guest.close()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2h", 7200),
        ("90m", 5400),
        ("1h30m", 5400),
        (" 1H 30M ", 5400),
        ("1d12h", 36 * 3600),
        ("7d", 7 * 86400),
        ("168h", 7 * 86400),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "nonsense", "2", "h", "0m", "8d", "169h", "1.5h", "-2h", "2h2h", "30m1h"]
)
def test_bad_durations(text: str) -> None:
    assert parse_duration(text) is None


async def test_for_sets_when_the_link_stops_letting_people_in() -> None:
    async with discord_env() as env:
        rooms = env.server.meetnow.rooms
        _, message = await answered(env, topic="Short", duration="90m")
        room = the_room(env, message)
        assert room.join_deadline == room.created_at + 90 * 60
        assert room.expires_at == room.created_at + 90 * 60  # unused, it closes then too
        assert f"<t:{int(room.join_deadline)}:f>" in embed_of(message)["description"]

        before = len(rooms.rooms())
        payload, refusal = await answered(env, topic="Bad", duration="nonsense")
        assert refusal["flags"] & 64 and "`2h`" in refusal["content"]
        assert refusal["components"] == [] and not refusal["embeds"]
        assert len(rooms.rooms()) == before  # no room
        await env.settle()
        assert all(payload["token"] not in c.path for c in env.fake.calls_to("followup"))

        # Past the deadline the link lets nobody new in (those in the call stay).
        early = await join(env, join_url(message), "Early")
        env.clock.advance(90 * 60)
        late = ParticipantClient(env.server.base_url, room.id, name="Late")
        await late.connect()
        await late.send(
            {"type": "join", "version": 1, "name": "Late", "session": late.session, "video": False}
        )
        error = await late.next_message("error", since=0)
        assert error["code"] == "room_ended" and room.participants
        await late.close()
        await early.close()


async def test_many_commands_from_one_user_are_rate_limited() -> None:
    async with discord_env() as env:
        rooms = env.server.meetnow.rooms
        refusal: dict[str, Any] | None = None
        for attempt in range(30):
            before = len(rooms.rooms())
            _, message = await answered(env, topic=f"Call {attempt}")
            if message["flags"] & 64:
                refusal = message
                assert len(rooms.rooms()) == before  # no new room
                break
        assert refusal is not None, "never rate limited"
        assert "try again" in refusal["content"] and refusal["components"] == []
        assert attempt >= 3  # real use (a few calls in a row) is not refused
        # The limit is this user's: someone else in the same server still can.
        _, message = await answered(env, invoker=STRANGER)
        assert not message["flags"] & 64 and join_url(message)


def test_a_crowded_lobby_fits_discords_five_rows_and_names_stay_text() -> None:
    rooms = RoomService()
    room = rooms.create_room(origin="discord", lobby=True)
    names = ["@everyone", "<img src=x onerror=alert(1)>", "**bold**", "x" * 200, "E", "F"]
    for index, name in enumerate(names):
        rooms.join(room.id, name, f"session-{index:012d}")
    data = live_edit(room, 42, "https://meet.example/r/" + room.id).data()
    rows = data["components"]
    assert len(rows) == 5  # Join, then buttons for the first four
    labels = [b["label"] for row in rows[1:] for b in row["components"]]
    assert labels[:2] == ["Admit @everyone", "Deny @everyone"]  # labels never ping
    assert all(len(label) <= 80 for label in labels)
    assert all(len(b["custom_id"]) <= 100 for row in rows[1:] for b in row["components"])
    (waiting,) = [f["value"] for f in data["embeds"][0]["fields"] if f["name"].startswith("Wait")]
    assert "@everyone" not in waiting and "\\*\\*bold\\*\\*" in waiting
    assert "<img src=x onerror=alert(1)> is waiting" in waiting  # text (Discord renders no HTML)
    assert "F is waiting" in waiting and "as these are answered" in waiting
    # The next person gets buttons once one of the four is answered.
    rooms.deny(room, next(iter(room.waiting)))
    rows = live_edit(room, 42, "https://meet.example/r/" + room.id).data()["components"]
    assert rows[-1]["components"][0]["label"] == "Admit E"


async def test_options_typed_in_the_topic_work_as_in_slack() -> None:
    async with discord_env() as env:
        _, message = await answered(env, topic="--lobby --for 2h Standup")
        room = the_room(env, message)
        assert room.lobby
        assert room.topic == "Standup"
        assert room.join_deadline == room.created_at + 2 * 3600
        # An unknown option is refused with a hint, as in Slack (it used to become the topic).
        before = len(env.server.meetnow.rooms.rooms())
        _, refusal = await answered(env, topic="--lobyy Standup")
        assert refusal["flags"] & 64 and "`--lobby`" in refusal["content"]
        assert refusal["components"] == [] and not refusal["embeds"]
        assert len(env.server.meetnow.rooms.rooms()) == before  # no room
