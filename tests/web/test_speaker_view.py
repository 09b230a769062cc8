"""Who is speaking, end to end in headless Chromium (issue 14, item 2): one browser's fake
microphone plays speech-like syllables (a WAV made here), the other's plays silence; the relay
reads their audio levels and names the speakers. The speaker's tile is marked `data-speaking` at
both pages, the silent one's never is; speaker view shows the speaker large; talking while muted
shows "You are muted". Helpers: tests/support/browser.py."""

from __future__ import annotations

import math
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from ..conftest import ServerProcess
from ..support.browser import CHROMIUM, CHROMIUM_FLAGS, TEST_HOOKS, NetworkLog, join, wait_playing

pytestmark = pytest.mark.browser

SAMPLE_RATE = 48_000
MUTED_NOTICE = "You are muted"
OWN_ID = "() => document.querySelector('[data-local]:not([data-screen])')?.dataset.participant"
# Every participant id whose tile was ever marked speaking on this page, recorded from the start
# (an init script: a mark that came and went between two polls is not missed).
RECORD_SPEAKING = """(() => {
  const marked = new Set();
  const record = (element) => marked.add(element.getAttribute('data-participant') ?? '');
  new MutationObserver((changes) => changes.forEach((change) => {
    // The attribute was added (it had no old value), even if it went again before this runs.
    if (change.type === 'attributes' && change.oldValue === null) record(change.target);
    // A tile that enters the page already marked.
    change.addedNodes.forEach((node) => {
      if (node instanceof Element && node.hasAttribute('data-speaking')) record(node);
    });
  })).observe(document, { subtree: true, childList: true, attributes: true,
                          attributeOldValue: true, attributeFilter: ['data-speaking'] });
  Object.defineProperty(window, '__everSpeaking', { value: () => [...marked] });
})();"""
EVER_SPEAKING = "() => window.__everSpeaking()"
TILE_AREA = """(id) => {
  const tile = document.querySelector(`.tile[data-participant='${id}']:not([data-screen])`);
  const box = tile.getBoundingClientRect();
  return box.width * box.height;
}"""


def write_speech_wav(path: Path, seconds: float = 4.0) -> None:
    """Speech-like sound (findings.md, "Fake microphone for speaker tests"): 250 ms syllables
    with 100 ms pauses, the pitch gliding 150-300 Hz, so noise suppression keeps its level."""
    frames = bytearray()
    phase = 0.0
    for index in range(int(seconds * SAMPLE_RATE)):
        at = index / SAMPLE_RATE
        in_cycle = at % 0.35
        pitch = 150.0 + 150.0 * (0.5 + 0.5 * math.sin(2 * math.pi * 0.7 * at))
        phase += 2 * math.pi * pitch / SAMPLE_RATE
        envelope = math.sin(math.pi * in_cycle / 0.25) if in_cycle < 0.25 else 0.0
        # A few harmonics, as a voice has.
        value = sum(math.sin(phase * k) / k for k in (1, 2, 3, 4)) * 0.35 * envelope
        frames += struct.pack("<h", int(max(-1.0, min(1.0, value)) * 32767))
    write_wav(path, bytes(frames))


def write_silence_wav(path: Path, seconds: float = 2.0) -> None:
    write_wav(path, bytes(2 * int(seconds * SAMPLE_RATE)))


def write_wav(path: Path, frames: bytes) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(frames)


@pytest.fixture
async def talker_and_silent(tmp_path: Path) -> AsyncIterator[tuple[Browser, Browser]]:
    """Two browsers (the fake microphone's file is per browser): one talks, one is silent."""
    speech, silence = tmp_path / "speech.wav", tmp_path / "silence.wav"
    write_speech_wav(speech)
    write_silence_wav(silence)
    async with async_playwright() as playwright:
        browsers = []
        for wav in (speech, silence):
            browsers.append(
                await playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}"],
                    headless=True,
                )
            )
        yield browsers[0], browsers[1]
        for launched in browsers:
            await launched.close()


async def own_id(page: Page) -> str:
    await page.wait_for_function(f"() => Boolean(({OWN_ID})())", timeout=20_000)
    participant: str = await page.evaluate(OWN_ID)
    return participant


async def ever_speaking(page: Page) -> set[str]:
    marked: list[str] = await page.evaluate(EVER_SPEAKING)
    return set(marked)


def named_speaking(messages: list[dict[str, Any]]) -> set[str]:
    """Everyone any received ``speakers`` message named as speaking."""
    return {
        participant
        for message in messages
        if message.get("type") == "speakers"
        for participant in message.get("speaking") or []
    }


