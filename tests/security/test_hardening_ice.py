"""The relay sends UDP only where it should, through the public interface: real aiortc peers on a
real server, answers carrying the candidates an attacker would write (issue 10, item 1).

A participant's answer names where the relay's ICE agent sends connectivity checks. These tests
listen where the attacker points and assert that nothing arrives, with the call itself as the
barrier: once media flows to the attacker, its ICE agent has already sent its first checks, in
priority order, and the listeners carry the highest priorities. The tests of the test run the same
checker where the relay *does* send (an allowed candidate) and watch it arrive.

Policy details, one by one: tests/signaling/test_ice_policy.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioice import stun

from signaling.client import ParticipantClient, PatternVideoTrack, ToneAudioTrack
from signaling.ice_policy import interface_addresses
from signaling.relay import Relay
from signaling.server import create_app

from ..conftest import RunningServer, test_settings

TOP_PRIORITY = 2130706431 + 1000
"""Above any host candidate aiortc gives itself: the relay checks these pairs first."""


# ------------------------------------------------------------------------------------ helpers


@contextlib.asynccontextmanager
async def meetnow(
    **overrides: object,
) -> AsyncIterator[tuple[RunningServer, list[ParticipantClient]]]:
    """The app ``meetnow serve`` runs, on a loopback port, the relay in this process; and a list
    whose clients are closed at the end, whatever happened."""
    settings = test_settings(**overrides)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    clients: list[ParticipantClient] = []
    try:
        yield RunningServer(f"http://{settings.host}:{settings.port}", runner.app, None), clients
    finally:
        for client in clients:
            await client.close()
        await runner.cleanup()


@dataclass
class LyingClient(ParticipantClient):
    """A real aiortc participant whose answers are rewritten on their way out, as an attacker
    would write them."""

    rewrite: Callable[[str], str] | None = None
    answers: list[dict[str, Any]] = field(default_factory=list)
    """The answers as sent."""

    async def send(self, message: dict[str, Any]) -> None:
        if message.get("type") == "answer":
            if self.rewrite is not None:
                message = {**message, "sdp": self.rewrite(message["sdp"])}
            self.answers.append(message)
        await super().send(message)


def with_candidates(candidates: list[str], *, more_to_come: bool = False) -> Callable[[str], str]:
    """Adds ``a=candidate`` lines (values) to the answer's last m-line: aiortc takes a bundled
    transport's candidates from there. ``more_to_come`` drops ``a=end-of-candidates``, so
    candidates in later answers still reach the ICE agent."""

    def rewrite(sdp: str) -> str:
        end = "a=end-of-candidates\r\n"
        head, _, tail = sdp.rpartition(end)
        sdp = head + "".join(f"a=candidate:{c}\r\n" for c in candidates) + end + tail
        return sdp.replace(end, "") if more_to_come else sdp

    return rewrite


def candidate(address: str, port: int, rank: int = 0) -> str:
    """A host candidate; lower ``rank``, higher priority."""
    return f"x 1 udp {TOP_PRIORITY - rank} {address} {port} typ host"


def media_client(base_url: str, room_id: str, name: str) -> ParticipantClient:
    return ParticipantClient(
        base_url, room_id, name=name, audio=ToneAudioTrack(), video=PatternVideoTrack()
    )


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def frames_from(client: ParticipantClient, other: ParticipantClient) -> dict[str, int]:
    """Frames ``client`` decoded so far from ``other``, by kind."""
    assert other.participant_id is not None
    streams = {
        "audio": client.audio_from(other.participant_id),
        "video": client.video_from(other.participant_id),
    }
    return {kind: stream.frames if stream else 0 for kind, stream in streams.items()}


async def media_flows(client: ParticipantClient, other: ParticipantClient, frames: int) -> None:
    """Wait until ``client`` has decoded ``frames`` more audio and video frames from ``other``
    than it had: media that keeps flowing, not a snapshot."""
    start = frames_from(client, other)
    await wait_until(
        lambda: all(n >= start[kind] + frames for kind, n in frames_from(client, other).items()),
        30,
        f"{client.name} receiving {other.name}",
    )


async def round_trip(client: ParticipantClient) -> None:
    """``ping`` then its ``pong``: the server has handled everything sent before."""
    mark = len(client.messages)
    await client.send({"type": "ping"})
    await client.next_message("pong", 10, since=mark)


class Listener(asyncio.DatagramProtocol):
    """A UDP socket standing where an attacker points the relay: it records what arrives."""

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.datagrams.append(data)

    def stun_requests(self) -> list[stun.Message]:
        found = []
        for data in self.datagrams:
            with contextlib.suppress(ValueError):
                message = stun.parse_message(data)
                if message.message_class == stun.Class.REQUEST:
                    found.append(message)
        return found


@contextlib.asynccontextmanager
async def listening(address: str, port: int = 0) -> AsyncIterator[tuple[Listener, int]]:
    """A :class:`Listener` bound to ``address`` (``port`` 0: any free one) and its port."""
    loop = asyncio.get_running_loop()
    transport, listener = await loop.create_datagram_endpoint(Listener, local_addr=(address, port))
    try:
        yield listener, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


def free_udp_port_or_any(address: str, wanted: int) -> int:
    """``wanted`` if nothing listens there, else 0 (any free port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, wanted))
        except OSError:
            return 0
    return wanted


