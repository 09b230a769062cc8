"""Chat endpoints after the outside attack pass (issue 10, items 2 and 5): forged and replayed
requests against the real slack-bolt app and the real Discord interactions endpoint inside a real
meetnow server, signed exactly as Slack and Discord sign them (the helpers of tests/bot/test_slack.py
and tests/bot/test_discord.py).

- Forged Slack requests (bad or stale signatures) leave nothing of their bodies in any log line,
  and neither does a retried ``response_url`` post; with the Slack libraries at INFO, as before,
  the same capture finds them (the test of the test).
- A correctly signed request works once: an identical replay is refused on both endpoints, also
  when the copies arrive together; Discord refuses timestamps outside 5 minutes (injected clock).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.core import SignedRequestGuard
from bot.slack import SLACK, SlackAdapter

from ..bot.test_discord import discord_env, signed
from ..conftest import FakeClock, RunningServer, free_port, start_server, test_settings
from ..fakes.discord import APPLICATION_ID
from ..fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, signed_headers, slash_command
from ..security.test_hardening_http import every_log_line, leaks

TOPIC = "ZQXJTOPIC"
USER = "UZQXJUSER"
CHANNEL = "CZQXJCHAN"
HOOK = "ZQXJHOOK"
"""Distinctive parts of a request body: nothing else would put them in a log line."""
BODY_PARTS = [TOPIC, USER, CHANNEL, HOOK]


@asynccontextmanager
async def slack_meetnow(fake: FakeSlack) -> AsyncIterator[RunningServer]:
    """meetnow with the Slack adapter on, built inside the caller's log capture (so it sees the
    root at DEBUG, as ``meetnow serve -v`` would)."""
    running, runner = await start_server(
        test_settings(
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=fake.api_url,
        )
    )
    try:
        yield running
    finally:
        await runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def slack_loggers_left_at_info() -> Iterator[None]:
    """Undo the fix for the test of the test: every Slack library logger back at INFO, as
    meetnow had them; the levels are put back afterwards (they are process-wide)."""
    saved = {name: logging.getLogger(name).level for name in slack_logger_names()}
    yield
    for name in slack_logger_names():
        logging.getLogger(name).setLevel(saved.get(name, logging.NOTSET))


def slack_logger_names() -> list[str]:
    """Every logger slack-bolt and slack-sdk have made so far (bolt names one after the app)."""
    return [
        name
        for name in list(logging.root.manager.loggerDict)
        if name.split(".")[0].split(":")[0] in ("slack_bolt", "slack_sdk", "meetnow")
    ]


def lower_slack_loggers_to_info() -> None:
    """The levels meetnow left them at before the fix: bolt's loggers (which copy the app
    logger's level) and ``slack_sdk`` at INFO, slack-sdk's own module loggers unset (slack-sdk
    logs a retried post's URL when its logger's own level is unset or DEBUG)."""
    for name in slack_logger_names():
        sdk_module = name.startswith("slack_sdk.")
        logging.getLogger(name).setLevel(logging.NOTSET if sdk_module else logging.INFO)


async def post_command(
    running: RunningServer, body: str, headers: dict[str, str]
) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(running.base_url + "/slack/events", data=body, headers=headers) as response,
    ):
        return response.status, await response.text()


async def send_forged_commands(running: RunningServer) -> None:
    """A bad and a stale signature on a body full of distinctive parts; both refused (401).
    Bolt writes its log line before it answers, so the answers are the round trip."""
    payload = slash_command(
        f"{TOPIC} planning",
        response_url=f"https://hooks.slack.com/commands/T0FAKE/{HOOK}/secret",
        user_id=USER,
        channel_id=CHANNEL,
    )
    body = urlencode(payload)
    forged = signed_headers("not-the-signing-secret", body)
    stale = signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) - 6 * 60)
    for headers in (forged, stale):
        assert (await post_command(running, body, headers))[0] == 401
    assert running.meetnow.rooms.rooms() == []


async def post_card_through_a_dead_response_url(running: RunningServer, fake: FakeSlack) -> None:
    """A real command whose card must go through its ``response_url`` (the bot is not in the
    channel), which refuses connections: slack-sdk retries the post once, then gives up."""
    fake.fail("chat.postMessage", "not_in_channel", times=1)
    dead = f"http://127.0.0.1:{free_port()}/commands/T0FAKE/{HOOK}/secret"
    body = urlencode(slash_command("Standup", response_url=dead))
    assert (await post_command(running, body, signed_headers(SIGNING_SECRET, body)))[0] == 200
    adapter: SlackAdapter = running.app[SLACK]
    await fake.wait_calls("calls.add")
    await adapter.cards.drained()


# ------------------------------------------------------- 2. request bodies stay out of the logs


async def test_forged_slack_requests_leave_nothing_of_their_bodies_in_any_log(
    fake: FakeSlack,
) -> None:
    with every_log_line() as lines:
        async with slack_meetnow(fake) as running:
            await send_forged_commands(running)
            await post_card_through_a_dead_response_url(running, fake)
    assert any("without a valid signature" in line for line in lines)  # the capture works
    assert any("response_url failed" in line for line in lines)  # the retried post happened
    assert leaks(lines, BODY_PARTS) == []


async def test_the_log_check_finds_the_bodies_with_the_slack_libraries_at_info(
    fake: FakeSlack, slack_loggers_left_at_info: None
) -> None:
    """Test of the test: the same requests, with the Slack libraries at INFO (meetnow's levels
    before the fix): bolt's refusal line carries the forged body, slack-sdk's retry line the
    ``response_url``, and the capture sees both."""
    with every_log_line() as lines:
        async with slack_meetnow(fake) as running:
            lower_slack_loggers_to_info()
            await send_forged_commands(running)
            await post_card_through_a_dead_response_url(running, fake)
    found = leaks(lines, BODY_PARTS)
    assert any(TOPIC in line and USER in line and CHANNEL in line for line in found), found
    assert any("retry handler" in line and HOOK in line for line in found), found


# ------------------------------------------------------------------------- 5. replays: Slack


async def test_a_replayed_slack_command_is_refused_even_when_the_copies_arrive_together(
    fake: FakeSlack,
) -> None:
    async with slack_meetnow(fake) as running:
        body = urlencode(slash_command("Standup", response_url=fake.response_url()))
        headers = signed_headers(SIGNING_SECRET, body)
        status, answer = await post_command(running, body, headers)
        assert status == 200 and "#host=" in answer
        assert len(running.meetnow.rooms.rooms()) == 1
        # The same signed request again: inside the 5-minute window its signature is valid.
        status, answer = await post_command(running, body, headers)
        assert status == 401 and "#host=" not in answer
        # Five copies of a new one at once: one gets in.
        body = urlencode(slash_command("Retro", response_url=fake.response_url()))
        headers = signed_headers(SIGNING_SECRET, body)
        answers = await asyncio.gather(*(post_command(running, body, headers) for _ in range(5)))
        assert sorted(status for status, _ in answers) == [200, 401, 401, 401, 401]
        assert len(running.meetnow.rooms.rooms()) == 2
        # A new command from the same person is not a replay.
        body = urlencode(slash_command("Standup", response_url=fake.response_url(), user_id="U0B"))
        assert (await post_command(running, body, signed_headers(SIGNING_SECRET, body)))[0] == 200
        assert len(running.meetnow.rooms.rooms()) == 3
        await running.app[SLACK].cards.drained()


# ----------------------------------------------------------------------- 5. replays: Discord


async def test_discord_refuses_stale_timestamps_and_replays() -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw().hex()
    async with discord_env(
        gateway=False, discord_public_key=public, discord_application_id=str(APPLICATION_ID)
    ) as env:
        clock = FakeClock(1_900_000_000.0)
        env.adapter.requests.clock = clock  # Discord's timestamps are wall-clock seconds
        endpoint = env.server.base_url + "/discord/interactions"

        async def post(body: bytes, signed_at: float) -> tuple[int, str]:
            headers = signed(key, body, str(int(signed_at)))
            async with (
                aiohttp.ClientSession() as http,
                http.post(endpoint, data=body, headers=headers) as response,
            ):
                return response.status, await response.text()

        def command(topic: str) -> bytes:
            return json.dumps(env.fake.interaction_payload(topic=topic)).encode()

        now = clock()
        # Really signed, but 30 days old, or 6 minutes either way: refused, no room.
        for signed_at in (now - 30 * 86400, now - 6 * 60, now + 6 * 60):
            status, text = await post(command("Old"), signed_at)
            assert (status, text) == (401, "stale request timestamp\n")
        assert env.server.meetnow.rooms.rooms() == []

        # Four minutes old is fine, once.
        body = command("Standup")
        assert (await post(body, now - 4 * 60))[0] == 200
        assert await post(body, now - 4 * 60) == (401, "replayed request\n")
        assert len(env.server.meetnow.rooms.rooms()) == 1

        # Copies sent together: one gets in.
        body = command("Retro")
        answers = await asyncio.gather(*(post(body, now) for _ in range(5)))
        assert sorted(status for status, _ in answers) == [200, 401, 401, 401, 401]
        assert len(env.server.meetnow.rooms.rooms()) == 2

        # Past the window the replay is refused as stale; what was remembered is forgotten.
        clock.advance(6 * 60)
        assert await post(body, now) == (401, "stale request timestamp\n")
        assert len(env.adapter.requests) == 2
        assert (await post(command("Later"), clock()))[0] == 200
        assert len(env.adapter.requests) == 1
        await env.settle()


def test_the_replay_memory_is_bounded_and_forgets_after_the_window() -> None:
    clock = FakeClock(1_900_000_000.0)
    guard = SignedRequestGuard(window_seconds=300, max_remembered=3, clock=clock)
    stamp = str(int(clock()))
    for n in range(5):
        assert guard.first_time(stamp, f"body {n}".encode())
    assert len(guard) == 3  # the two oldest were forgotten to make room
    assert not guard.first_time(stamp, b"body 4")  # the newest are still refused
    clock.advance(301)
    assert guard.first_time(str(int(clock())), b"later")
    assert len(guard) == 1  # everything past the window is gone
    assert not guard.fresh(stamp) and guard.fresh(str(int(clock())))
    for garbage in ("", "soon", "nan", "inf", "1e400"):
        assert not guard.fresh(garbage)