async def speaking_mark(page: Page, participant_id: str) -> None:
    await expect(
        page.locator(f".tile[data-participant='{participant_id}']:not([data-screen])")
    ).to_have_attribute("data-speaking", "", timeout=20_000)


async def test_the_speaker_is_marked_and_shown_large_and_hears_that_they_are_muted(
    talker_and_silent: tuple[Browser, Browser], server_process: ServerProcess
) -> None:
    talker_browser, silent_browser = talker_and_silent
    room_id = await server_process.create_room()
    url = f"{server_process.base_url}/r/{room_id}"
    network = NetworkLog()
    pages: list[Page] = []
    for launched in (talker_browser, silent_browser):
        context = await launched.new_context(
            locale="en-US",
            permissions=["camera", "microphone"],
            viewport={"width": 960, "height": 640},
        )
        await context.add_init_script(TEST_HOOKS)
        await context.add_init_script(RECORD_SPEAKING)
        network.watch(context)
        page = await context.new_page()
        await page.goto(url)
        pages.append(page)
    ada, grace = pages
    await join(ada, "Ada")
    await join(grace, "Grace")
    await wait_playing(ada, 1)
    await wait_playing(grace, 1)
    ada_id, grace_id = await own_id(ada), await own_id(grace)

    # Ada's tile is marked at Grace's page, and at her own.
    await speaking_mark(grace, ada_id)
    await speaking_mark(ada, ada_id)
    # Speaking, not muted: no "You are muted".
    await expect(ada.get_by_text(MUTED_NOTICE)).to_have_count(0)

    # Grid view first: the two tiles share the grid.
    assert await grace.evaluate(TILE_AREA, ada_id) < 2 * await grace.evaluate(TILE_AREA, grace_id)
    await grace.get_by_role("button", name="Speaker view", exact=True).click()
    await expect(grace.get_by_role("button", name="Grid view", exact=True)).to_be_visible()
    await expect(grace.locator("#grid")).to_have_attribute("data-layout", "stage")
    ada_large = await grace.evaluate(TILE_AREA, ada_id)
    grace_small = await grace.evaluate(TILE_AREA, grace_id)
    assert ada_large > 4 * grace_small, (ada_large, grace_small)
    await grace.get_by_role("button", name="Grid view", exact=True).click()
    await expect(grace.locator("#grid")).not_to_have_attribute("data-layout", "stage")

    # Ada mutes and keeps talking.
    await ada.get_by_role("button", name="Mute", exact=True).click()
    await expect(ada.get_by_text(MUTED_NOTICE)).to_be_visible(timeout=10_000)
    await ada.get_by_role("button", name="Unmute", exact=True).click()
    await expect(ada.get_by_text(MUTED_NOTICE)).to_have_count(0)

    # Grace never spoke: her tile was never marked, on either page, and no speakers message
    # named her. Barrier: both pages saw Ada marked, through the same recorder.
    await network.settled()
    assert ada_id in named_speaking(network.received_messages)
    assert grace_id not in named_speaking(network.received_messages)
    for page in (ada, grace):
        marked = await ever_speaking(page)
        assert ada_id in marked and grace_id not in marked, marked


async def test_the_speaking_recorder_sees_a_mark(browser_for_recorder: Page) -> None:
    """Test of the test: a tile marked speaking for an instant is recorded, as is one that
    enters the page marked, and the message check names whoever a speakers message names."""
    page = browser_for_recorder
    await page.evaluate(
        "() => { const t = document.createElement('div'); t.className = 'tile';"
        " t.setAttribute('data-participant', 'x'); document.body.append(t);"
        " t.setAttribute('data-speaking', ''); t.removeAttribute('data-speaking');"
        " const u = document.createElement('div'); u.setAttribute('data-participant', 'y');"
        " u.setAttribute('data-speaking', ''); document.body.append(u); }"
    )
    await page.wait_for_function(
        "() => ['x', 'y'].every((id) => window.__everSpeaking().includes(id))", timeout=5_000
    )
    assert set(await page.evaluate(EVER_SPEAKING)) == {"x", "y"}
    assert named_speaking([{"type": "speakers", "dominant": None, "speaking": ["x"]}]) == {"x"}
    assert named_speaking([{"type": "offer", "speaking": ["x"]}]) == set()


@pytest.fixture
async def browser_for_recorder(server_process: ServerProcess) -> AsyncIterator[Page]:
    room_id = await server_process.create_room()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        context = await launched.new_context(locale="en-US")
        await context.add_init_script(RECORD_SPEAKING)
        page = await context.new_page()
        await page.goto(f"{server_process.base_url}/r/{room_id}")
        yield page
        await launched.close()
