"""The Slack adapter against a fake Slack on loopback (tests/fakes/slack.py).

The real slack-bolt app runs inside a real meetnow server: slash commands arrive really signed over
HTTP, or as envelopes on a Socket Mode websocket; the card's Web API calls go to the fake, which
records them; aiortc participants join and leave the room the card links to. Web API calls happen
after the command is acknowledged, so tests wait for them (the fake's record, or the cards'
``drained()``), never assume them.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from bot.slack import SLACK, SlackAdapter, SlackCards, parse_command
from signaling.client import ParticipantClient

from ..conftest import RunningServer, start_server, test_settings
from ..fakes.slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    ApiCall,
    FakeSlack,
    block_actions,
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

    @property
    def events_url(self) -> str:
        return f"{self.running.base_url}/slack/events"

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


def ack_text(body: str) -> str:
    """The text of a command's acknowledgement (what Slack shows its author alone)."""
    if not body.startswith("{"):
        return body  # bolt answers a text-only acknowledgement as plain text
    answer = json.loads(body)
    assert answer.get("response_type", "ephemeral") == "ephemeral"
    text: str = answer["text"]
    return text


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
    assert status == 200
    assert "#host=" in ack_text(body)
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
    status, body = await meetnow.command("Standup")
    assert status == 200
    assert "Your host link" in ack_text(body)  # the host link is in the acknowledgement itself
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
    assert (await meetnow.command("Standup"))[0] == 200
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
    assert (await meetnow.command("First"))[0] == 200
    status, body = await meetnow.command("Second")
    assert status == 200
    assert "too many open rooms" in body
    assert len(meetnow.room_ids()) == 1


async def test_a_click_on_join_is_acknowledged(make_meetnow: Factory, fake: FakeSlack) -> None:
    meetnow = await make_meetnow()
    payload = block_actions("meetnow_join", user_id="U0BOB", response_url=fake.response_url())
    assert await fake.click(meetnow.events_url, payload) == 200
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
    [socket_ack] = fake.socket_acks
    assert socket_ack["envelope_id"] == envelope_id
    assert "#host=" in socket_ack["payload"]["text"]  # the host link, for the author alone
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


# ------------------------------------------------------- hosts, lobby, lifetime, limits


def host_link_of(body: str) -> str:
    """The host link in a command's acknowledgement."""
    [link] = re.findall(r"https?://\S+#host=\S+", ack_text(body))
    return str(link)


