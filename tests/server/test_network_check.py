"""The pre-join network check against a real server: an aiortc peer answers the check's offer and
its data channel opens; bad, late, repeated and too many checks get clear errors; a probe socket
never joins; and the probe's peer connection is closed at its deadline and when its socket closes
(counted on the server, and seen by the other end as its data channel closing)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from signaling.client import ParticipantClient
from signaling.network_check import (
    CHECKS_PER_ADDRESS,
    NETWORK_CHECK_SECONDS,
    PROBES_IN_TOTAL,
    PROBES_PER_ADDRESS,
    network_checks,
)

from ..conftest import RunningServer, start_server, test_settings

TIMEOUT = 20.0


@dataclass
class Probe:
    """A websocket on the pre-join screen, as the page's netcheck.js opens it."""

    ws: aiohttp.ClientWebSocketResponse
    http: aiohttp.ClientSession

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        message = await self.ws.receive(timeout=TIMEOUT)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data: dict[str, Any] = json.loads(message.data)
        return data

    async def error(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.send(message)
        reply = await self.receive()
        assert reply["type"] == "error", reply
        return reply

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


async def open_probe(
    running: RunningServer, room_id: str, forwarded_for: str | None = None
) -> Probe:
    http = aiohttp.ClientSession()
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    ws = await http.ws_connect(f"{running.base_url}/ws/{room_id}", headers=headers)
    return Probe(ws, http)


@dataclass
class Answerer:
    """The page's side of the check, in aiortc: answers the offer, waits for the data channel."""

    pc: RTCPeerConnection
    opened: asyncio.Event
    closed: asyncio.Event

    @classmethod
    def for_offer(cls, offer: dict[str, Any]) -> Answerer:
        servers = [
            RTCIceServer(s["urls"], s.get("username"), s.get("credential"))
            for s in offer["ice_servers"]
        ]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        answerer = cls(pc, asyncio.Event(), asyncio.Event())

        @pc.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            channel.on("open", answerer.opened.set)
            channel.on("close", answerer.closed.set)
            if channel.readyState == "open":
                answerer.opened.set()

        return answerer

    async def answer(self, offer: dict[str, Any]) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)


async def run_check(probe: Probe) -> Answerer:
    """network_check -> offer -> answer, until the data channel is open."""
    await probe.send({"type": "network_check"})
    offer = await probe.receive()
    assert offer["type"] == "network_check_offer", offer
    answerer = Answerer.for_offer(offer)
    await probe.send({"type": "network_check_answer", "sdp": await answerer.answer(offer)})
    await asyncio.wait_for(answerer.opened.wait(), TIMEOUT)
    return answerer


