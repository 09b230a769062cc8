"""Network: calls on impaired networks, through meetnow and Chromium peer to peer in the same run.

Three Chromium guests, each in a network namespace of its own behind an impaired access link, and
``meetnow serve`` in another behind a clean one (:mod:`benchmarks.netns`: nftables loss, NFQUEUE
delay, ``tbf`` downlink caps). Per condition, the guests join a fresh meetnow room, then connect
to each other directly (:mod:`benchmarks.p2p_mesh`) over the same links; each page's remote videos
are watched for ``window`` seconds, their frames counted with ``requestVideoFrameCallback`` (the
tests' page hooks), and freezes (gaps > 0.5 s) and frame rates computed from those timestamps
(:mod:`benchmarks.network_figures`).

Then a load-generator check (no root needed): four synthetic participants publishing VP8 with
temporal layers (L1T3, as browsers do), one of them with its downlink capped at 300 kbit/s
(``run_loadtest(participant_impairments=..., layers=3)``, the cap on what it receives only). Without root, nftables, iptables or
the kernel features, the browser part is reported as not measured, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from signaling.impairment import Impairment
from signaling.loadtest import run_loadtest
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, TEST_HOOKS, join, playing_now

from . import netns
from .common import (
    PYTHON,
    REPO,
    SERVER_ENV,
    clean_environment,
    meetnow_command,
    running_server,
    say,
    stop_process,
)
from .network_figures import PathRun, concealed_percent, guest_videos

GUESTS = 3
FULL_WINDOW_S = 20.0
QUICK_WINDOW_S = 8.0
JOIN_WAIT_S = 15.0
"""Longest wait for every remote video to play before the window starts (it starts anyway)."""
SETTLE_S = 2.0
CAP_TOTAL_KBPS = 2000.0
"""The issue's capped condition: 2 Mbit/s for six remote videos, so each guest's downlink gets a
third of it (the same share per video, about 333 kbit/s)."""
CONDITIONS: dict[str, netns.LinkImpairment] = {
    "2% loss": netns.LinkImpairment(loss_percent=2.0),
    "40 ± 10 ms delay + 2% loss": netns.LinkImpairment(2.0, 40.0, 10.0),
    f"downlink capped at {CAP_TOTAL_KBPS / GUESTS:.0f} kbit/s per guest "
    f"({CAP_TOTAL_KBPS / 1000:g} Mbit/s for six remote videos)": netns.LinkImpairment(
        downlink_kbps=round(CAP_TOTAL_KBPS / GUESTS)
    ),
}
SERVER_PORT = 8080
MESH_PORT = 8081
CAPPED_KBPS = 300.0
CAPPED_PARTICIPANTS = 4
CAPPED_FULL_S = 15.0
CAPPED_SMOKE_S = 3.0
CAPPED_LAYERS = 3
"""Temporal layers of the synthetic video in the capped check (L1T3, what browsers publish)."""

# Inbound video bytes and audio concealment of every peer connection of a page.
STATS_HOOK = """
(() => {
  const pcs = [];
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); pcs.push(this); }
  };
  window.__networkStats = async () => {
    let videoBytes = 0, concealed = 0, samples = 0;
    for (const pc of pcs) {
      if (pc.connectionState === 'closed') continue;
      for (const s of (await pc.getStats()).values()) {
        if (s.type !== 'inbound-rtp') continue;
        if (s.kind === 'video') videoBytes += s.bytesReceived ?? 0;
        if (s.kind === 'audio') {
          concealed += s.concealedSamples ?? 0;
          samples += s.totalSamplesReceived ?? 0;
        }
      }
    }
    return { videoBytes, concealed, samples };
  };
})();
"""


@dataclass
class CappedCheck:
    """Four synthetic participants, one capped: what each received."""

    seconds: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    impairment: str = ""
    note: str = ""

    @property
    def capped(self) -> dict[str, Any] | None:
        return self.rows[-1] if self.rows else None

    @property
    def others(self) -> list[dict[str, Any]]:
        return self.rows[:-1]

    def met(self) -> bool | None:
        """Others >= 28 fps on every stream, the capped one >= 10 fps on every stream."""
        if not self.rows or self.capped is None:
            return None
        others_ok = all(row["video_fps_min"] >= 28 for row in self.others)
        return others_ok and self.capped["video_fps_min"] >= 10


@dataclass
class NetworkResult:
    mode: str
    runs: list[PathRun] = field(default_factory=list)
    skipped: str = ""
    """Why the browser conditions were not measured (empty: they were)."""
    capped: CappedCheck | None = None

    def pair(self, condition: str) -> tuple[PathRun | None, PathRun | None]:
        found = {run.path: run for run in self.runs if run.condition == condition}
        return found.get("meetnow"), found.get("peer to peer")


# ------------------------------------------------------------------ processes in namespaces


def start_in(
    net: netns.Network,
    endpoint: str,
    command: list[str],
    env: dict[str, str],
    ready: str,
    timeout: float = 30.0,
) -> subprocess.Popen[str]:
    """``command`` inside ``endpoint``'s namespace; returns once it printed ``ready``."""
    process = subprocess.Popen(
        [*net.exec_prefix(endpoint), *command],
        cwd=tempfile.gettempdir(),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    seen: list[str] = []
    started = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            if ready in line:
                started.set()

    threading.Thread(target=pump, daemon=True).start()
    if not started.wait(timeout):
        stop_process(process, grace=3)
        raise RuntimeError(f"{command[0]} did not start in {endpoint}: {''.join(seen[-10:])}")
    return process


def create_room(net: netns.Network, base_url: str) -> str:
    """POST /api/rooms from a guest's namespace (the only side that can reach the server)."""
    script = (
        "import json, urllib.request as u; r = u.Request({!r}, data=b'{{}}', method='POST', "
        "headers={{'Content-Type': 'application/json'}}); "
        "print(json.loads(u.urlopen(r, timeout=10).read())['id'])".format(f"{base_url}/api/rooms")
    )
    done = subprocess.run(
        [*net.exec_prefix(net.guests[0]), PYTHON, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=20,
    )
    return f"{base_url}/r/{done.stdout.strip()}"


def chromium_wrapper(directory: Path, net: netns.Network, guest: str) -> str:
    """An executable that starts Debian's Chromium inside ``guest``'s namespace (Playwright
    talks to it over pipes, which cross namespaces)."""
    path = directory / f"chromium-{guest}"
    path.write_text(f'#!/bin/sh\nexec ip netns exec {net.namespace(guest)} {CHROMIUM} "$@"\n')
    path.chmod(0o755)
    return str(path)


# ------------------------------------------------------------------ one path


async def open_guest(browser: Browser) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(
        locale="en-US", permissions=["camera", "microphone"], viewport={"width": 960, "height": 640}
    )
    await context.add_init_script(TEST_HOOKS)
    await context.add_init_script(STATS_HOOK)
    return context, await context.new_page()


async def enter_meetnow(page: Page, room_url: str, name: str) -> None:
    await page.goto(room_url)
    await join(page, name)


async def enter_mesh(page: Page, mesh_url: str, name: str) -> None:
    await page.goto(f"{mesh_url}/?name={name}")
    await page.wait_for_function("() => window.meshReady === true", timeout=10_000)
    await page.evaluate("() => window.startMesh()")


async def watch(pages: list[Page], run: PathRun, window_s: float) -> None:
    """Wait for every remote video to play (bounded), then measure ``window_s`` seconds."""
    deadline = time.monotonic() + JOIN_WAIT_S
    while time.monotonic() < deadline:
        states = await asyncio.gather(*(playing_now(page, GUESTS - 1) for page in pages))
        if all(states):
            break
        await asyncio.sleep(0.5)
    else:
        tiles = await asyncio.gather(
            *(page.evaluate("() => window.__meetnowTest.remoteFrames().length") for page in pages)
        )
        counts = ", ".join(
            f"guest {number} {count} of {GUESTS - 1}" for number, count in enumerate(tiles, 1)
        )
        run.note = (
            f"not every video played within {JOIN_WAIT_S:.0f} s of joining (remote tiles: "
            f"{counts}); measured anyway"
        )
    await asyncio.sleep(SETTLE_S)
    now = "() => performance.now()"
    stats = "() => window.__networkStats()"
    starts = await asyncio.gather(*(page.evaluate(now) for page in pages))
    before = await asyncio.gather(*(page.evaluate(stats) for page in pages))
    await asyncio.sleep(window_s)
    ends = await asyncio.gather(*(page.evaluate(now) for page in pages))
    after = await asyncio.gather(*(page.evaluate(stats) for page in pages))
    frames = await asyncio.gather(
        *(page.evaluate("() => window.__meetnowTest.remoteFrames()") for page in pages)
    )
    run.videos = []
    for start, end, tiles in zip(starts, ends, frames, strict=True):
        seen = [(tile["name"], tile["times"], tile["counts"]) for tile in tiles]
        run.videos += guest_videos(seen, GUESTS - 1, start, end)
    run.window_s = sum(e - s for s, e in zip(starts, ends, strict=True)) / len(pages) / 1000
    videos = max(1, len(run.videos))
    video_bits = 8 * sum(
        a["videoBytes"] - b["videoBytes"] for a, b in zip(after, before, strict=True)
    )
    run.video_kbps = video_bits / videos / run.window_s / 1000
    run.audio_concealed_percent = concealed_percent(
        sum(a["concealed"] - b["concealed"] for a, b in zip(after, before, strict=True)),
        sum(a["samples"] - b["samples"] for a, b in zip(after, before, strict=True)),
    )


async def run_path(browsers: list[Browser], run: PathRun, url: str, window_s: float) -> PathRun:
    contexts: list[BrowserContext] = []
    try:
        pages = []
        for index, browser in enumerate(browsers, start=1):
            context, page = await open_guest(browser)
            contexts.append(context)
            if run.path == "meetnow":
                await enter_meetnow(page, url, f"guest-{index}")
            else:
                await enter_mesh(page, url, f"guest-{index}")
            pages.append(page)
        await watch(pages, run, window_s)
    except Exception as error:  # a condition that breaks is a figure too: say what broke
        run.note = f"{type(error).__name__}: {str(error)[:160]}"
    finally:
        for context in contexts:
            with contextlib.suppress(Exception):
                await context.close()
    say(describe_run(run))
    return run


# ------------------------------------------------------------------ the whole section


async def browser_conditions(net: netns.Network, window_s: float, result: NetworkResult) -> None:
    address = net.addresses["srv"]
    base_url, mesh_url = f"http://{address}:{SERVER_PORT}", f"http://{address}:{MESH_PORT}"
    env = {
        **clean_environment(),
        **SERVER_ENV,
        "MEETNOW_ICE_HOST_ADDRESSES": address,
        "MEETNOW_ROOM_MAX_PARTICIPANTS": "20",
    }
    serve = [*meetnow_command(), "serve", "--host", address, "--port", str(SERVER_PORT)]
    mesh = [PYTHON, "-m", "benchmarks.p2p_mesh", "--host", address, "--port", str(MESH_PORT)]
    processes = []
    flags = [*CHROMIUM_FLAGS, f"--unsafely-treat-insecure-origin-as-secure={base_url},{mesh_url}"]
    try:
        processes.append(start_in(net, "srv", serve, env, "meetnow is running"))
        processes.append(
            start_in(net, "srv", mesh, {**clean_environment(), "PYTHONPATH": str(REPO)}, "ready")
        )
        with tempfile.TemporaryDirectory(prefix="meetnow-network-") as directory:
            async with async_playwright() as playwright:
                browsers = []
                try:
                    for guest in net.guests:
                        browsers.append(
                            await playwright.chromium.launch(
                                executable_path=chromium_wrapper(Path(directory), net, guest),
                                args=flags,
                                headless=True,
                            )
                        )
                    for condition, link in CONDITIONS.items():
                        net.impair(dict.fromkeys(net.guests, link))
                        try:
                            room_url = create_room(net, base_url)
                            for path, url in (("meetnow", room_url), ("peer to peer", mesh_url)):
                                run = PathRun(condition, path)
                                result.runs.append(await run_path(browsers, run, url, window_s))
                        finally:
                            net.clear()
                finally:
                    for browser in browsers:
                        with contextlib.suppress(Exception):
                            await browser.close()
    finally:
        for process in processes:
            stop_process(process, grace=5)


def smoke_network(net: netns.Network, result: NetworkResult) -> None:
    """Build the namespaces and apply and clear every condition (the commands, the queue
    program), without browsers: what a smoke run can prove in seconds."""
    for link in CONDITIONS.values():
        net.impair(dict.fromkeys(net.guests, link))
        net.clear()
    result.skipped = (
        "smoke run: namespaces built and every condition applied and cleared; no browser measured"
    )


async def capped_check(seconds: float, loss_percent: float) -> CappedCheck:
    """Four synthetic participants; the last one's link capped at ``CAPPED_KBPS``."""
    check = CappedCheck(seconds)
    everyone = Impairment(loss_percent=loss_percent) if loss_percent else None
    capped = Impairment(loss_percent=loss_percent, rate_kbps=CAPPED_KBPS, rate_direction="down")
    check.impairment = (
        f"load-{CAPPED_PARTICIPANTS}'s downlink capped at {CAPPED_KBPS:g} kbit/s, "
        f"L1T3 video from everyone"
    ) + (f", everyone {loss_percent:g}% loss" if loss_percent else "")
    with running_server() as server:
        room_url = server.create_room("network: one capped subscriber")
        outcome = await run_loadtest(
            room_url,
            CAPPED_PARTICIPANTS,
            seconds,
            impairment=everyone,
            participant_impairments={CAPPED_PARTICIPANTS - 1: capped},
            layers=CAPPED_LAYERS,
        )
    check.rows = outcome.participants
    say(describe_capped(check))
    return check


def measure(mode: str) -> NetworkResult:
    """``mode``: "full", "quick" or "smoke" (no browsers; a 3 s load-generator check with loss)."""
    result = NetworkResult(mode)
    missing = netns.missing_capability()
    if missing:
        result.skipped = f"browser conditions not measured: {missing}"
        say(f"  {result.skipped}")
    else:
        with netns.network(GUESTS) as net:
            if mode == "smoke":
                smoke_network(net, result)
                say(f"  {result.skipped}")
            elif not os.path.exists(CHROMIUM):
                result.skipped = f"browser conditions not measured: {CHROMIUM} is missing"
            else:
                window = FULL_WINDOW_S if mode == "full" else QUICK_WINDOW_S
                asyncio.run(browser_conditions(net, window, result))
    smoke = mode == "smoke"
    result.capped = asyncio.run(
        capped_check(CAPPED_SMOKE_S if smoke else CAPPED_FULL_S, 2.0 if smoke else 0.0)
    )
    return result


# ------------------------------------------------------------------ words


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def describe_run(run: PathRun) -> str:
    if not run.measured:
        return f"  {run.condition}, {run.path}: not measured ({run.note})"
    return (
        f"  {run.condition}, {run.path}: {_fmt(run.freezes_per_minute, 2)} freezes/min/video, "
        f"fps min {_fmt(run.fps_min)} mean {_fmt(run.fps_mean)}, longest gap "
        f"{_fmt(run.longest_gap_s, 2)} s, {_fmt(run.video_kbps, 0)} kbit/s per video, audio "
        f"concealed {_fmt(run.audio_concealed_percent, 2)}% ({len(run.videos or [])} videos, "
        f"{run.window_s:.0f} s)" + (f"; {run.note}" if run.note else "")
    )


def describe_capped(check: CappedCheck) -> str:
    rows = ", ".join(
        f"{row['name']} fps min {row['video_fps_min']:.1f} ({row['received_kbps']:.0f} kbit/s in)"
        for row in check.rows
    )
    return f"  4-person room, {check.impairment}: {rows}"
