"""Prometheus metrics, checked against a running call: real aiortc participants in a real server
with two relay worker processes, scraped on the metrics listener of its own (a free port here,
never the default 9464)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from signaling.client import ParticipantClient, PatternVideoTrack, ToneAudioTrack
from signaling.metrics import parse_listen_address

from ..bot.test_discord import discord_env
from ..conftest import RunningServer, free_port, start_server, test_settings
from ..signaling.test_relay import receives_all, wait_until

TOPIC = "Quarterly plan zq7"
NAMES = ("Ada Lovelace x1", "Grace Hopper x2", "Katherine Johnson x3")


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with exactly ``labels``; 0 if there is none."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def leaked(text: str, secrets: list[str]) -> list[str]:
    """Each secret (room id, name, topic, participant id) that appears anywhere in the text."""
    return [secret for secret in secrets if secret in text]


def still_counting(before: float, after: float) -> bool:
    return after > before


async def scrape(port: int) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


@pytest.fixture
async def metered_server() -> AsyncIterator[tuple[RunningServer, int]]:
    port = free_port()
    settings = test_settings(relay_workers=2, metrics_listen=f"127.0.0.1:{port}")
    running, runner = await start_server(settings)
    yield running, port
    await runner.cleanup()


def media_client(server: RunningServer, room_id: str, name: str) -> ParticipantClient:
    return ParticipantClient(
        server.base_url, room_id, name=name, audio=ToneAudioTrack(), video=PatternVideoTrack()
    )


async def test_figures_match_a_running_call(metered_server: tuple[RunningServer, int]) -> None:
    server, port = metered_server
    room_id = server.new_room(TOPIC)
    clients = [media_client(server, room_id, name) for name in NAMES]
    knocker: ParticipantClient | None = None
    try:
        for client in clients:
            await client.join()
        for client in clients:
            others = [c for c in clients if c is not client]
            await wait_until(lambda c=client, o=others: receives_all(c, o, 10), 30, "media")
        # Each relay worker reports its connections to the main process as they happen.
        await wait_until_scraped(port, "meetnow_join_to_media_seconds_count", 3.0)
        first = await scrape(port)
        assert metric_value(first, "meetnow_rooms") == 1
        assert metric_value(first, "meetnow_participants") == 3
        assert metric_value(first, "meetnow_lobby_waiting") == 0
        assert metric_value(first, "meetnow_relay_workers") == 2
        assert metric_value(first, "meetnow_relay_workers_up") == 2
        assert metric_value(first, "meetnow_join_to_media_seconds_count") == 3
        assert metric_value(first, "meetnow_forwarded_packets_total") > 0
        # Frames keep arriving, so the forwarded totals go on growing between two scrapes.
        stream = clients[0].video_from(clients[1].participant_id or "")
        assert stream is not None
        frames = stream.frames
        await wait_until(lambda: stream.frames > frames + 15, 10, "more frames")
        second = await scrape(port)
        for name in ("meetnow_forwarded_packets_total", "meetnow_forwarded_bytes_total"):
            assert still_counting(metric_value(first, name), metric_value(second, name)), name

        lobby_room = server.meetnow.rooms.create_room(TOPIC + " lobby", lobby=True).id
        knocker = ParticipantClient(server.base_url, lobby_room, name="Knocker z9")
        await knocker.join(wait_for="waiting")
        third = await scrape(port)
        assert metric_value(third, "meetnow_lobby_waiting") == 1
        assert metric_value(third, "meetnow_rooms") == 2
        assert metric_value(third, "meetnow_participants") == 3

        secrets = [room_id, lobby_room, TOPIC, *NAMES, "Knocker z9"]
        secrets += [c.participant_id or "" for c in clients]
        for text in (first, second, third):
            assert leaked(text, secrets) == []
    finally:
        for client in [*clients, *([knocker] if knocker else [])]:
            await client.close()


async def wait_until_scraped(port: int, name: str, value: float) -> None:
    for _ in range(200):
        if metric_value(await scrape(port), name) >= value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never reached {value}")


def test_the_checks_fail_on_a_leak_and_on_a_frozen_counter() -> None:
    # Test of the tests above: a label holding a room id is reported, a counter that did not
    # move is not "still counting", and an absent sample reads 0 (so "== 3" cannot pass by luck).
    text = (
        "# HELP meetnow_rooms Open rooms.\n# TYPE meetnow_rooms gauge\n"
        'meetnow_rooms{room="AbC123xyz"} 1.0\n'
    )
    assert leaked(text, ["AbC123xyz", "Nobody"]) == ["AbC123xyz"]
    assert not still_counting(42.0, 42.0)
    assert metric_value(text, "meetnow_rooms") == 0.0
    assert metric_value(text, "meetnow_rooms", room="AbC123xyz") == 1.0


async def test_metrics_never_on_the_public_port(
    metered_server: tuple[RunningServer, int],
) -> None:
    server, port = metered_server
    async with aiohttp.ClientSession() as http:
        async with http.get(server.base_url + "/metrics") as response:
            assert response.status == 404
            assert await response.read() == server.meetnow.page("404.html")
        # The metrics listener serves /metrics and nothing else.
        async with http.get(f"http://127.0.0.1:{port}/") as response:
            assert response.status == 404
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 404


async def test_chat_commands_are_counted_by_platform_and_result() -> None:
    port = free_port()
    async with discord_env(metrics_listen=f"127.0.0.1:{port}") as env:
        await env.fake.send_interaction(topic=TOPIC)
        await env.fake.send_interaction(topic="x", duration="until the cows come home")
        for result in ("created", "invalid"):
            labels = {"platform": "discord", "result": result}
            for _ in range(200):
                text = await scrape(port)
                if metric_value(text, "meetnow_chat_commands_total", **labels) == 1:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"no {labels} count")
            assert leaked(text, [TOPIC]) == []


async def test_a_metrics_address_in_use_stops_the_server_with_the_variable_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            await start_server(test_settings(metrics_listen=f"127.0.0.1:{port}"))
    assert "MEETNOW_METRICS_LISTEN" in caplog.text


def test_listen_address_parsing() -> None:
    assert parse_listen_address("") is None
    assert parse_listen_address("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen_address("[::1]:9100") == ("::1", 9100)
    for bad in ("9464", "localhost", "host:port", "127.0.0.1:70000", ":9464"):
        with pytest.raises(ValueError, match=re.escape("127.0.0.1:9464")):
            parse_listen_address(bad)
