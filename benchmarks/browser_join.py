"""Browser: click Join -> first remote video frame, in headless Chromium (Debian's, via Playwright).

A fresh ``meetnow serve`` gets one room. One synthetic participant (``meetnow loadtest -n 1`` in its
own process: pre-encoded 640x480 VP8 and Opus) stays in the room the whole time. Then, ``JOINS``
times: a fresh browser context opens the room page (fake camera and microphone), fills in a name,
clicks Join, and the page itself records ``performance.now()`` at the click and when a remote
``<video>`` presents its first frame (its first ``requestVideoFrameCallback``, from the tests' page
hooks in tests/support/browser.py); the context then closes.
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

# The same browser, flags and page hooks as the end-to-end tests.
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, TEST_HOOKS

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
# An object, not a bare number: a falsy 0 would keep wait_for_function waiting.
FIRST_REMOTE_FRAME = """
() => {
  const at = window.__meetnowTest.firstRemoteFrameAt();
  const clicked = window.__joinClickAt;
  return at !== null && clicked !== undefined ? { ms: at - clicked } : false;
}
"""
# Injected before the page's own scripts: timestamps of each step of a join, on the page clock, to
# show where the time between the click and the first frame goes. It only observes.
TRACE_STEPS = """
(() => {
  const steps = window.__joinSteps = {};
  const mark = (name) => { if (!(name in steps)) steps[name] = performance.now(); };
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('open', () => mark('websocket open'));
    }
    send(data) {
      if (typeof data === 'string' && data.includes('"answer"')) mark('answer sent');
      return super.send(data);
    }
  };
  const NativePeerConnection = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends NativePeerConnection {
    constructor(...args) {
      super(...args);
      mark('joined (peer connection made)');
      this.addEventListener('iceconnectionstatechange', () => {
        if (['connected', 'completed'].includes(this.iceConnectionState)) mark('ICE connected');
      });
      this.addEventListener('connectionstatechange', () => {
        if (this.connectionState === 'connected') mark('DTLS connected');
      });
    }
    setRemoteDescription(description) {
      mark('offer received');
      return super.setRemoteDescription(description);
    }
  };
})();
"""
STEPS = """() => window.__joinSteps || {}"""
STEP_ORDER = (
    "websocket open",
    "joined (peer connection made)",
    "offer received",
    "answer sent",
    "ICE connected",
    "DTLS connected",
)

JOIN_ENABLED = (
    "() => { const b = document.getElementById('join-button'); return !!b && !b.disabled; }"
)


@dataclass
class BrowserResult:
    joins: int
    click_to_frame_ms: list[float] = field(default_factory=list)
    steps_ms: list[dict[str, float]] = field(default_factory=list)
    """Per join: each traced step, ms after the click."""
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
        locale="en-US", permissions=["camera", "microphone"], viewport={"width": 960, "height": 640}
    )
    await context.add_init_script(TRACE_STEPS)
    await context.add_init_script(TEST_HOOKS)
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
        frame_ms = float((await handle.json_value())["ms"])
        result.click_to_frame_ms.append(frame_ms)
        clicked = float(await page.evaluate("() => window.__joinClickAt"))
        steps: dict[str, float] = await page.evaluate(STEPS)
        result.steps_ms.append(
            {**{name: at - clicked for name, at in steps.items()}, "first remote frame": frame_ms}
        )
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
    say(
        "  steps (median ms after click): "
        + ", ".join(f"{n} {a:.0f}" for n, a, _ in step_medians(result))
    )
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


def step_medians(result: BrowserResult) -> list[tuple[str, float, float]]:
    """(step, median ms after the click, median ms since the previous step)."""
    rows = []
    previous = 0.0
    for name in (*STEP_ORDER, "first remote frame"):
        values = [steps[name] for steps in result.steps_ms if name in steps]
        if not values:
            continue
        at = percentile(values, 0.5)
        rows.append((name, at, at - previous))
        previous = at
    return rows


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
    steps = table(
        [
            "step of a join (page clock)",
            "median ms after the click",
            "median ms since previous step",
        ],
        [[name, fmt(at, 0), fmt(delta, 0)] for name, at, delta in step_medians(result)],
    )
    return (
        table(["measure", "samples", "p50 ms", "p95 ms", "min ms", "max ms"], rows) + "\n\n" + steps
    )
