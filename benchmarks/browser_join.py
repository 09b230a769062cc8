"""Browser: click Join -> first remote video frame, in headless Chromium (Debian's, via Playwright).

A fresh ``meetnow serve`` gets one room. One synthetic participant (``meetnow loadtest -n 1`` in its
own process: pre-encoded 640x480 VP8 and Opus) stays in the room the whole time. Then, ``JOINS``
times: a fresh browser context opens the room page (fake camera and microphone), fills in a name,
clicks Join, and the page itself records ``performance.now()`` at the click and when the first
remote ``<video>`` has ``videoWidth > 0`` (polled every animation frame); the context then closes.
Page load (navigation until the Join button is enabled) is reported separately.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field

from playwright.async_api import Browser, async_playwright

from .common import (
    PROGRESS_LINE,
    REPO,
    fmt,
    meetnow_command,
    percentile,
    running_server,
    say,
    stop_process,
    table,
)

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
JOINS = 20
QUICK_JOINS = 5
JOIN_TIMEOUT_MS = 20_000
TARGET_P50_MS = 600.0
TARGET_P95_MS = 1200.0

# Functions, not expressions: Playwright evaluates expression strings with eval, which the page's
# CSP forbids.
RECORD_CLICK = """
() => document.addEventListener('click', () => { window.__joinClickAt = performance.now(); },
                                { capture: true, once: true })
"""
FIRST_REMOTE_FRAME = """
() => {
  const videos = document.querySelectorAll('[data-participant]:not([data-local]) video');
  const playing = Array.from(videos).some(v => v.videoWidth > 0);
  return playing && window.__joinClickAt !== undefined ? performance.now() - window.__joinClickAt : false;
}
"""
JOIN_ENABLED = (
    "() => { const b = document.getElementById('join-button'); return !!b && !b.disabled; }"
)


@dataclass
class BrowserResult:
    joins: int
    click_to_frame_ms: list[float] = field(default_factory=list)
    page_load_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def p(self, values: list[float], fraction: float) -> float | None:
        return percentile(values, fraction) if values else None


class Publisher:
    """``meetnow loadtest ROOM -n 1``: one synthetic participant that stays in the room."""

    def __init__(self, room_url: str, seconds: float) -> None:
        self.process = subprocess.Popen(
            [*meetnow_command(), "loadtest", room_url, "-n", "1", "--duration", str(seconds)],
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.publishing = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if PROGRESS_LINE.match(line):
                self.publishing.set()

    def stop(self) -> None:
        stop_process(self.process, grace=5)


async def one_join(browser: Browser, url: str, index: int, result: BrowserResult) -> None:
    context = await browser.new_context(
        permissions=["camera", "microphone"], viewport={"width": 960, "height": 640}
    )
    try:
        page = await context.new_page()
        started = time.monotonic()
        await page.goto(url)
        await page.wait_for_function(JOIN_ENABLED, timeout=JOIN_TIMEOUT_MS)
        result.page_load_ms.append((time.monotonic() - started) * 1000)
        await page.get_by_label("Your name").fill(f"bench-{index}")
        await page.evaluate(RECORD_CLICK)
        await page.get_by_role("button", name="Join", exact=True).click()
        handle = await page.wait_for_function(
            FIRST_REMOTE_FRAME, timeout=JOIN_TIMEOUT_MS, polling="raf"
        )
        result.click_to_frame_ms.append(float(await handle.json_value()))
    except Exception as error:  # a failed join is a figure too, not a crash
        result.failures.append(f"join {index}: {type(error).__name__}: {str(error)[:120]}")
    finally:
        await context.close()


async def measure_async(joins: int) -> BrowserResult:
    result = BrowserResult(joins)
    with running_server() as server:
        room_url = server.create_room("browser join")
        publisher = Publisher(room_url, seconds=60 + joins * 10)
        try:
            await asyncio.to_thread(publisher.publishing.wait, 60)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
                )
                try:
                    for index in range(joins):
                        await one_join(browser, room_url, index, result)
                        await asyncio.sleep(0.3)  # the server renegotiates the publisher
                finally:
                    with contextlib.suppress(Exception):
                        await browser.close()
        finally:
            publisher.stop()
    say(describe(result))
    for failure in result.failures:
        say(f"  browser: {failure}")
    return result


def measure(joins: int) -> BrowserResult:
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing (Debian's chromium package)")
    return asyncio.run(measure_async(joins))


def describe(result: BrowserResult) -> str:
    values = result.click_to_frame_ms
    return (
        f"  browser click Join -> first remote frame: {len(values)}/{result.joins} joins, "
        f"p50 {fmt(result.p(values, 0.5), 0)} ms (target <= {TARGET_P50_MS:.0f}), "
        f"p95 {fmt(result.p(values, 0.95), 0)} ms (target <= {TARGET_P95_MS:.0f}), "
        f"min {fmt(min(values, default=None), 0)} max {fmt(max(values, default=None), 0)}; "
        f"page load p50 {fmt(result.p(result.page_load_ms, 0.5), 0)} ms"
    )


def markdown(result: BrowserResult, references: list[tuple[str, str]]) -> str:
    frame, load = result.click_to_frame_ms, result.page_load_ms
    rows: list[list[object]] = [
        [
            "click Join -> first remote frame (Chromium)",
            f"{len(frame)} of {result.joins}",
            fmt(result.p(frame, 0.5), 0),
            fmt(result.p(frame, 0.95), 0),
            fmt(min(frame, default=None), 0),
            fmt(max(frame, default=None), 0),
        ],
        [
            "page load: navigation -> Join enabled (Chromium)",
            f"{len(load)} of {result.joins}",
            fmt(result.p(load, 0.5), 0),
            fmt(result.p(load, 0.95), 0),
            fmt(min(load, default=None), 0),
            fmt(max(load, default=None), 0),
        ],
    ]
    rows += [[label, "", value, "", "", ""] for label, value in references]
    return table(["measure", "samples", "p50 ms", "p95 ms", "min ms", "max ms"], rows)
