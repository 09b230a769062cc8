"""Discord cards across a restart of meetnow with its SQLite store: the real discord.py bot against
the fake Discord, the real server stopped and started again on the same data directory. A card
posted before the restart is edited after it, through the channel message API with the bot token
(the interaction token was never kept), and says "Ended" when its room closes; a stopping server
ends no card; the database holds no token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.discord import DISCORD, DiscordAdapter, DiscordCards
from signaling.client import ParticipantClient

from ..conftest import FakeClock, RunningServer, free_port, start_server, test_settings
from ..fakes.discord import CHANNEL_ID, GUILD_ID, FakeDiscord
from .test_discord import STARTER, embed_of, in_the_call, join_url, knock_rows


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord().start()
    yield fake
    await fake.close()


@dataclass
class Restart:
    """One server after another on the same port, data directory and clock."""

    fake: FakeDiscord
    data_dir: Path
    port: int
    clock: FakeClock

    async def start(self) -> tuple[RunningServer, web.AppRunner]:
        """The server, once its bot is logged in and on the gateway."""
        settings = test_settings(
            discord_api_url=self.fake.api_url,
            discord_token=self.fake.token,
            discord_guild_ids=[GUILD_ID],
            room_empty_grace_seconds=30,  # rooms close when the test sweeps them, never before
            store="sqlite",
            data_dir=self.data_dir,
            port=self.port,
        )
        running, runner = await start_server(settings, self.clock)
        await self.fake.wait_for(self.fake.ready.is_set)
        return running, runner

    async def stop(self, runner: web.AppRunner) -> None:
        await runner.cleanup()
        await self.fake.wait_for(lambda: not self.fake.ready.is_set())  # the bot has gone


@dataclass
class Posted:
    """The card as it was when the first server stopped."""

    message: dict[str, Any]
    """The fake's message (it changes as the fake applies edits)."""
    message_id: int
    room_id: str
    interaction_token: str
    edits_before: int
    """How many edits the fake had applied (to any message) when the server stopped."""


def adapter_of(running: RunningServer) -> DiscordAdapter:
    return running.app[DISCORD]


def edits_after_restart(fake: FakeDiscord, posted: Posted) -> list[tuple[str, int]]:
    """(route, message id) of each edit the fake applied since the first server stopped."""
    return [(route, message_id) for route, message_id, _ in fake.edits[posted.edits_before :]]


def stored_bytes(data_dir: Path) -> bytes:
    """Everything the store wrote (the database and any journal next to it)."""
    return b"".join(path.read_bytes() for path in sorted(data_dir.rglob("*")) if path.is_file())


async def post_card_then_stop(restart: Restart) -> Posted:
    """``/meetnow`` over the gateway, Ada joins (the card says so), then the server stops with
    Ada still in the call."""
    fake = restart.fake
    running, runner = await restart.start()
    try:
        payload = await fake.send_interaction(topic="Standup")
        message = await fake.wait_for(lambda: fake.message_for(payload["token"]))
        room_id = join_url(message).rsplit("/", 1)[1]
        ada = ParticipantClient(running.base_url, room_id, name="Ada Lovelace")
        await ada.join()
        await fake.wait_for(lambda: in_the_call(message) == "• Ada Lovelace")
        card = adapter_of(running).cards.card(room_id)
        assert card is not None and card.kept  # its address went to the store
        await running.meetnow.rooms.flush()
    finally:
        await restart.stop(runner)
    assert await ada.wait_closed(10) == 1012  # "service restart": her page comes back by itself
    await ada.close()
    return Posted(message, int(message["id"]), room_id, payload["token"], len(fake.edits))


@pytest.fixture
def restart(fake: FakeDiscord, tmp_path: Path) -> Restart:
    return Restart(fake, tmp_path, free_port(), FakeClock())


