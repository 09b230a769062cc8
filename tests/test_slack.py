"""The Slack adapter against a fake Slack on loopback (tests/fakes/slack.py).

The real slack-bolt app runs inside a real meetnow server: slash commands arrive really signed over
HTTP, or as envelopes on a Socket Mode websocket; the card's Web API calls go to the fake, which
records them; aiortc participants join and leave the room the card links to. Web API calls happen
after the command is acknowledged, so tests wait for them (the fake's record, or the cards'
``drained()``), never assume them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from bot.slack import SLACK, SlackAdapter, SlackCards, parse_command
from signaling.client import ParticipantClient

from .conftest import RunningServer, start_server, test_settings
from .fakes.slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    ApiCall,
    FakeSlack,
    signed_headers,
    slash_command,
)

GRACE = 0.3
"""Seconds an empty room stays open in these tests (the sweeper then closes it within ~0.5 s)."""


@dataclass
class Meetnow:
    """A meetnow server with the Slack adapter on, and ways to talk to it like Slack does."""

    running: RunningServer
    fake: FakeSlack
    http: aiohttp.ClientSession
    clients: list[ParticipantClient] = field(default_factory=list)

    @property
    def adapter(self) -> SlackAdapter:
        return self.running.app[SLACK]

    @property
    def cards(self) -> SlackCards:
        return self.adapter.cards

    def room_ids(self) -> list[str]:
        return [room.id for room in self.running.meetnow.rooms.rooms()]

    async def command(
        self,
        text: str,
        *,
        user_id: str = "U0ADA",
        channel_id: str = "C0GENERAL",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """POST a really signed slash command to /slack/events; the status and body of the ack."""
        payload = slash_command(
            text, response_url=self.fake.response_url(), user_id=user_id, channel_id=channel_id
        )
        body = urlencode(payload)
        headers = headers if headers is not None else signed_headers(SIGNING_SECRET, body)
        url = f"{self.running.base_url}/slack/events"
        async with self.http.post(url, data=body, headers=headers) as response:
            return response.status, await response.text()

    async def join(self, url: str, name: str) -> ParticipantClient:
        client = ParticipantClient(self.running.base_url, url.rsplit("/", 1)[1], name=name)
        self.clients.append(client)
        await client.join()
        return client


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


Factory = Callable[..., Awaitable[Meetnow]]


@pytest.fixture
async def make_meetnow(fake: FakeSlack) -> AsyncIterator[Factory]:
    """Start meetnow with the adapter pointed at the fake (settings overridable)."""
    started: list[tuple[Meetnow, web.AppRunner]] = []
    http = aiohttp.ClientSession()

    async def make(**overrides: Any) -> Meetnow:
        values: dict[str, Any] = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": fake.api_url,
            "relay_workers": 0,
            "room_empty_grace_seconds": GRACE,
        }
        values.update(overrides)
        running, runner = await start_server(test_settings(**values))
        meetnow = Meetnow(running, fake, http)
        started.append((meetnow, runner))
        return meetnow

    yield make
    for meetnow, runner in started:
        for client in meetnow.clients:
            await client.close()
        await runner.cleanup()
    await http.close()


def block_types(call: ApiCall | dict[str, Any]) -> list[str]:
    params = call.params if isinstance(call, ApiCall) else call
    return [block["type"] for block in params["blocks"]]


def context_text(call: ApiCall) -> str:
    texts = [
        element["text"]
        for block in call.params["blocks"]
        if block["type"] == "context"
        for element in block["elements"]
    ]
    return " ".join(texts)


def join_url_of(blocks: list[dict[str, Any]]) -> str:
    [actions] = [block for block in blocks if block["type"] == "actions"]
    [button] = actions["elements"]
    assert button["text"]["text"] == "Join"
    url: str = button["url"]
    return url


# --------------------------------------------------------------------------- signed requests


async def test_only_really_signed_commands_are_accepted(
    make_meetnow: Factory, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    meetnow = await make_meetnow()
    status, body = await meetnow.command("Standup")
    assert (status, body) == (200, "")
    await fake.wait_calls("chat.postMessage")

    payload = urlencode(slash_command("Sneaky", response_url=fake.response_url()))
    good = signed_headers(SIGNING_SECRET, payload)
    forged = signed_headers("not-the-signing-secret", payload)
    stale = signed_headers(SIGNING_SECRET, payload, timestamp=int(time.time()) - 6 * 60)
    unsigned = {"Content-Type": good["Content-Type"]}
    tampered = {**good, "X-Slack-Signature": good["X-Slack-Signature"][:-4] + "0000"}
    for headers in (forged, stale, unsigned, tampered):
        assert (await meetnow.command("Sneaky", headers=headers))[0] == 401

    await meetnow.cards.drained()
    assert len(meetnow.room_ids()) == 1
    assert len(fake.calls_to("calls.add", ok_only=False)) == 1
    assert len(fake.calls_to("chat.postMessage", ok_only=False)) == 1
    assert fake.responses == []
    refusals = [r for r in caplog.records if "without a valid signature" in r.getMessage()]
    assert len(refusals) == 1  # one line, not one per request: anyone can send these


async def test_the_command_is_acknowledged_before_any_web_api_call(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    meetnow = await make_meetnow()
    fake.hold("calls.add")  # Slack is slow: calls.add hangs until released
    assert await meetnow.command("Standup") == (200, "")
    assert fake.calls_to("chat.postMessage", ok_only=False) == []
    fake.release("calls.add")
    await fake.wait_calls("chat.postMessage")


# ------------------------------------------------------------------------ the call card


async def test_call_card_follows_the_room_from_start_to_end(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    meetnow = await make_meetnow()
    await meetnow.command("Standup")
    [add] = await fake.wait_calls("calls.add")
    join_url = add.params["join_url"]
    assert join_url.startswith(f"{meetnow.running.base_url}/r/")
    assert add.params["created_by"] == "U0ADA"
    assert add.params["title"] == "Standup"
    assert add.params["external_unique_id"] == join_url.rsplit("/", 1)[1]
    assert 0 < int(add.params["date_start"]) < 10**10  # seconds, not milliseconds
    async with meetnow.http.get(join_url) as page:
        assert page.status == 200
    call_id = add.answer["call"]["id"]
    [post] = await fake.wait_calls("chat.postMessage")
    assert post.params["channel"] == "C0GENERAL"
    assert post.params["blocks"] == [{"type": "call", "call_id": call_id}]
    assert join_url in post.params["text"]

    ada = await meetnow.join(join_url, "Ada")
    grace = await meetnow.join(join_url, "Grace")
    adds = await fake.wait_calls("calls.participants.add", 2)
    assert {c.params["id"] for c in adds} == {call_id}
    assert {c.params["users"][0]["display_name"] for c in adds} == {"Ada", "Grace"}

    await ada.close()
    [remove] = await fake.wait_calls("calls.participants.remove")
    assert remove.params["users"] == [{"external_id": ada.participant_id, "display_name": "Ada"}]

    await grace.close()
    [end] = await fake.wait_calls("calls.end")
    assert end.params["id"] == call_id
    assert int(end.params["duration"]) >= 0
    [update] = await fake.wait_calls("chat.update")
    assert update.params["ts"] == post.answer["ts"]
    assert "Ended · 1 min · 2 people" in context_text(update)
    await meetnow.cards.drained()
    assert meetnow.cards.cards() == []  # nothing about the room is kept


async def test_without_calls_scope_the_card_is_block_kit_with_a_join_button(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    fake.fail("calls.add", "missing_scope")
    meetnow = await make_meetnow()
    await meetnow.command("Retro")
    [post] = await fake.wait_calls("chat.postMessage")
    assert "call" not in block_types(post)
    join_url = join_url_of(post.params["blocks"])
    assert join_url.startswith(f"{meetnow.running.base_url}/r/")
    assert "Started by <@U0ADA>" in json.dumps(post.params["blocks"])

    ada = await meetnow.join(join_url, "Ada")
    await meetnow.join(join_url, "Grace")
    await fake.wait_for(
        lambda: any("Ada, Grace" in context_text(c) for c in fake.calls_to("chat.update")),
        what="a card listing Ada and Grace",
    )
    for call in fake.calls_to("chat.update"):
        [context] = [b for b in call.params["blocks"] if b["type"] == "context"]
        assert context["elements"][0]["type"] == "plain_text"  # names are never mrkdwn

    await ada.close()
    await fake.wait_for(
        lambda: context_text(fake.calls_to("chat.update")[-1]) == "In the call (1): Grace",
        what="a card listing Grace only",
    )
    for client in meetnow.clients:
        await client.close()
    await fake.wait_for(
        lambda: "Ended" in json.dumps(fake.calls_to("chat.update")[-1].params["blocks"]),
        what="the summary",
    )
    last = fake.calls_to("chat.update")[-1]
    assert "actions" not in block_types(last)
    assert {"type": "plain_text", "text": "Ended · 1 min · 2 people", "emoji": False} in [
        block.get("text") for block in last.params["blocks"]
    ]
    assert fake.calls_to("calls.end", ok_only=False) == []

    # missing_scope is remembered: the next card goes straight to Block Kit
    await meetnow.command("Again")
    await fake.wait_calls("chat.postMessage", 2)
    assert len(fake.calls_to("calls.add", ok_only=False)) == 1


# ------------------------------------------------------------------------------- errors


async def test_where_the_bot_cannot_post_the_card_goes_through_response_url(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    fake.fail("chat.postMessage", "not_in_channel", times=1)
    meetnow = await make_meetnow()
    await meetnow.command("Private chat", channel_id="G0PRIVATE")
    await fake.wait_responses()
    [(_, message)] = fake.responses
    assert message["response_type"] == "in_channel"
    [add] = fake.calls_to("calls.add")
    assert message["blocks"] == [{"type": "call", "call_id": add.answer["call"]["id"]}]
    await meetnow.join(add.params["join_url"], "Ada")  # the room works
    await fake.wait_calls("calls.participants.add")


async def test_a_refused_post_gives_the_user_the_link_privately(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    fake.fail("calls.add", "missing_scope")
    fake.fail("chat.postMessage", "invalid_auth")
    meetnow = await make_meetnow()
    assert await meetnow.command("Standup") == (200, "")
    await fake.wait_responses()
    [(_, message)] = fake.responses
    assert message["response_type"] == "ephemeral"
    assert "Couldn't post the meeting card" in message["text"]
    assert "invalid_auth" in message["text"]
    [room_id] = meetnow.room_ids()
    url = meetnow.running.meetnow.room_url(room_id)
    assert url in message["text"]
    client = await meetnow.join(url, "Ada")  # the room works
    assert client.participant_id is not None


async def test_without_a_response_url_the_user_gets_an_ephemeral_message(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    fake.fail("chat.postMessage", "is_archived")
    fake.response_url_status = 404
    meetnow = await make_meetnow()
    await meetnow.command("Standup")
    [ephemeral] = await fake.wait_calls("chat.postEphemeral")
    assert ephemeral.params["user"] == "U0ADA"
    assert "is_archived" in ephemeral.params["text"]
    assert "/r/" in ephemeral.params["text"]


async def test_rate_limited_post_is_retried_after_retry_after(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    fake.rate_limit("chat.postMessage", retry_after=1)
    meetnow = await make_meetnow()
    await meetnow.command("Standup")
    [post] = await fake.wait_calls("chat.postMessage", timeout=15)
    attempts = fake.calls_to("chat.postMessage", ok_only=False)
    assert [a.status for a in attempts] == [429, 200]
    assert post.params["blocks"][0]["type"] == "call"
    assert fake.responses == []  # no error message: the retry worked
    await meetnow.join(fake.calls_to("calls.add")[0].params["join_url"], "Ada")
    await fake.wait_calls("calls.participants.add")


# ------------------------------------------------------------------------- the command


async def test_help_answers_privately_and_creates_no_room(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    meetnow = await make_meetnow()
    status, body = await meetnow.command("help")
    assert status == 200
    assert "/meetnow @alice @bob" in body
    assert "in_channel" not in body
    assert meetnow.room_ids() == []
    await meetnow.cards.drained()
    assert [c.method for c in fake.calls] == ["auth.test"]


async def test_mentioned_people_are_invited_to_the_same_room(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    meetnow = await make_meetnow()
    await meetnow.command("<@U0ALICE|alice> <@U0BOB> Weekly sync")
    posts = await fake.wait_calls("chat.postMessage", 3)
    [room] = meetnow.running.meetnow.rooms.rooms()
    assert room.topic == "Weekly sync"
    url = meetnow.running.meetnow.room_url(room.id)
    card, *dms = posts
    assert card.params["channel"] == "C0GENERAL"
    assert "Invited: <@U0ALICE> <@U0BOB>" in json.dumps(card.params)
    assert sorted(dm.params["channel"] for dm in dms) == ["U0ALICE", "U0BOB"]
    for dm in dms:
        assert url in dm.params["text"]
        assert join_url_of(dm.params["blocks"]) == url


async def test_a_full_server_says_so_privately(make_meetnow: Factory, fake: FakeSlack) -> None:
    meetnow = await make_meetnow(max_rooms=1)
    assert await meetnow.command("First") == (200, "")
    status, body = await meetnow.command("Second")
    assert status == 200
    assert "too many open rooms" in body
    assert len(meetnow.room_ids()) == 1


async def test_a_click_on_join_is_acknowledged(make_meetnow: Factory, fake: FakeSlack) -> None:
    meetnow = await make_meetnow()
    action = {
        "type": "block_actions",
        "team": {"id": "T0FAKE", "domain": "fake"},
        "user": {"id": "U0BOB", "team_id": "T0FAKE"},
        "api_app_id": "A0FAKE",
        "channel": {"id": "C0GENERAL"},
        "container": {"type": "message", "message_ts": "1800000001.000001"},
        "trigger_id": "1337.42.abcdef",
        "response_url": fake.response_url(),
        "actions": [
            {
                "type": "button",
                "action_id": "meetnow_join",
                "block_id": "b1",
                "text": {"type": "plain_text", "text": "Join"},
                "action_ts": "1800000002.000002",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(action)})
    url = f"{meetnow.running.base_url}/slack/events"
    headers = signed_headers(SIGNING_SECRET, body)
    async with meetnow.http.post(url, data=body, headers=headers) as response:
        assert response.status == 200
    await meetnow.cards.drained()
    assert [c.method for c in fake.calls] == ["auth.test"]
    assert meetnow.room_ids() == []


def test_command_text_is_parsed_into_invitees_and_a_plain_topic() -> None:
    parsed = parse_command("<@U0ALICE|alice>  <!channel> &lt;b&gt; <@U0ALICE> <#C1|general>")
    assert parsed.invitees == ("U0ALICE",)
    assert parsed.topic == "@channel <b> #general"
    assert parse_command("  HELP ").help
    assert parse_command("").topic is None


async def test_topic_cannot_ping_the_channel(make_meetnow: Factory, fake: FakeSlack) -> None:
    fake.fail("calls.add", "missing_scope")
    meetnow = await make_meetnow()
    await meetnow.command("&lt;!channel&gt; <!here> urgent")
    [post] = await fake.wait_calls("chat.postMessage")
    mrkdwn = [post.params["text"]] + [
        block["text"]["text"]
        for block in post.params["blocks"]
        if block.get("text", {}).get("type") == "mrkdwn"
    ]
    assert "&lt;!channel&gt;" in post.params["text"]
    assert all("<!" not in text for text in mrkdwn)
    assert post.params["blocks"][0] == {  # plain_text: shown as typed, never a mention
        "type": "header",
        "text": {"type": "plain_text", "text": "<!channel> @here urgent", "emoji": False},
    }


# ---------------------------------------------------------------------------- start-up


async def test_a_refused_token_is_one_log_line_and_the_server_keeps_working(
    make_meetnow: Factory, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake.bot_token = "xoxb-a-different-token"  # Slack refuses ours
    meetnow = await make_meetnow()
    [line] = [r for r in caplog.records if r.name.startswith("bot") and r.levelno >= logging.INFO]
    assert line.levelno == logging.ERROR
    assert line.getMessage() == (
        "Slack: the bot token was refused (invalid_auth); /meetnow is off until it is fixed"
    )
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text

    async with meetnow.http.post(f"{meetnow.running.base_url}/api/rooms") as response:
        assert response.status == 201
    status, body = await meetnow.command("Standup")
    assert status == 200
    assert "bot token was refused" in body
    assert len(meetnow.room_ids()) == 1  # only the one made through the API
    await meetnow.cards.drained()
    assert [c.method for c in fake.calls] == ["auth.test"]


async def test_a_refused_app_token_is_one_log_line_and_http_keeps_working(
    make_meetnow: Factory, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake.app_token = "xapp-a-different-token"
    meetnow = await make_meetnow(slack_app_token=APP_TOKEN)
    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.getMessage() == (
        "Slack: the app-level token was refused (invalid_auth); Socket Mode is off until it is "
        "fixed"
    )
    assert line.exc_info is None
    assert fake.socket_connections == 0
    await meetnow.command("Standup")
    await fake.wait_calls("chat.postMessage")


async def test_granted_scopes_without_calls_write_skip_the_calls_api(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    fake.scopes = "commands,chat:write,chat:write.public,im:write"
    meetnow = await make_meetnow()
    await meetnow.command("Standup")
    [post] = await fake.wait_calls("chat.postMessage")
    assert "actions" in block_types(post)
    assert fake.calls_to("calls.add", ok_only=False) == []


async def test_socket_mode_receives_acknowledges_and_posts(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    meetnow = await make_meetnow(slack_app_token=APP_TOKEN, slack_signing_secret=None)
    async with meetnow.http.post(f"{meetnow.running.base_url}/slack/events") as response:
        assert response.status == 404  # no signing secret: no HTTP endpoint
    await fake.wait_for(lambda: fake.socket_connections == 1, what="a Socket Mode connection")
    [opened] = fake.calls_to("apps.connections.open")
    assert opened.token == APP_TOKEN

    payload = slash_command("Socket standup", response_url=fake.response_url())
    envelope_id = fake.deliver_slash_command(payload)
    await fake.wait_for(lambda: len(fake.socket_acks) == 1, what="an acknowledgement")
    assert fake.socket_acks == [{"envelope_id": envelope_id}]
    [post] = await fake.wait_calls("chat.postMessage")
    assert post.params["blocks"][0]["type"] == "call"
    assert fake.calls_to("calls.add")[0].params["title"] == "Socket standup"

    help_id = fake.deliver_slash_command({**payload, "text": "help"})
    await fake.wait_for(lambda: len(fake.socket_acks) == 2, what="the help acknowledgement")
    assert fake.socket_acks[1]["envelope_id"] == help_id
    assert "/meetnow help" in fake.socket_acks[1]["payload"]["text"]
    assert len(fake.calls_to("apps.connections.open")) == 1


# --------------------------------------------------------------------------------- logs


async def test_logs_hold_no_tokens_names_topics_links_or_room_ids(
    make_meetnow: Factory, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("bot", "signaling"):
        caplog.set_level(logging.DEBUG, logger=name)
    fake.fail("calls.add", "missing_scope")
    fake.fail("chat.postMessage", "not_in_channel", times=1)
    meetnow = await make_meetnow(slack_app_token=APP_TOKEN)
    await meetnow.command("<@U0ALICE|alice> Zebra Quarterly Review")
    await fake.wait_calls("chat.postMessage")  # the DM (the card went through response_url)
    [room] = meetnow.running.meetnow.rooms.rooms()
    url = meetnow.running.meetnow.room_url(room.id)
    ada = await meetnow.join(url, "Adalinda Secretname")
    await ada.close()
    await fake.wait_for(
        lambda: any("Ended" in json.dumps(body) for _, body in fake.responses), what="the end"
    )
    await meetnow.cards.drained()

    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("bot", "signaling"))
    )
    assert "Slack:" in ours  # the adapter did log (the fallbacks above)
    for secret in (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET):
        assert secret not in caplog.text
    for private in ("Adalinda", "Secretname", "Zebra", "Quarterly", room.id, url, "/r/", "alice"):
        assert private not in ours
