"""Slack cards across a restart of meetnow with its SQLite store: a card posted before the restart
is still updated after it (the real slack-bolt adapter against the fake Slack, the real server
stopped and started again on the same data directory), its lobby thread too, and a stopping
server ends no card. Discord's side: tests/bot/test_discord_cards_restart.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from bot.slack import SLACK, SlackAdapter, SlackCards
from signaling.client import ParticipantClient

from ..conftest import FakeClock, RunningServer, free_port, start_server, test_settings
from ..fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, signed_headers, slash_command


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


@dataclass
class Restart:
    """One server after another on the same port, data directory and clock (rooms close when
    the test sweeps them, never on their own while a server restarts)."""

    fake: FakeSlack
    data_dir: Path
    port: int
    clock: FakeClock

    async def start(self) -> tuple[RunningServer, web.AppRunner]:
        settings: dict[str, Any] = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": self.fake.api_url,
            "room_empty_grace_seconds": 30,
            "store": "sqlite",
            "data_dir": self.data_dir,
            "port": self.port,
        }
        return await start_server(test_settings(**settings), self.clock)


@pytest.fixture
def restart(fake: FakeSlack, tmp_path: Path) -> Restart:
    return Restart(fake, tmp_path, free_port(), FakeClock())


def adapter_of(running: RunningServer) -> SlackAdapter:
    return running.app[SLACK]


async def command(running: RunningServer, fake: FakeSlack, text: str) -> None:
    body = urlencode(slash_command(text, response_url=fake.response_url()))
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{running.base_url}/slack/events",
            data=body,
            headers=signed_headers(SIGNING_SECRET, body),
        ) as response:
            assert response.status == 200


def room_id_of(join_url: str) -> str:
    return join_url.rsplit("/", 1)[1]


def card_calls_since(fake: FakeSlack, since: int, call_id: str, ts: str) -> list[str]:
    """The Web API calls that touched the card (its Calls API call, or its message) after the
    first ``since`` calls: the methods, in order."""
    touched: list[str] = []
    for call in fake.calls[since:]:
        if not call.ok:
            continue
        if call.params.get("id") == call_id or call.params.get("ts") == ts:
            touched.append(call.method)
    return touched


@dataclass
class Posted:
    call_id: str
    ts: str
    room_id: str
    calls_before: int
    """How many Web API calls the fake had seen when the first server stopped."""


async def post_card_then_stop(restart: Restart) -> Posted:
    """``/meetnow Standup`` (a Calls API card), Ada joins, then the server stops with her in."""
    fake = restart.fake
    running, runner = await restart.start()
    try:
        await command(running, fake, "Standup")
        [add] = await fake.wait_calls("calls.add")
        [post] = await fake.wait_calls("chat.postMessage")
        ada = ParticipantClient(running.base_url, room_id_of(add.params["join_url"]), name="Ada")
        await ada.join()
        await fake.wait_calls("calls.participants.add")
        await adapter_of(running).cards.drained()
        await running.meetnow.rooms.flush()
    finally:
        await runner.cleanup()
    assert await ada.wait_closed(10) == 1012
    await ada.close()
    # A stopping server with a durable store ends no card.
    assert fake.calls_to("calls.end", ok_only=False) == []
    return Posted(
        call_id=add.answer["call"]["id"],
        ts=post.answer["ts"],
        room_id=room_id_of(add.params["join_url"]),
        calls_before=len(fake.calls),
    )


async def test_a_slack_call_card_keeps_updating_after_a_restart(restart: Restart) -> None:
    fake = restart.fake
    posted = await post_card_then_stop(restart)
    running, runner = await restart.start()
    try:
        grace = ParticipantClient(running.base_url, posted.room_id, name="Grace")
        await grace.join()
        adds = await fake.wait_calls("calls.participants.add", 2)
        assert adds[-1].params["id"] == posted.call_id
        assert adds[-1].params["users"][0]["display_name"] == "Grace"
        await grace.close()
        restart.clock.advance(31)
        assert [room.id for room in running.meetnow.rooms.sweep()] == [posted.room_id]
        [end] = await fake.wait_calls("calls.end")
        assert end.params["id"] == posted.call_id
        [update] = await fake.wait_calls("chat.update")
        assert update.params["ts"] == posted.ts  # exactly the message posted before the restart
        assert "Ended" in str(update.params["blocks"])
        await adapter_of(running).cards.drained()
        assert adapter_of(running).cards.cards() == []
    finally:
        await runner.cleanup()
    touched = card_calls_since(fake, posted.calls_before, posted.call_id, posted.ts)
    assert touched[0] == "calls.participants.add" and touched[-2:] == ["calls.end", "chat.update"]


async def nothing_restored(self: SlackCards) -> int:
    return 0


async def test_the_restart_check_sees_a_card_left_behind(
    restart: Restart, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test of the test: the same restart with an adapter deliberately left unrestored. The
    # room comes back, but its card is not tracked: the check above (calls on the pre-restart
    # call and message after the restart) must find none.
    fake = restart.fake
    posted = await post_card_then_stop(restart)
    monkeypatch.setattr(SlackCards, "restore", nothing_restored)
    running, runner = await restart.start()
    try:
        cards = adapter_of(running).cards
        assert cards.card(posted.room_id) is None
        grace = ParticipantClient(running.base_url, posted.room_id, name="Grace")
        await grace.join()  # the room is back: only its card is missing
        await grace.close()
        restart.clock.advance(31)
        assert [room.id for room in running.meetnow.rooms.sweep()] == [posted.room_id]
        # Room events reach the adapter as they happen (in the calls above): once the updates
        # they scheduled have run, any call to Slack would have been made.
        await cards.drained()
    finally:
        await runner.cleanup()
    assert card_calls_since(fake, posted.calls_before, posted.call_id, posted.ts) == []


async def test_the_lobby_thread_is_kept_across_a_restart(restart: Restart) -> None:
    # The lobby of a Calls API card is a threaded reply, posted when the first person waits
    # (after the card was kept): its ts is kept then too, so after a restart the same thread is
    # updated instead of a second one being posted under the card.
    fake = restart.fake
    running, runner = await restart.start()
    try:
        await command(running, fake, "--lobby Standup")
        [add] = await fake.wait_calls("calls.add")
        [card] = await fake.wait_calls("chat.postMessage")
        room_id = room_id_of(add.params["join_url"])
        bob = ParticipantClient(running.base_url, room_id, name="Bob")
        await bob.join(wait_for="waiting")
        [_, lobby] = await fake.wait_calls("chat.postMessage", 2)
        assert lobby.params["thread_ts"] == card.answer["ts"]
        await adapter_of(running).cards.drained()
        await running.meetnow.rooms.flush()
    finally:
        await runner.cleanup()
    await bob.close()
    posts_before = len(fake.calls_to("chat.postMessage"))

    running, runner = await restart.start()
    try:
        eve = ParticipantClient(running.base_url, room_id, name="Eve")
        await eve.join(wait_for="waiting")
        await fake.wait_for(
            lambda: any(
                u.params["ts"] == lobby.answer["ts"] and "Eve is waiting" in str(u.params)
                for u in fake.calls_to("chat.update")
            ),
            what="the pre-restart lobby thread showing Eve",
        )
        await adapter_of(running).cards.drained()
        assert len(fake.calls_to("chat.postMessage")) == posts_before  # no second thread
        await eve.close()
    finally:
        await runner.cleanup()


async def test_with_rooms_in_memory_a_stopping_server_ends_the_card(fake: FakeSlack) -> None:
    # The memory store, for contrast: the room (and its card) end with the process, and the
    # restarted server has neither.
    settings: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "port": free_port(),
    }
    running, runner = await start_server(test_settings(**settings))
    try:
        await command(running, fake, "Standup")
        [add] = await fake.wait_calls("calls.add")
        await fake.wait_calls("chat.postMessage")
    finally:
        await runner.cleanup()
    [end] = await fake.wait_calls("calls.end")  # ended at shutdown, as rooms in memory are
    assert end.params["id"] == add.answer["call"]["id"]
    running, runner = await start_server(test_settings(**settings))
    try:
        assert running.meetnow.rooms.get_room(room_id_of(add.params["join_url"])) is None
        assert adapter_of(running).cards.cards() == []
    finally:
        await runner.cleanup()
