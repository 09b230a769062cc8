"""Headless Chromium for the end-to-end tests and the browser benchmark: launch flags, a room page
with the test hooks, and the probes that tell whether media really flows.

Media is judged by what keeps arriving, never by a snapshot: a video plays only while its tile
presents new frames (at least ``FRAMES_PER_WINDOW`` in every ``WINDOW_MS`` of a check, counted by
``requestVideoFrameCallback``), and audio is heard only while its inbound packets advance and its
energy rises (``RTCPeerConnection.getStats()``).

Every probe is a function string run with ``page.evaluate`` (Playwright calls functions without
``eval``, which the page's CSP rightly forbids). The hooks they read are injected with
``context.add_init_script`` (not subject to the CSP), so the web client carries no test code.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request, WebSocket, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

FRAMES_PER_WINDOW = 10
"""A video plays only with at least this many new frames presented in every window of a check."""
WINDOW_MS = 2000.0
WINDOW_STEP_MS = 50.0

TILE_COUNT = "(count) => document.querySelectorAll('[data-participant]').length === count"

TEST_HOOKS = (Path(__file__).parent / "page_hooks.js").read_text()
"""Page-side half of the probes below: ``window.__meetnowTest``."""

DENY_MEDIA = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/test.sh"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        yield launched
        await launched.close()


@dataclass
class NetworkLog:
    """Every request and websocket of the pages it watches, and the room pages' CSP headers."""

    urls: list[str] = field(default_factory=list)
    csp_headers: list[str] = field(default_factory=list)
    received_messages: list[dict[str, Any]] = field(default_factory=list)
    """Every JSON text frame the pages' websockets received."""
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    def watch(self, context: BrowserContext) -> None:
        context.on("request", self._on_request)
        context.on("page", lambda page: page.on("websocket", self._on_websocket))

    def _on_request(self, request: Request) -> None:
        self.urls.append(request.url)
        if request.resource_type == "document":
            task = asyncio.get_running_loop().create_task(self._record_csp(request))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def settled(self) -> NetworkLog:
        """This log, once every response it waits for is recorded."""
        await asyncio.gather(*self._pending)
        return self

    async def _record_csp(self, request: Request) -> None:
        response = await request.response()
        if response is not None and urlsplit(request.url).path.startswith("/r/"):
            self.csp_headers.append(await response.header_value("content-security-policy") or "")

    def _on_websocket(self, websocket: WebSocket) -> None:
        self.urls.append(websocket.url)
        websocket.on("framereceived", self._on_frame)

    def _on_frame(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            self.received_messages.append(json.loads(payload))

    def origins(self) -> set[str]:
        """Each distinct origin requested, with ws: and wss: shown as the http(s) they upgrade."""
        http_scheme = {"ws": "http", "wss": "https"}
        found = set()
        for url in self.urls:
            parts = urlsplit(url)
            found.add(f"{http_scheme.get(parts.scheme, parts.scheme)}://{parts.netloc}")
        return found


async def open_room(
    browser: Browser, url: str, *, camera: bool = True, network: NetworkLog | None = None
) -> Page:
    context = await browser.new_context(
        permissions=["camera", "microphone"] if camera else [],
        viewport={"width": 960, "height": 640},
        locale="en-US",  # English pages whatever the machine's LANG (the page follows it)
    )
    await context.add_init_script(TEST_HOOKS)
    if not camera:
        # What a user who clicks "Block" gets: every getUserMedia call is refused.
        await context.add_init_script(DENY_MEDIA)
    if network is not None:
        network.watch(context)
    page = await context.new_page()
    await page.goto(url)
    return page


async def join(page: Page, name: str) -> float:
    """Fill in the name, click Join; return the click's time on the page clock (ms)."""
    await page.get_by_label("Your name").fill(name)
    started: float = await page.evaluate("() => performance.now()")
    await page.get_by_role("button", name="Join", exact=True).click()
    return started


async def page_now(page: Page) -> float:
    now: float = await page.evaluate("() => performance.now()")
    return now


# ---------------------------------------------------------------- video


PLAYING_NOW = (
    "([count, perWindow, windowMs]) =>"
    " window.__meetnowTest.remotePlaying(count, perWindow, windowMs)"
)


async def wait_playing(page: Page, count: int, timeout_ms: int = 20_000) -> None:
    """Wait until the page shows exactly ``count`` remote tiles, each presenting new frames: at
    least ``FRAMES_PER_WINDOW`` within the last ``WINDOW_MS``."""
    await page.wait_for_function(
        PLAYING_NOW, arg=[count, FRAMES_PER_WINDOW, WINDOW_MS], timeout=timeout_ms
    )


async def playing_now(page: Page, count: int) -> bool:
    """What ``wait_playing`` waits for, asked once."""
    playing: bool = await page.evaluate(PLAYING_NOW, [count, FRAMES_PER_WINDOW, WINDOW_MS])
    return playing


@dataclass(frozen=True)
class TileFrames:
    """When one remote tile presented frames (page clock, ms), and how many each time."""

    name: str
    times: list[float]
    counts: list[int]
    video_width: int


async def remote_frames(page: Page) -> list[TileFrames]:
    rows: list[dict[str, Any]] = await page.evaluate("() => window.__meetnowTest.remoteFrames()")
    return [TileFrames(row["name"], row["times"], row["counts"], row["videoWidth"]) for row in rows]


def video_verdict(tile: TileFrames, start: float, end: float) -> Literal["playing", "frozen"]:
    """Playing only if every ``WINDOW_MS`` window between ``start`` and ``end`` holds at least
    ``FRAMES_PER_WINDOW`` new frames; one window short of it is a freeze."""
    if end - start < WINDOW_MS:
        raise ValueError(f"a check must span at least one {WINDOW_MS:.0f} ms window")
    window_start = start
    while window_start + WINDOW_MS <= end:
        first = bisect.bisect_left(tile.times, window_start)
        last = bisect.bisect_left(tile.times, window_start + WINDOW_MS)
        if sum(tile.counts[first:last]) < FRAMES_PER_WINDOW:
            return "frozen"
        window_start += WINDOW_STEP_MS
    return "playing"


def frames_per_second(tile: TileFrames, start: float, end: float) -> list[int]:
    """Frames presented in each second from ``start``: what a failure message should show."""
    counts = [0] * max(1, int((end - start) // 1000) + 1)
    for at, count in zip(tile.times, tile.counts, strict=True):
        if start <= at < end:
            counts[int((at - start) // 1000)] += count
    return counts


@dataclass(frozen=True)
class VideoCheck:
    """Each remote tile's verdict over one check, with its frames per second to explain it."""

    verdicts: dict[str, Literal["playing", "frozen"]]
    frames_per_second: dict[str, list[int]]


async def watch_videos(page: Page, seconds: float) -> VideoCheck:
    """Watch every remote tile for ``seconds`` and judge each by ``video_verdict``."""
    start = await page_now(page)
    await asyncio.sleep(seconds)
    end = await page_now(page)
    tiles = await remote_frames(page)
    return VideoCheck(
        {tile.name: video_verdict(tile, start, end) for tile in tiles},
        {tile.name: frames_per_second(tile, start, end) for tile in tiles},
    )


async def first_remote_frame_at(page: Page) -> float | None:
    """Page-clock time (ms) of the first frame any remote tile presented, if any has."""
    at: float | None = await page.evaluate("() => window.__meetnowTest.firstRemoteFrameAt()")
    return at


async def stop_sending_video(page: Page) -> None:
    """Make this page's publisher go silent: its video sender sends nothing from now on."""
    await page.evaluate("() => window.__meetnowTest.stopSendingVideo()")


# ---------------------------------------------------------------- audio


@dataclass(frozen=True)
class AudioSample:
    """One remote participant's inbound audio, as the page's ``getStats()`` reports it."""

    packets: int
    energy: float
    level: float


@dataclass(frozen=True)
class AudioFlow:
    """What arrived from one remote participant during a check."""

    new_packets: int
    new_energy: float
    peak_level: float

    @property
    def heard(self) -> bool:
        # Chromium's fake microphone beeps twice a second, so energy rises within half a second.
        # Energy alone is not enough: the receiver's concealment adds some after packets stop.
        return self.new_packets >= 10 and self.new_energy > 0 and self.peak_level > 0


async def remote_audio(page: Page) -> dict[str, AudioSample]:
    rows: list[dict[str, Any]] = await page.evaluate("() => window.__meetnowTest.remoteAudio()")
    samples: dict[str, AudioSample] = {}
    for row in rows:
        samples[row["name"]] = AudioSample(int(row["packets"]), row["energy"], row["level"])
    return samples


class AudioWatch:
    """Inbound audio of each remote participant since this watch first saw it."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.first: dict[str, AudioSample] = {}
        self.peak_levels: dict[str, float] = {}

    async def sample(self) -> dict[str, AudioFlow]:
        flows = {}
        for name, sample in (await remote_audio(self.page)).items():
            first = self.first.setdefault(name, sample)
            peak = self.peak_levels[name] = max(self.peak_levels.get(name, 0.0), sample.level)
            flows[name] = AudioFlow(
                sample.packets - first.packets, sample.energy - first.energy, peak
            )
        return flows


async def audio_flow(page: Page, seconds: float) -> dict[str, AudioFlow]:
    """What arrived from each remote participant during the next ``seconds``."""
    watch = AudioWatch(page)
    await watch.sample()
    await asyncio.sleep(seconds)
    return await watch.sample()


def audio_stopped(flows: dict[str, AudioFlow], silent: str, sending: str) -> bool:
    """``silent`` sent no packet during the sample, while ``sending`` did: the page was receiving,
    and only ``silent`` was cut off."""
    if silent not in flows or sending not in flows:
        return False
    return flows[silent].new_packets == 0 and flows[sending].new_packets > 0


async def wait_hearing(
    page: Page, names: set[str], timeout_s: float = 15.0
) -> dict[str, AudioFlow]:
    """Wait until the page hears each of ``names`` (packets advancing, energy rising, a level
    above zero); return what it heard."""
    watch = AudioWatch(page)
    deadline = time.monotonic() + timeout_s
    while True:
        flows = await watch.sample()
        if all(name in flows and flows[name].heard for name in names):
            return flows
        if time.monotonic() > deadline:
            raise AssertionError(f"not heard: {sorted(names)}; audio seen: {flows}")
        await asyncio.sleep(0.1)


async def wait_audio_stopped(
    page: Page, silent: str, sending: str, timeout_s: float = 10.0
) -> dict[str, AudioFlow]:
    """Wait until ``audio_stopped`` holds for two samples a second apart; return that second's
    flows. The sending participant is the barrier: a page that stopped receiving altogether, or
    had not started, never passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        flows = await audio_flow(page, seconds=1.0)
        if audio_stopped(flows, silent, sending):
            return flows
        if time.monotonic() > deadline:
            raise AssertionError(f"{silent}'s audio still arrives: {flows}")


# ---------------------------------------------------------------- connection


async def ice_servers(page: Page) -> list[list[dict[str, Any]]]:
    """The ``iceServers`` each open peer connection of the page was configured with."""
    servers: list[list[dict[str, Any]]] = await page.evaluate(
        "() => window.__meetnowTest.iceServers()"
    )
    return servers


async def remote_candidate_addresses(page: Page) -> list[str]:
    """Every address the page's peer connections know as a remote ICE candidate."""
    addresses: list[str] = await page.evaluate(
        "() => window.__meetnowTest.remoteCandidateAddresses()"
    )
    return addresses