async def sees(listener: Listener, target: tuple[str, int]) -> bool:
    """Whether a datagram sent to ``target`` from a socket bound like the relay's (127.0.0.1)
    reaches ``listener``: the test of the test, that it would see what the relay sent there.
    The probe is then forgotten."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind(("127.0.0.1", 0))
        sender.sendto(b"probe", target)
    try:
        await wait_until(lambda: bool(listener.datagrams), 2, "the probe")
    except AssertionError:
        return False
    finally:
        listener.datagrams.clear()
    return True


def relay_side_candidates(
    running: RunningServer, room_id: str, who: ParticipantClient
) -> set[tuple[str, int, str]]:
    """(address, port, type) of every remote candidate the relay's ICE agent holds for ``who``,
    read through aiortc's public API: the only places it ever sends checks to."""
    relay = running.meetnow.relay
    assert isinstance(relay, Relay) and who.participant_id is not None
    pc = relay.rooms[room_id].sessions[who.participant_id].pc
    found: set[tuple[str, int, str]] = set()
    for transceiver in pc.getTransceivers():
        ice = transceiver.receiver.transport.transport
        found.update((c.ip, c.port, c.type) for c in ice.getRemoteCandidates())
    return found


async def call_with(
    running: RunningServer, clients: list[ParticipantClient], extra: list[str]
) -> tuple[str, ParticipantClient, LyingClient]:
    """Ana publishes; the rogue joins with ``extra`` candidates in its answer and waits until
    Ana's media flows to it: its ICE agent on the relay has started its checks."""
    room_id = running.new_room()
    ana = media_client(running.base_url, room_id, "ana")
    rogue = LyingClient(running.base_url, room_id, name="rogue", rewrite=with_candidates(extra))
    clients += [ana, rogue]
    await ana.join()
    await rogue.join()
    await media_flows(rogue, ana, 10)
    return room_id, ana, rogue


def own_ipv4_address() -> str | None:
    """A non-loopback IPv4 address of this host, if it has one."""
    found = sorted(str(a) for a in interface_addresses() if a.version == 4 and not a.is_loopback)
    return found[0] if found else None


# --------------------------------------------------------------------------- the attacks


async def test_an_answer_with_3000_candidates_is_refused_and_the_call_goes_on() -> None:
    async with (
        meetnow() as (running, clients),
        listening("127.0.0.1") as (listener, port),
    ):
        room_id = running.new_room()
        ana, bo = (media_client(running.base_url, room_id, name) for name in ("ana", "bo"))
        clients += [ana, bo]
        for client in (ana, bo):
            await client.join()
        await media_flows(ana, bo, 10)
        await media_flows(bo, ana, 10)
        # One answer, 3,000 candidates: 21,000 datagrams to 3,000 ports before the fix. The
        # first, with the highest priority, points at the listener.
        stuffing = [candidate("127.0.0.1", port)] + [
            candidate(f"127.1.{i // 250}.{i % 250 + 1}", port, rank=i + 1) for i in range(2999)
        ]
        rogue = LyingClient(
            running.base_url, room_id, name="rogue", rewrite=with_candidates(stuffing)
        )
        clients.append(rogue)
        await rogue.join()
        error = await rogue.next_message("error", 10, since=0)
        assert error["code"] == "too_many_candidates" and error["fatal"] is False, error
        assert "past 20 ICE candidates" in error["message"]
        assert 150_000 < len(rogue.answers[0]["sdp"]) < 200_000  # within every size limit
        await round_trip(rogue)
        # The session goes on: the offer still waits, and an honest answer to it is applied.
        assert rogue.pc is not None
        rogue.rewrite = None
        revision = rogue.answers[0]["revision"]
        await rogue.send(
            {"type": "answer", "revision": revision, "sdp": rogue.pc.localDescription.sdp}
        )
        await media_flows(rogue, ana, 10)
        await media_flows(rogue, bo, 10)
        await media_flows(ana, bo, 10)
        await media_flows(bo, ana, 10)
        assert listener.datagrams == []
        assert len(rogue.errors) == 1 and ana.errors == [] and bo.errors == []


