"""Browser: screen share and who is speaking, in headless Chromium (Debian's, via Playwright).

A fresh ``meetnow serve`` gets one room and two Chromium processes join it, each with a fake
microphone playing a WAV made here: speech-like syllables for ``SPEECH_SECONDS``, then silence for
as long, looped by Chromium. The second browser is started half a period after the first, so
the two take turns, as two people in a conversation do.

- **Share**: ``SHARES`` times, A clicks "Share screen"; the time is from the click (A's page) to
  the first presented frame of the ``[data-screen]`` tile at B (B's page, ``requestVideoFrameCallback``);
  then A clicks "Stop sharing" and the tile goes at B before the next share.
- **Speaking**: each page finds its own speech onsets on its microphone (an ``AnalyserNode`` on a
  clone of the track: a level over a threshold after a second of silence); the time is from an
  onset at the speaker's page to ``data-speaking`` appearing on the speaker's tile at the other.
- **Flapping**: every ``speakers`` message each page receives, over the whole speaking window:
  dominant-speaker changes per minute, against the turns actually taken (onsets per minute), and
  the changes that held the floor less than ``FLAP_SECONDS`` (flaps).

Both pages stamp events with ``performance.timeOrigin + performance.now()`` (the machine's wall
clock, the same for both browser processes), so a time from one page to the other is a difference
of two stamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import struct
import tempfile
import wave
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, TEST_HOOKS

from .common import fmt, percentile, running_server, say, table

SHARES = 20
QUICK_SHARES = 5
SPEAK_SECONDS = 60.0
QUICK_SPEAK_SECONDS = 24.0
SMOKE_SPEAK_SECONDS = 8.0
SPEECH_SECONDS = 3.0
"""Each browser speaks this long, then is silent this long."""
FLAP_SECONDS = 1.0
"""A dominant speaker replaced again within this long was a flap."""
TARGET_SHARE_P50_MS = 800.0
TARGET_SPEAKING_P50_MS = 1000.0
TIMEOUT_MS = 20_000
SAMPLE_RATE = 48_000

# Injected before the page's scripts; it only observes. Stamps are wall-clock milliseconds.
RECORDER = """
(() => {
  const stamp = () => performance.timeOrigin + performance.now();
  const log = { speakers: [], marks: [], screenFrames: [], onsets: [], shareClicks: [] };
  Object.defineProperty(window, '__featureLog', { value: log });
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        if (typeof event.data !== 'string' || !event.data.includes('"speakers"')) return;
        const message = JSON.parse(event.data);
        if (message.type === 'speakers') log.speakers.push({ at: stamp(), dominant: message.dominant });
      });
    }
  };
  const watchScreen = (tile) => {
    const video = tile.querySelector('video');
    if (!video || tile.hasAttribute('data-local')) return;
    video.requestVideoFrameCallback(() => log.screenFrames.push(stamp()));
  };
  new MutationObserver((changes) => changes.forEach((change) => {
    if (change.type === 'attributes' && change.oldValue === null) {
      log.marks.push({ at: stamp(), id: change.target.getAttribute('data-participant') });
    }
    change.addedNodes.forEach((node) => {
      if (!(node instanceof Element)) return;
      const tiles = node.matches('[data-screen][data-participant]') ? [node]
        : [...node.querySelectorAll('[data-screen][data-participant]')];
      tiles.forEach(watchScreen);
    });
  })).observe(document, { subtree: true, childList: true, attributes: true,
                          attributeOldValue: true, attributeFilter: ['data-speaking'] });
  document.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target.closest('button') : null;
    if (target && target.textContent.trim() === 'Share screen') log.shareClicks.push(stamp());
  }, { capture: true });
  const nativeGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  let listening = false;
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await nativeGetUserMedia(constraints);
    const track = stream.getAudioTracks()[0];
    if (track && !listening) {
      listening = true;
      const context = new AudioContext();
      const analyser = context.createAnalyser();
      analyser.fftSize = 1024;
      context.createMediaStreamSource(new MediaStream([track.clone()])).connect(analyser);
      const samples = new Float32Array(analyser.fftSize);
      let quietSince = stamp();
      let loud = false;
      setInterval(() => {
        analyser.getFloatTimeDomainData(samples);
        const rms = Math.sqrt(samples.reduce((sum, value) => sum + value * value, 0) / samples.length);
        const now = stamp();
        if (rms > 0.02) {
          if (!loud && now - quietSince > 1000) log.onsets.push(now);
          loud = true;
        } else if (rms < 0.005) {
          if (loud) quietSince = now;
          loud = false;
        }
      }, 10);
    }
    return stream;
  };
})();
"""
LOG = "() => window.__featureLog"
OWN_ID = "() => document.querySelector('[data-local]:not([data-screen])')?.dataset.participant"
SCREEN_TILES = "() => document.querySelectorAll('#grid [data-screen][data-participant]').length"


@dataclass
class FeaturesResult:
    shares: int
    speak_seconds: float
    share_ms: list[float] = field(default_factory=list)
    speaking_ms: list[float] = field(default_factory=list)
    onsets: int = 0
    dominant_changes_per_min: float | None = None
    turns_per_min: float | None = None
    flaps_per_min: float | None = None
    failures: list[str] = field(default_factory=list)


def write_turns_wav(path: Path, seconds: float) -> None:
    """``seconds`` of speech-like syllables (250 ms, 100 ms pauses, pitch gliding 150-300 Hz, so
    noise suppression keeps the level: findings.md), then as much silence."""
    frames = bytearray()
    phase = 0.0
    for index in range(int(2 * seconds * SAMPLE_RATE)):
        at = index / SAMPLE_RATE
        value = 0.0
        if at < seconds:
            in_cycle = at % 0.35
            pitch = 150.0 + 150.0 * (0.5 + 0.5 * math.sin(2 * math.pi * 0.7 * at))
            phase += 2 * math.pi * pitch / SAMPLE_RATE
            envelope = math.sin(math.pi * in_cycle / 0.25) if in_cycle < 0.25 else 0.0
            value = sum(math.sin(phase * k) / k for k in (1, 2, 3, 4)) * 0.35 * envelope
        frames += struct.pack("<h", int(max(-1.0, min(1.0, value)) * 32767))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(bytes(frames))


async def open_participant(browser: Browser, url: str, name: str) -> Page:
    context = await browser.new_context(
        locale="en-US",
        permissions=["camera", "microphone"],
        viewport={"width": 1100, "height": 700},
    )
    await context.add_init_script(TEST_HOOKS)
    await context.add_init_script(RECORDER)
    page = await context.new_page()
    await page.goto(url)
    await page.get_by_label("Your name").fill(name)
    await page.get_by_role("button", name="Join", exact=True).click()
    return page


async def measure_shares(sharer: Page, viewer: Page, shares: int, result: FeaturesResult) -> None:
    share = sharer.get_by_role("button", name="Share screen", exact=True)
    stop = sharer.get_by_role("button", name="Stop sharing", exact=True)
    for index in range(shares):
        try:
            seen = len((await viewer.evaluate(LOG))["screenFrames"])
            await share.click()
            await viewer.wait_for_function(
                f"() => window.__featureLog.screenFrames.length > {seen}", timeout=TIMEOUT_MS
            )
            log_a, log_b = await sharer.evaluate(LOG), await viewer.evaluate(LOG)
            result.share_ms.append(log_b["screenFrames"][-1] - log_a["shareClicks"][-1])
            await stop.click()
            await viewer.wait_for_function(f"() => ({SCREEN_TILES})() === 0", timeout=TIMEOUT_MS)
        except Exception as error:  # a failed share is a figure too, not a crash
            result.failures.append(f"share {index}: {type(error).__name__}: {str(error)[:120]}")
            with contextlib.suppress(Exception):
                await stop.click(timeout=2000)
        await asyncio.sleep(0.3)


def speaking_latencies(onsets: list[float], marks: list[dict[str, Any]], who: str) -> list[float]:
    """For each onset at the speaker's page, the first mark of the speaker's tile at the other
    page from half a second before it (the relay may hear it first) to the next onset."""
    found = []
    for index, onset in enumerate(onsets):
        end = onsets[index + 1] if index + 1 < len(onsets) else math.inf
        times = [m["at"] for m in marks if m["id"] == who and onset - 500 <= m["at"] < end]
        if times:
            found.append(min(times) - onset)
    return found


def flapping(speakers: list[dict[str, Any]], start: float, end: float) -> tuple[int, int]:
    """Dominant-speaker changes in [start, end), and how many of them held under FLAP_SECONDS."""
    changes = []
    current = None
    for message in speakers:
        if message["dominant"] != current:
            current = message["dominant"]
            changes.append(message["at"])
    inside = [at for at in changes if start <= at < end]
    flaps = sum(
        1
        for at, after in pairwise(changes)
        if start <= at < end and after - at < FLAP_SECONDS * 1000
    )
    return len(inside), flaps


async def measure_async(shares: int, speak_seconds: float) -> FeaturesResult:
    result = FeaturesResult(shares, speak_seconds)
    with tempfile.TemporaryDirectory() as scratch, running_server() as server:
        wav = Path(scratch) / "turns.wav"
        write_turns_wav(wav, SPEECH_SECONDS)
        flags = [*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}"]
        room_url = server.create_room("features")
        async with async_playwright() as playwright:
            browsers = []
            try:
                for _ in range(2):
                    browsers.append(
                        await playwright.chromium.launch(
                            executable_path=CHROMIUM, args=flags, headless=True
                        )
                    )
                first = await open_participant(browsers[0], room_url, "bench-a")
                # The second microphone starts about half a period later: the two take turns.
                await first.wait_for_function(
                    "() => window.__featureLog.onsets.length > 0", timeout=TIMEOUT_MS
                )
                await asyncio.sleep(SPEECH_SECONDS - 0.3)
                second = await open_participant(browsers[1], room_url, "bench-b")
                for page in (first, second):
                    await page.wait_for_function(
                        "() => window.__meetnowTest.remotePlaying(1, 10, 2000)", timeout=TIMEOUT_MS
                    )
                await measure_shares(first, second, shares, result)
                await measure_speaking(first, second, speak_seconds, result)
            finally:
                for browser in browsers:
                    with contextlib.suppress(Exception):
                        await browser.close()
    say(describe(result))
    for failure in result.failures:
        say(f"  meeting: {failure}")
    return result


async def measure_speaking(
    first: Page, second: Page, seconds: float, result: FeaturesResult
) -> None:
    ids = [await page.evaluate(OWN_ID) for page in (first, second)]
    start = await first.evaluate("() => performance.timeOrigin + performance.now()")
    await asyncio.sleep(seconds)
    end = start + seconds * 1000
    logs = [await page.evaluate(LOG) for page in (first, second)]
    onsets = [[at for at in log["onsets"] if start <= at < end] for log in logs]
    result.onsets = sum(len(found) for found in onsets)
    result.speaking_ms = speaking_latencies(onsets[0], logs[1]["marks"], ids[0])
    result.speaking_ms += speaking_latencies(onsets[1], logs[0]["marks"], ids[1])
    minutes = seconds / 60
    changes, flaps = flapping(logs[1]["speakers"], start, end)
    result.dominant_changes_per_min = changes / minutes
    result.flaps_per_min = flaps / minutes
    result.turns_per_min = result.onsets / minutes


def measure(shares: int, speak_seconds: float) -> FeaturesResult:
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing (Debian's chromium package)")
    return asyncio.run(measure_async(shares, speak_seconds))


def p(values: list[float], fraction: float) -> float | None:
    return percentile(values, fraction) if values else None


def describe(result: FeaturesResult) -> str:
    share, speak = result.share_ms, result.speaking_ms
    return (
        f"  share clicked -> first screen frame at the other: {len(share)}/{result.shares}, "
        f"p50 {fmt(p(share, 0.5), 0)} ms (target <= {TARGET_SHARE_P50_MS:.0f}), "
        f"p95 {fmt(p(share, 0.95), 0)} ms\n"
        f"  speech onset -> tile marked speaking at the other: {len(speak)} of {result.onsets} "
        f"onsets, p50 {fmt(p(speak, 0.5), 0)} ms (target <= {TARGET_SPEAKING_P50_MS:.0f}), "
        f"p95 {fmt(p(speak, 0.95), 0)} ms\n"
        f"  dominant speaker over {result.speak_seconds:.0f} s of turns: "
        f"{fmt(result.dominant_changes_per_min, 1)} changes/min for "
        f"{fmt(result.turns_per_min, 1)} turns/min, {fmt(result.flaps_per_min, 1)} flaps/min "
        f"(held < {FLAP_SECONDS:.0f} s)"
    )


def markdown(result: FeaturesResult) -> str:
    share, speak = result.share_ms, result.speaking_ms
    rows: list[list[object]] = [
        [
            "Share screen clicked -> first screen frame at the other (target p50 <= 800 ms)",
            f"{len(share)} of {result.shares}",
            fmt(p(share, 0.5), 0),
            fmt(p(share, 0.95), 0),
            fmt(min(share, default=None), 0),
            fmt(max(share, default=None), 0),
        ],
        [
            "speech onset -> tile marked speaking at the other (target p50 <= 1,000 ms)",
            f"{len(speak)} of {result.onsets} onsets",
            fmt(p(speak, 0.5), 0),
            fmt(p(speak, 0.95), 0),
            fmt(min(speak, default=None), 0),
            fmt(max(speak, default=None), 0),
        ],
    ]
    flaps = table(
        ["over the speaking window", "per minute"],
        [
            ["turns taken (speech onsets, both people)", fmt(result.turns_per_min, 1)],
            ["dominant speaker changes (at one page)", fmt(result.dominant_changes_per_min, 1)],
            [f"flaps (a change undone within {FLAP_SECONDS:.0f} s)", fmt(result.flaps_per_min, 1)],
        ],
    )
    return (
        table(["measure", "samples", "p50 ms", "p95 ms", "min ms", "max ms"], rows) + "\n\n" + flaps
    )
