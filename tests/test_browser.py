"""End to end in headless Chromium (Debian's /usr/bin/chromium through Playwright): real pages, fake
camera and microphone, the real server in its own process."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from .conftest import ServerProcess

pytestmark = pytest.mark.browser

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

# A remote tile's video is playing when it has decoded frames and its clock moves. (Functions, not
# expressions: Playwright evaluates expression strings with eval, which our CSP rightly forbids.)
PLAYING_REMOTE_VIDEOS = """
(count) => Array.from(document.querySelectorAll('[data-participant]:not([data-local]) video'))
  .filter(v => v.readyState >= 2 && v.videoWidth > 0 && !v.paused && v.currentTime > 0)
  .length === count
"""
TILE_COUNT = "(count) => document.querySelectorAll('[data-participant]').length === count"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/test.sh"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        yield browser
        await browser.close()


DENY_MEDIA = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
"""


async def open_room(browser: Browser, url: str, *, camera: bool = True) -> Page:
    context = await browser.new_context(
        permissions=["camera", "microphone"] if camera else [],
        viewport={"width": 960, "height": 640},
    )
    if not camera:
        # What a user who clicks "Block" gets: every getUserMedia call is refused.
        await context.add_init_script(DENY_MEDIA)
    page = await context.new_page()
    await page.goto(url)
    return page


async def join(page: Page, name: str) -> float:
    """Fill in the name, click Join; return the click's time on the page clock (ms)."""
    await page.get_by_label("Your name").fill(name)
    started: float = await page.evaluate("() => performance.now()")
    await page.get_by_role("button", name="Join", exact=True).click()
    return started


async def wait_playing(page: Page, count: int, timeout_ms: int = 20_000) -> None:
    await page.wait_for_function(PLAYING_REMOTE_VIDEOS, arg=count, timeout=timeout_ms)


async def test_three_browsers_call_through_the_link_then_one_leaves(
    browser: Browser, server_process: ServerProcess, artifacts: Path
) -> None:
    room_id = await server_process.create_room("Browser test")
    url = f"{server_process.base_url}/r/{room_id}"
    pages = [await open_room(browser, url) for _ in range(3)]
    names = ["Ada", "Grace", "<img src=x onerror=alert(1)>"]
    for page, name in zip(pages[:2], names[:2], strict=True):
        await join(page, name)
    await wait_playing(pages[0], 1)
    # The third joins an established call: time from the click to its first remote frame.
    clicked = await join(pages[2], names[2])
    await pages[2].wait_for_function(
        "() => Array.from(document.querySelectorAll('[data-participant]:not([data-local]) video'))"
        ".some(v => v.readyState >= 2 && v.videoWidth > 0)",
        timeout=20_000,
    )
    first_frame_ms = await pages[2].evaluate("() => performance.now()") - clicked
    for page in pages:
        await wait_playing(page, 2)
        assert await page.locator("[data-participant]").count() == 3
        assert await page.locator("[data-local]").count() == 1
        assert await page.locator("[data-local] video").count() == 1
    # A name that looks like HTML is shown as text, never parsed.
    assert await pages[0].get_by_text(names[2], exact=False).count() >= 1
    assert await pages[0].locator("img[src=x]").count() == 0

    cpu_before, wall_before = server_process.cpu_seconds(), time.monotonic()
    await pages[0].wait_for_timeout(5000)
    relay_cpu = (server_process.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
    await pages[0].screenshot(path=str(artifacts / "three-way-call.png"))
    for page in pages:
        await wait_playing(page, 2)  # still playing after five seconds

    await pages[2].get_by_role("button", name="Leave").click()
    for page in pages[:2]:
        await page.wait_for_function(TILE_COUNT, arg=2, timeout=10_000)
        await wait_playing(page, 1)
    (artifacts / "browser-call.json").write_text(
        json.dumps({"join_to_first_remote_frame_ms": first_frame_ms, "relay_cpu_cores": relay_cpu})
    )
    print(
        f"\njoin -> first remote frame: {first_frame_ms:.0f} ms; relay CPU: {relay_cpu:.1%} of a core"
    )
    audit = server_process.stop()
    assert audit["decoders"] == 0 and audit["encoders"] == 0


async def test_denied_camera_still_joins_with_what_it_has(
    browser: Browser, server_process_with_workers: ServerProcess
) -> None:
    # Through the default deployment: media relayed by a worker process.
    server = server_process_with_workers
    room_id = await server.create_room()
    url = f"{server.base_url}/r/{room_id}"
    seeing = await open_room(browser, url)
    await join(seeing, "Camera")
    # No permissions granted and getUserMedia refused: the page must say so and still join.
    blind = await open_room(browser, url, camera=False)
    await join(blind, "NoCamera")
    await blind.wait_for_function(TILE_COUNT, arg=2, timeout=20_000)
    await wait_playing(blind, 1)  # it still sees and hears the other
    text = await blind.locator("body").inner_text()
    assert "camera" in text.lower() or "microphone" in text.lower()
    await seeing.wait_for_function(TILE_COUNT, arg=2, timeout=20_000)


def child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()]


async def test_a_lost_connection_reconnects_without_a_ghost_tile(
    browser: Browser, server_process_with_workers: ServerProcess
) -> None:
    # Kill the relay workers under a running call: the server closes the affected sockets
    # (1011), the pages reconnect on their own with new peer connections, and each grid holds
    # exactly the two people again, with video playing.
    server = server_process_with_workers
    room_id = await server.create_room()
    url = f"{server.base_url}/r/{room_id}"
    pages = [await open_room(browser, url) for _ in range(2)]
    for page, name in zip(pages, ["Ada", "Grace"], strict=True):
        await join(page, name)
    for page in pages:
        await wait_playing(page, 1)
    before = [
        await page.locator("[data-local]").get_attribute("data-participant") for page in pages
    ]
    workers = child_pids(server.process.pid)
    assert len(workers) == 2
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    for page, old_id in zip(pages, before, strict=True):
        # A new participant id after the rejoin, and still exactly two tiles: no ghost.
        await page.wait_for_function(
            "(old) => { const t = document.querySelector('[data-local]');"
            " return t !== null && t.getAttribute('data-participant') !== old; }",
            arg=old_id,
            timeout=20_000,
        )
    for page in pages:
        await wait_playing(page, 1)
        await page.wait_for_function(TILE_COUNT, arg=2, timeout=10_000)
    assert sorted(child_pids(server.process.pid)) != sorted(workers)  # workers came back