DENIED_ELSEWHERE = [
    ("169.254.169.254", 80),  # cloud metadata
    ("224.0.0.1", 5353),  # multicast
    ("255.255.255.255", 9),  # broadcast
    ("240.0.0.1", 9),  # reserved
    ("fe80::1", 9),  # link-local
    ("ff02::1", 9),
    ("::", 9),
    ("2f0e7d1c-54aa-4b1e-9c36-4ab3e1f0a9d2.local", 9),  # mDNS: never resolved
]
"""Destinations a test cannot listen at: the relay's ICE agent must not even hold them."""


@pytest.mark.parametrize("first", ["memcached", "unspecified", "other loopback", "own address"])
async def test_metadata_loopback_unspecified_multicast_and_link_local_get_no_datagram(
    first: str,
) -> None:
    """A relay that offers no loopback (here: told to use no loopback peers, as tests must
    offer 127.0.0.1). Each run puts another listened-at destination first, where the relay
    would send its very first check."""
    own = own_ipv4_address()
    if first == "own address" and own is None:
        pytest.skip("this host has no address but loopback")
    async with (
        meetnow(ice_loopback_peers=False) as (running, clients),
        contextlib.AsyncExitStack() as stack,
    ):
        places = {
            "memcached": ("127.0.0.1", "127.0.0.1", free_udp_port_or_any("127.0.0.1", 11211)),
            "unspecified": ("0.0.0.0", "127.0.0.1", 0),  # reaches this host (CVE-2020-26262)
            "other loopback": ("127.0.0.2", "127.0.0.2", 0),
        }
        if own is not None:  # this host's own address reaches its services as loopback does
            places["own address"] = (own, own, 0)
        targets: dict[tuple[str, int], Listener] = {}
        for name in sorted(places, key=lambda n: n != first):
            address, bind, port = places[name]
            listener, port = await stack.enter_async_context(listening(bind, port))
            targets[(address, port)] = listener
            assert await sees(listener, (address, port)), f"the listener for {name} sees nothing"
        given = [*targets, *DENIED_ELSEWHERE]
        extra = [candidate(address, port, rank) for rank, (address, port) in enumerate(given)]
        room_id, ana, rogue = await call_with(running, clients, extra)
        for target, listener in targets.items():
            assert listener.datagrams == [], f"the relay sent {target} a datagram"
        # Nothing signalled is held, the real candidate (loopback) neither: the relay only
        # answers where checks really come from (peer-reflexive), and sends nowhere else.
        assert {kind for _, _, kind in relay_side_candidates(running, room_id, rogue)} == {"prflx"}
        assert rogue.errors == [] and ana.errors == []


async def test_an_allowed_candidate_is_still_checked_first_and_the_denied_never() -> None:
    """The test of the test above: the same checker where the relay may send. The tests' relay
    offers 127.0.0.1, so loopback candidates are allowed: the listener gets the relay's checks
    before media flows, while 0.0.0.0 and 169.254.169.254 right behind it are not even held."""
    async with meetnow() as (running, clients), listening("127.0.0.3") as (allowed, port):
        extra = [
            candidate("127.0.0.3", port, 0),
            candidate("0.0.0.0", port, 1),
            candidate("169.254.169.254", 80, 2),
        ]
        room_id, _, rogue = await call_with(running, clients, extra)
        requests = allowed.stun_requests()
        assert requests, "the relay never checked the allowed candidate"
        ufrag = re.findall(r"^a=ice-ufrag:(\S+)", rogue.answers[0]["sdp"], re.M)[0]
        assert all(str(r.attributes["USERNAME"]).startswith(f"{ufrag}:") for r in requests)
        held = {address for address, _, _ in relay_side_candidates(running, room_id, rogue)}
        assert "127.0.0.3" in held and not {"0.0.0.0", "169.254.169.254"} & held