def knock_rows(blocks: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The lobby on a card: each "<name> is waiting" text with the buttons under it."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for block, after in itertools.pairwise(blocks):
        text = block.get("text", {})
        if block["type"] == "section" and text.get("text", "").endswith(" is waiting"):
            assert text["type"] == "plain_text"  # names are untrusted: never mrkdwn
            assert after["type"] == "actions"
            rows[text["text"].removesuffix(" is waiting")] = after["elements"]
    return rows


def last_blocks(fake: FakeSlack, method: str = "chat.update") -> list[dict[str, Any]]:
    calls = fake.calls_to(method)
    return calls[-1].params["blocks"] if calls else []


async def knock(meetnow: Meetnow, room_id: str, name: str) -> ParticipantClient:
    """A browser-like guest who knocks: join, then wait in the lobby."""
    guest = ParticipantClient(meetnow.running.base_url, room_id, name=name)
    meetnow.clients.append(guest)
    await guest.join(wait_for="waiting")
    return guest


async def wait_rows(
    fake: FakeSlack, names: set[str], method: str = "chat.update"
) -> dict[str, Any]:
    await fake.wait_for(
        lambda: set(knock_rows(last_blocks(fake, method))) == names,
        what=f"a lobby showing {sorted(names) or 'nobody'}",
    )
    return knock_rows(last_blocks(fake, method))


def buttons(row: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {button["text"]["text"]: button for button in row}


async def test_lobby_command_sends_the_host_link_to_the_author_alone(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    meetnow = await make_meetnow()
    status, body = await meetnow.command("--lobby Standup")
    assert status == 200
    text = ack_text(body)  # the acknowledgement: Slack shows it to the command's author alone
    assert json.loads(body)["unfurl_links"] is False  # no preview fetch of the host link
    assert text.startswith("Your host link — keep it to yourself: ")
    link = host_link_of(body)
    [room] = meetnow.running.meetnow.rooms.rooms()
    assert room.lobby
    assert room.topic == "Standup"
    assert link.startswith(meetnow.running.meetnow.room_url(room.id) + "#host=")
    token = link.split("#host=", 1)[1]
    assert meetnow.running.meetnow.rooms.is_host_token(room, token)

    await fake.wait_calls("chat.postMessage")
    await meetnow.cards.drained()
    everything_sent = json.dumps([c.params for c in fake.calls] + [b for _, b in fake.responses])
    assert "#host=" not in everything_sent
    assert token not in everything_sent
    [add] = fake.calls_to("calls.add")
    assert add.params["join_url"] == meetnow.running.meetnow.room_url(room.id)


async def test_the_host_admits_and_denies_from_the_card(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    fake.fail("calls.add", "missing_scope")  # a Block Kit card: the buttons go on the card
    meetnow = await make_meetnow()
    await meetnow.command("--lobby Interview")
    [post] = await fake.wait_calls("chat.postMessage")
    [room] = meetnow.running.meetnow.rooms.rooms()
    assert knock_rows(post.params["blocks"]) == {}

    mallory = await knock(meetnow, room.id, "<b>Mallory</b>")
    rows = await wait_rows(fake, {"<b>Mallory</b>"})
    [update] = fake.calls_to("chat.update")
    assert update.params["ts"] == post.answer["ts"]
    assert "Mallory" not in update.params["text"]  # the notification text carries no name
    [waiting_id] = room.waiting
    admit, deny = buttons(rows["<b>Mallory</b>"])["Admit"], buttons(rows["<b>Mallory</b>"])["Deny"]
    assert (admit["action_id"], deny["action_id"]) == ("meetnow_admit", "meetnow_deny")
    assert admit["value"] == deny["value"] == f"{room.id}:{waiting_id}"

    # Bob is not the host: his click is refused, privately, and Mallory still waits.
    bob = block_actions(
        "meetnow_admit", admit["value"], user_id="U0BOB", response_url=fake.response_url("bob")
    )
    updates = len(fake.calls_to("chat.update", ok_only=False))
    assert await fake.click(meetnow.events_url, bob) == 200
    await fake.wait_responses()
    [(where, refusal)] = fake.responses
    assert where == "bob"
    assert refusal["response_type"] == "ephemeral"
    assert refusal["replace_original"] is False
    assert refusal["text"] == "Only the host can admit people."
    # The host's user id from another workspace is not the host either.
    other_team = block_actions(
        "meetnow_admit", admit["value"], team_id="T0OTHER", response_url=fake.response_url("t")
    )
    assert await fake.click(meetnow.events_url, other_team) == 200
    await fake.wait_responses(2)
    assert fake.responses[1][1]["text"] == "Only the host can admit people."
    assert list(room.waiting) == [waiting_id]
    assert not any(m["type"] == "joined" for m in mallory.messages)
    await meetnow.cards.drained()
    assert len(fake.calls_to("chat.update", ok_only=False)) == updates  # the card is unchanged

    # The host's click on Admit lets Mallory in; the buttons go.
    host = block_actions("meetnow_admit", admit["value"], response_url=fake.response_url("ada"))
    assert await fake.click(meetnow.events_url, host) == 200
    joined = await mallory.next_message("joined", since=0)
    assert joined["host"] is False
    await wait_rows(fake, set())
    await fake.wait_for(
        lambda: "In the call (1): <b>Mallory</b>" in context_text(fake.calls_to("chat.update")[-1]),
        what="Mallory in the call",
    )

    # A second guest; the host clicks Deny: turned away, and that session can't knock again.
    eve = await knock(meetnow, room.id, "Eve")
    rows = await wait_rows(fake, {"Eve"})
    deny = buttons(rows["Eve"])["Deny"]
    host = block_actions("meetnow_deny", deny["value"], response_url=fake.response_url("ada"))
    assert await fake.click(meetnow.events_url, host) == 200
    error = await eve.next_message("error", since=0)
    assert error["code"] == "denied"
    assert room.waiting == {}
    await wait_rows(fake, set())
    assert eve.session in room.banned_sessions
    assert [name for name, _ in fake.responses] == ["bob", "t"]  # the host was told nothing

    # A second click on a button that was already answered changes nothing (a new click: the
    # same signed request again would be a replay, refused with 401).
    again = block_actions("meetnow_deny", deny["value"], response_url=fake.response_url("ada"))
    assert await fake.click(meetnow.events_url, again) == 200
    await fake.wait_responses(3)
    assert fake.responses[2][1]["text"] == "They are no longer waiting."


async def test_calls_card_lobby_is_a_threaded_message_clicked_over_socket_mode(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    meetnow = await make_meetnow(slack_app_token=APP_TOKEN, slack_signing_secret=None)
    await fake.wait_for(lambda: fake.socket_connections == 1, what="a Socket Mode connection")
    fake.deliver_slash_command(
        slash_command("--lobby --for 1h Board meeting", response_url=fake.response_url())
    )
    [card] = await fake.wait_calls("chat.postMessage")
    assert block_types(card)[0] == "call"
    assert "Link open until <!date^" in context_text(card)
    await fake.wait_for(lambda: len(fake.socket_acks) == 1, what="the acknowledgement")
    assert "#host=" in fake.socket_acks[0]["payload"]["text"]
    [room] = meetnow.running.meetnow.rooms.rooms()

    guest = await knock(meetnow, room.id, "Grace")
    [_, lobby] = await fake.wait_calls("chat.postMessage", 2)
    assert lobby.params["thread_ts"] == card.answer["ts"]
    assert lobby.params["channel"] == "C0GENERAL"
    rows = knock_rows(lobby.params["blocks"])
    admit = buttons(rows["Grace"])["Admit"]

    # Clicks come on the websocket too: someone else's is refused, the host's lets Grace in.
    fake.deliver_interaction(
        block_actions(
            "meetnow_admit",
            admit["value"],
            user_id="U0MALLORY",
            message_ts=lobby.answer["ts"],
            response_url=fake.response_url("mallory"),
        )
    )
    await fake.wait_responses()
    assert fake.responses[0][1]["text"] == "Only the host can admit people."
    assert list(room.waiting) != []
    fake.deliver_interaction(
        block_actions(
            "meetnow_admit",
            admit["value"],
            message_ts=lobby.answer["ts"],
            response_url=fake.response_url("ada"),
        )
    )
    await guest.next_message("joined", since=0)
    [update] = await fake.wait_calls("chat.update")
    assert update.params["ts"] == lobby.answer["ts"]
    assert knock_rows(update.params["blocks"]) == {}
    assert "Nobody is waiting now." in context_text(update)
    await fake.wait_calls("calls.participants.add")
    await fake.wait_for(lambda: len(fake.socket_acks) == 3, what="every envelope acknowledged")

    await guest.close()
    await fake.wait_calls("calls.end")
    await fake.wait_for(
        lambda: "Ended" in context_text(fake.calls_to("chat.update")[-1]), what="the summary"
    )
    *_, ended, summary = fake.calls_to("chat.update")
    assert ended.params["ts"] == lobby.answer["ts"]
    assert context_text(ended) == "The meeting has ended."
    assert "actions" not in block_types(ended)
    assert summary.params["ts"] == card.answer["ts"]


async def test_where_the_bot_cannot_post_knocks_go_to_the_host_privately(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    fake.fail("chat.postMessage", "not_in_channel", times=1)
    meetnow = await make_meetnow()
    await meetnow.command("--lobby Private", channel_id="G0PRIVATE")
    await fake.wait_responses()  # the Calls API card, through response_url
    [room] = meetnow.running.meetnow.rooms.rooms()
    await knock(meetnow, room.id, "Heidi")
    await fake.wait_responses(2)
    where, message = fake.responses[1]
    assert (where, message["response_type"]) == ("1", "ephemeral")  # the host alone sees it
    assert message["replace_original"] is False
    rows = knock_rows(message["blocks"])
    deny = buttons(rows["Heidi"])["Deny"]
    click = block_actions(
        "meetnow_deny",
        deny["value"],
        channel_id="G0PRIVATE",
        is_ephemeral=True,
        response_url=fake.response_url("click"),
    )
    assert await fake.click(meetnow.events_url, click) == 200
    await fake.wait_responses(3)
    where, refreshed = fake.responses[2]
    assert where == "click"  # the click's own response_url refreshes the private message
    assert refreshed["replace_original"] is True
    assert knock_rows(refreshed["blocks"]) == {}
    assert room.waiting == {}


async def test_a_card_posted_through_response_url_shows_the_lobby_and_takes_clicks(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    fake.fail("calls.add", "missing_scope")
    fake.fail("chat.postMessage", "not_in_channel", times=1)
    meetnow = await make_meetnow()
    await meetnow.command("--lobby Private", channel_id="G0PRIVATE")
    await fake.wait_responses()
    [room] = meetnow.running.meetnow.rooms.rooms()
    guest = await knock(meetnow, room.id, "Ivan")
    await fake.wait_responses(2)
    where, card = fake.responses[1]
    assert (where, card["response_type"], card["replace_original"]) == ("1", "in_channel", True)
    admit = buttons(knock_rows(card["blocks"])["Ivan"])["Admit"]
    click = block_actions(
        "meetnow_admit",
        admit["value"],
        channel_id="G0PRIVATE",
        response_url=fake.response_url("click"),
    )
    assert await fake.click(meetnow.events_url, click) == 200
    await guest.next_message("joined", since=0)
    # The click's response_url is fresh (five more posts): the card's next updates use it.
    await fake.wait_for(
        lambda: (
            fake.responses[-1][0] == "click"
            and "In the call (1): Ivan" in json.dumps(fake.responses[-1][1]["blocks"])
        ),
        what="the card updated through the click's response_url",
    )
    assert knock_rows(fake.responses[-1][1]["blocks"]) == {}
    assert all(body["response_type"] == "in_channel" for _, body in fake.responses)


async def test_for_sets_the_join_deadline_and_bad_lengths_are_refused(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    fake.fail("calls.add", "missing_scope")
    meetnow = await make_meetnow()
    for text in ("--for nonsense Standup", "--for 8d Standup", "--for", "--lobbby Standup"):
        status, body = await meetnow.command(text)
        assert status == 200
        assert "--for" in ack_text(body)  # the explanation, then the usage
        assert "/meetnow --lobby" in ack_text(body)
    assert meetnow.room_ids() == []

    status, body = await meetnow.command("--for 90m Office hours")
    assert "#host=" in ack_text(body)
    assert "lets nobody new in after 1 h 30 min" in ack_text(body)
    [room] = meetnow.running.meetnow.rooms.rooms()
    assert room.join_deadline is not None
    assert room.join_deadline - room.created_at == pytest.approx(90 * 60)
    assert not room.lobby
    assert room.topic == "Office hours"
    [post] = await fake.wait_calls("chat.postMessage")
    assert "Link open until <!date^" in json.dumps(post.params["blocks"])


async def test_one_user_starting_too_many_rooms_is_told_to_try_again(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    meetnow = await make_meetnow()
    answers = [ack_text((await meetnow.command(f"Room {n}"))[1]) for n in range(12)]
    refused = [n for n, text in enumerate(answers) if "try again" in text]
    assert refused, "never rate limited"
    first = refused[0]
    assert all("#host=" in text for text in answers[:first])
    assert len(meetnow.room_ids()) == first
    # Someone else in the same workspace still can.
    assert "#host=" in ack_text((await meetnow.command("Mine", user_id="U0BOB"))[1])
    assert len(meetnow.room_ids()) == first + 1


async def test_the_host_link_makes_a_host_who_skips_the_lobby(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    meetnow = await make_meetnow()
    _, body = await meetnow.command("--lobby Standup")
    link = host_link_of(body)
    url, token = link.split("#host=", 1)
    room_id = url.rsplit("/", 1)[1]
    guest = await knock(meetnow, room_id, "Guest")
    base = meetnow.running.base_url
    host = ParticipantClient(base, room_id, name="Ada", host_token=token)
    meetnow.clients.append(host)
    joined = await host.join()
    assert joined["host"] is True
    assert [w["name"] for w in joined["waiting"]] == ["Guest"]  # the host sees who knocks
    assert not any(m["type"] == "joined" for m in guest.messages)  # the guest still waits

    # The card's link with a wrong token is just a guest.
    other = ParticipantClient(base, room_id, name="Mallory", host_token=token[:-2] + "xx")
    meetnow.clients.append(other)
    await other.join(wait_for="waiting")


async def test_a_click_for_a_meeting_that_ended_changes_nothing(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    meetnow = await make_meetnow()
    value = "A" * 22 + ":pid"
    payload = block_actions("meetnow_admit", value, response_url=fake.response_url("late"))
    assert await fake.click(meetnow.events_url, payload) == 200
    await fake.wait_responses()
    assert fake.responses[0][1]["text"] == "This meeting has ended."
    forged = block_actions("meetnow_admit", value, response_url=fake.response_url("forged"))
    assert await fake.click(meetnow.events_url, forged, secret="not-the-secret") == 401
    await meetnow.cards.drained()
    assert len(fake.responses) == 1


def test_the_manifest_turns_interactivity_on_and_shows_the_options() -> None:
    manifest = (
        Path(__file__).resolve().parent.parent.parent / "bot" / "slack_manifest.yaml"
    ).read_text()
    settings = manifest[manifest.index("\nsettings:") :]
    interactivity = settings[settings.index("interactivity:") :]
    assert "is_enabled: true" in interactivity.split("org_deploy_enabled")[0]
    assert "request_url: https://YOUR-HOST/slack/events" in interactivity
    [hint] = [line for line in manifest.splitlines() if "usage_hint:" in line]
    assert "--lobby" in hint
    assert "--for" in hint


def test_options_come_first_and_combine() -> None:
    parsed = parse_command("--lobby <@U0ALICE|alice> --for 1h30m Design --lobby review")
    assert parsed.lobby
    assert parsed.lifetime_seconds == 5400
    assert parsed.invitees == ("U0ALICE",)
    assert parsed.topic == "Design --lobby review"  # options end at the first other word
    assert parse_command("--for=45m").lifetime_seconds == 45 * 60
    assert parse_command("--for 2H x").lifetime_seconds == 2 * 3600
    assert parse_command("--for 7d").lifetime_seconds == 7 * 24 * 3600
    assert parse_command("\u2014lobby Standup").lobby  # a Mac turned "--" into a dash
    assert parse_command("\u2014Budget review").topic == "\u2014Budget review"
    assert parse_command("-- notes").topic == "-- notes"
    for bad in ("--for 0m", "--for 169h", "--for 1.5h", "--for", "--for <@U0ALICE>", "--bogus"):
        assert parse_command(bad).error is not None, bad
    plain = parse_command("Weekly sync")
    assert (plain.lobby, plain.lifetime_seconds, plain.error) == (False, None, None)


async def test_logs_hold_no_host_links_or_knocking_names(
    make_meetnow: Factory, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, the Slack libraries included
    fake.fail("calls.add", "missing_scope")
    meetnow = await make_meetnow()
    _, body = await meetnow.command("--lobby Zebrafish")
    token = host_link_of(body).split("#host=", 1)[1]
    [room] = meetnow.running.meetnow.rooms.rooms()
    await knock(meetnow, room.id, "Quentin Knocker")
    rows = await wait_rows(fake, {"Quentin Knocker"})
    value = buttons(rows["Quentin Knocker"])["Deny"]["value"]
    for user_id in ("U0BOB", "U0ADA"):
        click = block_actions(
            "meetnow_deny", value, user_id=user_id, response_url=fake.response_url()
        )
        assert await fake.click(meetnow.events_url, click) == 200
    await wait_rows(fake, set())
    await meetnow.cards.drained()
    # (aiohttp's access log has room ids in paths: `meetnow serve` keeps it at WARNING.)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert logging.getLogger("bot.slack").isEnabledFor(logging.DEBUG)  # DEBUG was on
    assert caplog.records  # and something was logged
    for private in (token, "#host=", "Quentin", "Knocker", "Zebrafish", room.id):
        assert private not in logged