async def wait_until(condition: Any, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def running() -> AsyncIterator[RunningServer]:
    server, runner = await start_server(test_settings(trust_forwarded_for=True))
    yield server
    await runner.cleanup()


async def test_the_data_channel_opens_and_the_offer_carries_the_joined_ice_settings() -> None:
    running, runner = await start_server(
        test_settings(turn_urls=["turn:127.0.0.1:3478?transport=udp"], turn_secret="s")
    )
    probe = await open_probe(running, running.new_room())
    answerer: Answerer | None = None
    try:
        await probe.send({"type": "network_check"})
        offer = await probe.receive()
        assert offer["type"] == "network_check_offer"
        assert offer["ice_transport_policy"] == "all"
        assert offer["seconds"] == NETWORK_CHECK_SECONDS
        # One data channel, no media; a candidate on the relay's own host address.
        assert "m=application" in offer["sdp"] and "m=audio" not in offer["sdp"]
        assert "127.0.0.1" in offer["sdp"]
        [turn] = offer["ice_servers"]
        expiry = int(turn["username"].split(":", 1)[0])
        assert time.time() < expiry <= time.time() + 61  # a minute, not the hour a call gets
        answerer = Answerer.for_offer(offer)
        await probe.send({"type": "network_check_answer", "sdp": await answerer.answer(offer)})
        await asyncio.wait_for(answerer.opened.wait(), TIMEOUT)
        assert network_checks(running.meetnow).peer_connection_count() == 1
    finally:
        if answerer is not None:
            await answerer.pc.close()
        await probe.close()
        await runner.cleanup()


async def test_malformed_network_checks_are_refused(running: RunningServer) -> None:
    probe = await open_probe(running, running.new_room())
    try:
        extra = await probe.error({"type": "network_check", "media": True})
        assert extra["code"] == "invalid_message" and "network_check" in extra["message"]
        early = await probe.error({"type": "network_check_answer", "sdp": "v=0"})
        assert early["code"] == "out_of_order" and "network_check" in early["message"]
        empty = await probe.error({"type": "network_check_answer", "sdp": ""})
        assert empty["code"] == "invalid_message"
        # None of these started a check: the socket may still run one.
        await probe.send({"type": "network_check"})
        assert (await probe.receive())["type"] == "network_check_offer"
        no_fingerprint = await probe.error({"type": "network_check_answer", "sdp": "v=0\r\n"})
        assert no_fingerprint["code"] == "negotiation_failed" and no_fingerprint["fatal"]
    finally:
        await probe.close()


async def test_a_network_check_after_join_is_refused(running: RunningServer) -> None:
    client = ParticipantClient(running.base_url, running.new_room())
    try:
        await client.join()
        since = len(client.messages)
        await client.send({"type": "network_check"})
        error = await client.next_message("error", since=since)
        assert error["code"] == "out_of_order"
        assert error["message"] == "A network check runs before 'join', on a connection of its own."
        assert network_checks(running.meetnow).peer_connection_count() == 0
    finally:
        await client.close()


async def test_a_second_check_on_one_socket_is_refused_and_a_probe_cannot_join(
    running: RunningServer,
) -> None:
    room_id = running.new_room()
    probe = await open_probe(running, room_id)
    try:
        await probe.send({"type": "network_check"})
        assert (await probe.receive())["type"] == "network_check_offer"
        again = await probe.error({"type": "network_check"})
        assert again["code"] == "out_of_order" and "already ran a network check" in again["message"]
        join = {"type": "join", "version": 1, "name": "Probe", "session": "p" * 20}
        refused = await probe.error(join)
        assert (
            refused["code"] == "out_of_order" and "join on a new connection" in refused["message"]
        )
        assert running.meetnow.rooms.get_room(room_id).participants == {}  # type: ignore[union-attr]
    finally:
        await probe.close()


async def test_concurrent_checks_are_capped_per_address_and_in_total(
    running: RunningServer,
) -> None:
    room_id = running.new_room()
    probes: list[Probe] = []
    try:
        for _ in range(PROBES_PER_ADDRESS):
            probes.append(await open_probe(running, room_id, "203.0.113.1"))
            await probes[-1].send({"type": "network_check"})
            assert (await probes[-1].receive())["type"] == "network_check_offer"
        probes.append(await open_probe(running, room_id, "203.0.113.1"))
        refused = await probes[-1].error({"type": "network_check"})
        assert refused["code"] == "rate_limited" and "already running" in refused["message"]
        # Other addresses fill the server up to its total, then the next is refused.
        for index in range(PROBES_IN_TOTAL - PROBES_PER_ADDRESS):
            probes.append(await open_probe(running, room_id, f"203.0.113.{10 + index}"))
            await probes[-1].send({"type": "network_check"})
            assert (await probes[-1].receive())["type"] == "network_check_offer"
        assert network_checks(running.meetnow).peer_connection_count() == PROBES_IN_TOTAL
        probes.append(await open_probe(running, room_id, "203.0.113.200"))
        full = await probes[-1].error({"type": "network_check"})
        assert full["code"] == "rate_limited" and "too many network checks" in full["message"]
    finally:
        for probe in probes:
            await probe.close()
    await wait_until(lambda: network_checks(running.meetnow).peer_connection_count() == 0)


async def test_checks_per_address_are_rate_limited(running: RunningServer) -> None:
    room_id = running.new_room()
    checks = network_checks(running.meetnow)
    for _ in range(int(CHECKS_PER_ADDRESS.burst)):
        probe = await open_probe(running, room_id, "203.0.113.7")
        await probe.send({"type": "network_check"})
        assert (await probe.receive())["type"] == "network_check_offer"
        await probe.close()
        await wait_until(lambda: checks.peer_connection_count() == 0)
    probe = await open_probe(running, room_id, "203.0.113.7")
    try:
        refused = await probe.error({"type": "network_check"})
        assert refused["code"] == "rate_limited"
        assert refused["message"] == (
            "Too many network checks from this address; try again in a minute."
        )
        assert checks.peer_connection_count() == 0
    finally:
        await probe.close()
    # Another address is not affected.
    other = await open_probe(running, room_id, "203.0.113.8")
    try:
        await other.send({"type": "network_check"})
        assert (await other.receive())["type"] == "network_check_offer"
    finally:
        await other.close()


async def test_the_probe_closes_when_its_socket_closes(running: RunningServer) -> None:
    checks = network_checks(running.meetnow)
    probe = await open_probe(running, running.new_room())
    answerer = await run_check(probe)
    try:
        assert checks.peer_connection_count() == 1
        await probe.close()
        await wait_until(lambda: checks.peer_connection_count() == 0)
        # The other end sees it: the server's peer connection really closed its data channel.
        await asyncio.wait_for(answerer.closed.wait(), TIMEOUT)
    finally:
        await answerer.pc.close()


async def test_the_probe_closes_at_its_deadline_then_its_socket(running: RunningServer) -> None:
    checks = network_checks(running.meetnow)
    probe = await open_probe(running, running.new_room())
    started = time.monotonic()
    answerer = await run_check(probe)
    try:
        # The page keeps its socket open; the server closes the probe, then the socket.
        closing = await probe.ws.receive(timeout=NETWORK_CHECK_SECONDS + TIMEOUT)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
        assert time.monotonic() - started >= NETWORK_CHECK_SECONDS - 0.5
        assert checks.peer_connection_count() == 0
        await asyncio.wait_for(answerer.closed.wait(), TIMEOUT)
        assert probe.ws.close_code == aiohttp.WSCloseCode.OK
    finally:
        await answerer.pc.close()
        await probe.close()