async def test_candidates_in_a_later_answer_count_against_the_same_cap_and_none_trickle() -> None:
    async with meetnow() as (running, clients):
        # 15 more than its own: 16 of the 20, and no end-of-candidates, so more may come.
        first = [candidate(f"127.1.0.{i + 1}", 9, rank=i) for i in range(15)]
        room_id = running.new_room()
        ana = media_client(running.base_url, room_id, "ana")
        rogue = LyingClient(
            running.base_url,
            room_id,
            name="rogue",
            rewrite=with_candidates(first, more_to_come=True),
        )
        clients += [ana, rogue]
        await ana.join()
        await rogue.join()
        await media_flows(rogue, ana, 10)
        assert rogue.errors == []
        # Bo joins: a new offer; the rogue's answer to it adds 10 new candidates.
        later = [candidate(f"127.2.0.{i + 1}", 9, rank=i) for i in range(10)]
        rogue.rewrite = with_candidates(first + later, more_to_come=True)
        mark = len(rogue.messages)
        bo = media_client(running.base_url, room_id, "bo")
        clients.append(bo)
        await bo.join()
        error = await rogue.next_message("error", 10, since=mark)
        assert error["code"] == "too_many_candidates" and error["fatal"] is False, error
        assert "past 20 ICE candidates" in error["message"]
        # No trickle message exists: a candidate sent on its own is not understood.
        mark = len(rogue.messages)
        await rogue.send(
            {"type": "candidate", "candidate": "candidate:" + candidate("127.3.0.1", 9)}
        )
        assert (await rogue.next_message("error", 10, since=mark))["code"] == "unknown_type"
        await round_trip(rogue)
        # Everyone's media goes on: the rogue's as negotiated before, Ana's and Bo's.
        await media_flows(rogue, ana, 10)
        await media_flows(ana, bo, 10)
        await media_flows(bo, ana, 10)
        assert ana.errors == [] and bo.errors == []


# ----------------------------------------------------------------- websockets per address


def ws_url(running: RunningServer, room_id: str) -> str:
    return running.base_url.replace("http://", "ws://") + "/ws/" + room_id


async def test_one_address_gets_429_past_its_open_websockets_and_others_do_not() -> None:
    """The default cap, behind a proxy (``MEETNOW_TRUST_FORWARDED_FOR``): what the proxy saw
    counts, not what the client claimed."""
    async with meetnow(trust_forwarded_for=True) as (running, _), aiohttp.ClientSession() as http:
        room_id = running.new_room()
        url = ws_url(running, room_id)
        cap = running.meetnow.settings.limit_websockets_per_ip
        assert cap == 50
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        try:
            for i in range(cap):
                # What an appending proxy forwards: the client's own claim, then what it saw.
                forwarded = {"X-Forwarded-For": f"10.0.{i}.1, 203.0.113.7"}
                sockets.append(await http.ws_connect(url, headers=forwarded))
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url, headers={"X-Forwarded-For": "203.0.113.7"})
            assert refused.value.status == 429
            elsewhere = await http.ws_connect(url, headers={"X-Forwarded-For": "198.51.100.9"})
            sockets.append(elsewhere)
            await elsewhere.send_json(
                {"type": "join", "version": 1, "name": "x", "session": "s" * 16,
                 "audio": False, "video": False}
            )  # fmt: skip
            assert (await elsewhere.receive_json(timeout=10))["type"] == "joined"
            # A closed socket gives its place back.
            await sockets.pop(0).close()
            deadline = time.monotonic() + 10
            while True:
                try:
                    sockets.append(
                        await http.ws_connect(url, headers={"X-Forwarded-For": "203.0.113.7"})
                    )
                    break
                except aiohttp.WSServerHandshakeError as error:
                    assert error.status == 429 and time.monotonic() < deadline
                    await asyncio.sleep(0.05)
        finally:
            for ws in sockets:
                await ws.close()


async def test_without_a_trusted_proxy_a_forged_forwarded_for_dodges_nothing() -> None:
    async with meetnow(limit_websockets_per_ip=3) as (running, _), aiohttp.ClientSession() as http:
        url = ws_url(running, running.new_room())
        sockets = [
            await http.ws_connect(url, headers={"X-Forwarded-For": f"198.51.100.{i}"})
            for i in range(3)
        ]
        try:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url, headers={"X-Forwarded-For": "192.0.2.99"})
            assert refused.value.status == 429
        finally:
            for ws in sockets:
                await ws.close()