async def test_a_discord_card_keeps_updating_after_a_restart(restart: Restart) -> None:
    fake = restart.fake
    posted = await post_card_then_stop(restart)
    # A stopping server with a durable store ends no card: it keeps its Join link (Ada's page
    # closing with the server may show as her leaving until she is back).
    assert posted.message["components"]
    assert not embed_of(posted.message)["description"].startswith("Ended")
    # The store kept where the card is, and no token: neither the interaction's nor the bot's.
    stored = stored_bytes(restart.data_dir)
    assert str(posted.message_id).encode() in stored  # the scan sees what the store wrote
    assert posted.interaction_token.encode() not in stored
    assert b"SECRET" not in stored  # the fake's interaction tokens all end so
    assert fake.token.encode() not in stored
    webhook_edits_before = len(fake.calls_to("webhook_patch"))

    running, runner = await restart.start()
    try:
        adapter = adapter_of(running)
        card = adapter.cards.card(posted.room_id)
        assert card is not None and card.message_id == posted.message_id and not card.token
        grace = ParticipantClient(running.base_url, posted.room_id, name="Grace Hopper")
        await grace.join()
        await fake.wait_for(lambda: in_the_call(posted.message) == "• Grace Hopper")
        await grace.close()
        await fake.wait_for(lambda: in_the_call(posted.message) == "Nobody right now")
        restart.clock.advance(31)
        assert [room.id for room in running.meetnow.rooms.sweep()] == [posted.room_id]
        await fake.wait_for(lambda: posted.message["components"] == [])
        assert embed_of(posted.message)["description"].startswith("Ended · ")
        await adapter.cards.drained()
        assert adapter.cards.cards() == []  # nothing about the room outlives it
    finally:
        await restart.stop(runner)
    # Every edit after the restart was of exactly the card posted before it, through the
    # channel with the bot token: the interaction token was gone.
    edits = edits_after_restart(fake, posted)
    assert len(edits) >= 3  # Grace in, nobody, ended
    assert edits == [("channel_patch", posted.message_id)] * len(edits)
    patches = fake.calls_to("channel_patch")
    assert patches and all(
        p.path.endswith(f"/channels/{CHANNEL_ID}/messages/{posted.message_id}")
        and p.headers["Authorization"] == f"Bot {fake.token}"
        for p in patches
    )
    assert len(fake.calls_to("webhook_patch")) == webhook_edits_before


async def nothing_restored(self: DiscordCards) -> int:
    return 0


async def test_the_restart_check_sees_a_card_left_behind(
    restart: Restart, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test of the test: the same restart with an adapter deliberately left unrestored. The
    # room comes back, but its card is not tracked: the check above (edits of the pre-restart
    # message after the restart) must find none, and the card stays as it was, stale.
    fake = restart.fake
    posted = await post_card_then_stop(restart)
    monkeypatch.setattr(DiscordCards, "restore", nothing_restored)
    running, runner = await restart.start()
    try:
        adapter = adapter_of(running)
        assert adapter.cards.card(posted.room_id) is None
        grace = ParticipantClient(running.base_url, posted.room_id, name="Grace Hopper")
        await grace.join()  # the room is back: only its card is missing
        await grace.close()
        restart.clock.advance(31)
        assert [room.id for room in running.meetnow.rooms.sweep()] == [posted.room_id]
        # Room events reach the adapter as they happen (join, leave, close, in the calls above):
        # once the updates they scheduled have run, any edit would have reached the fake.
        await adapter.cards.drained()
    finally:
        await restart.stop(runner)
    assert edits_after_restart(fake, posted) == []
    # Stale: it never showed Grace, and still offers Join to a meeting that has ended.
    assert posted.message["components"]
    assert not embed_of(posted.message)["description"].startswith("Ended")


async def test_the_hosts_admit_works_on_a_card_restored_after_a_restart(restart: Restart) -> None:
    # A knock after the restart shows on the pre-restart card (Admit / Deny, through the
    # channel), and the host's click on it admits: the restored card knows its host and message.
    fake = restart.fake
    running, runner = await restart.start()
    try:
        payload = await fake.send_interaction(topic="Interview", lobby=True)
        message = await fake.wait_for(lambda: fake.message_for(payload["token"]))
        room_id = join_url(message).rsplit("/", 1)[1]
        card = adapter_of(running).cards.card(room_id)
        await fake.wait_for(lambda: card is not None and card.kept)
        await running.meetnow.rooms.flush()
    finally:
        await restart.stop(runner)

    running, runner = await restart.start()
    try:
        eve = ParticipantClient(running.base_url, room_id, name="Eve")
        await eve.join(wait_for="waiting")
        await fake.wait_for(lambda: knock_rows(message))
        assert fake.edits[-1][:2] == ("channel_patch", int(message["id"]))
        ((admit, _),) = knock_rows(message)
        since = len(eve.messages)
        click = await fake.send_component(message, admit["custom_id"], STARTER)
        await eve.next_message("joined", since=since)
        (callback,) = await fake.wait_for(
            lambda: [c for c in fake.calls_to("callback") if click["id"] in c.path]
        )
        assert callback.body["type"] == 7  # the clicked message itself is updated
        await fake.wait_for(lambda: not knock_rows(message) and in_the_call(message) == "• Eve")
        await eve.close()
    finally:
        await restart.stop(runner)
