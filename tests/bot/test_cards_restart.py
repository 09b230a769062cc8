"""Chat cards across a restart of meetnow with its SQLite store: a card posted before the restart
is still updated after it (the real slack-bolt adapter against the fake Slack), and a stopping
server ends no card."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from signaling.client import ParticipantClient

from ..conftest import RunningServer, free_port, start_server, test_settings
from ..fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, signed_headers, slash_command


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


async def start(fake: FakeSlack, data_dir: Path, port: int) -> tuple[RunningServer, web.AppRunner]:
    settings: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "room_empty_grace_seconds": 0.3,
        "store": "sqlite",
        "data_dir": data_dir,
        "port": port,
    }
    return await start_server(test_settings(**settings))


async def command(running: RunningServer, fake: FakeSlack, text: str) -> None:
    from urllib.parse import urlencode

    body = urlencode(slash_command(text, response_url=fake.response_url()))
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{running.base_url}/slack/events",
            data=body,
            headers=signed_headers(SIGNING_SECRET, body),
        ) as response:
            assert response.status == 200


async def test_a_slack_call_card_keeps_updating_after_a_restart(
    fake: FakeSlack, tmp_path: Path
) -> None:
    port = free_port()
    running, runner = await start(fake, tmp_path, port)
    try:
        await command(running, fake, "Standup")
        [add] = await fake.wait_calls("calls.add")
        call_id = add.answer["call"]["id"]
        join_url = add.params["join_url"]
        [post] = await fake.wait_calls("chat.postMessage")
        ada = ParticipantClient(running.base_url, join_url.rsplit("/", 1)[1], name="Ada")
        await ada.join()
        await fake.wait_calls("calls.participants.add")
        await running.meetnow.rooms.flush()
    finally:
        await runner.cleanup()
    assert await ada.wait_closed(10) == 1012
    await ada.close()
    # A stopping server with a durable store ends no card.
    assert fake.calls_to("calls.end", ok_only=False) == []

    running, runner = await start(fake, tmp_path, port)
    try:
        grace = ParticipantClient(running.base_url, join_url.rsplit("/", 1)[1], name="Grace")
        await grace.join()
        adds = await fake.wait_calls("calls.participants.add", 2)
        assert adds[-1].params["id"] == call_id
        assert adds[-1].params["users"][0]["display_name"] == "Grace"
        await grace.close()
        [end] = await fake.wait_calls("calls.end")
        assert end.params["id"] == call_id
        [update] = await fake.wait_calls("chat.update")
        assert update.params["ts"] == post.answer["ts"]
        assert "Ended" in str(update.params["blocks"])
    finally:
        await runner.cleanup()


async def test_the_restart_check_sees_a_card_left_behind(fake: FakeSlack, tmp_path: Path) -> None:
    # The test of the test: with rooms in memory the room (and its card) end with the process,
    # and the restarted server has no card to update: the check above must not pass.
    port = free_port()
    settings: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "port": port,
    }
    running, runner = await start_server(test_settings(**settings))
    try:
        await command(running, fake, "Standup")
        [add] = await fake.wait_calls("calls.add")
        await fake.wait_calls("chat.postMessage")
    finally:
        await runner.cleanup()
    await fake.wait_calls("calls.end")  # ended at shutdown, as rooms in memory are
    running, runner = await start_server(test_settings(**settings))
    try:
        room_id = add.params["join_url"].rsplit("/", 1)[1]
        assert running.meetnow.rooms.get_room(room_id) is None
        assert running.app  # the Slack adapter runs, with no card to keep
    finally:
        await runner.cleanup()
