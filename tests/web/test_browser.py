"""End to end in headless Chromium (Debian's /usr/bin/chromium through Playwright): real pages, fake
camera and microphone, the real server in its own process. Helpers and probes:
tests/support/browser.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from ..conftest import ServerProcess
from ..support.browser import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    TILE_COUNT,
    NetworkLog,
    TileFrames,
    browser,
    first_remote_frame_at,
    ice_servers,
    join,
    open_room,
    playing_now,
    remote_candidate_addresses,
    remote_frames,
    stop_sending_video,
    video_verdict,
    wait_hearing,
    wait_playing,
    watch_videos,
)
from ..support.codec_audit import TRANSCODING_KEYS

# Re-exported: other tests and benchmarks/browser_join.py import them from here.
__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "TILE_COUNT",
    "browser",
    "join",
    "open_room",
    "wait_playing",
]

pytestmark = pytest.mark.browser

# Written out in full, not read from signaling/server.py: a test that compares the header with the
# code that makes it cannot fail.
ROOM_PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
BLOCKED_NOTICE = "Microphone and camera blocked: you can still join, see and hear others."


async def test_three_browsers_call_through_the_link_then_one_leaves(
    browser: Browser, server_process: ServerProcess, artifacts: Path
) -> None:
    room_id = await server_process.create_room("Browser test")
    url = f"{server_process.base_url}/r/{room_id}"
    network = NetworkLog()
    pages = [await open_room(browser, url, network=network) for _ in range(3)]
    names = ["Ada", "Grace", "<img src=x onerror=alert(1)>"]
    for page, name in zip(pages[:2], names[:2], strict=True):
        await join(page, name)
    await wait_playing(pages[0], 1)
    # The third joins an established call: time from the click to its first presented remote frame.
    clicked = await join(pages[2], names[2])
    await pages[2].wait_for_function(
        "() => window.__meetnowTest.firstRemoteFrameAt() !== null", timeout=20_000
    )
    first_frame_ms = (await first_remote_frame_at(pages[2]) or 0.0) - clicked
    for page in pages:
        await wait_playing(page, 2)
        assert await page.locator("[data-participant]").count() == 3
        assert await page.locator("[data-local]").count() == 1
        assert await page.locator("[data-local] video").count() == 1
    # A name that looks like HTML is shown as text, never parsed.
    assert await pages[0].get_by_text(names[2], exact=False).count() >= 1
    assert await pages[0].locator("img[src=x]").count() == 0

    # Five seconds of call: every video keeps presenting frames, everyone hears the two others.
    cpu_before, wall_before = server_process.cpu_seconds(), time.monotonic()
    others = [{name for name in names if name != own} for own in names]
    watching = asyncio.gather(*(watch_videos(page, 5.0) for page in pages))
    hearing = asyncio.gather(
        *(wait_hearing(page, heard) for page, heard in zip(pages, others, strict=True))
    )
    verdicts, _ = await asyncio.gather(watching, hearing)
    relay_cpu = (server_process.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
    for own, heard, check in zip(names, others, verdicts, strict=True):
        assert check.verdicts == dict.fromkeys(heard, "playing"), (own, check)
    await pages[0].screenshot(path=str(artifacts / "three-way-call.png"))

    # The frame check can fail: the third stops sending video. The others see its tile frozen (a
    # snapshot still shows a picture there) while the tile of the one who keeps sending plays.
    await stop_sending_video(pages[2])
    frozen = await asyncio.gather(*(watch_videos(page, 3.0) for page in pages[:2]))
    assert frozen[0].verdicts == {names[1]: "playing", names[2]: "frozen"}, frozen[0]
    assert frozen[1].verdicts == {names[0]: "playing", names[2]: "frozen"}, frozen[1]
    assert not await playing_now(pages[0], 2)  # and so does what wait_playing waits for
    still_sized = [tile for tile in await remote_frames(pages[0]) if tile.name == names[2]]
    assert still_sized[0].video_width > 0  # what the old `videoWidth > 0` check called playing

    await pages[2].get_by_role("button", name="Leave").click()
    for page in pages[:2]:
        await page.wait_for_function(TILE_COUNT, arg=2, timeout=10_000)
        await wait_playing(page, 1)

    # The whole call talked to the server's origin only, with no ICE servers of anyone's.
    assert network.origins() == {server_process.base_url}, sorted(set(network.urls))
    # The log saw the pages and their websockets, so a foreign request would have shown.
    assert network.urls.count(url) == 3
    assert sum(seen.startswith("ws://") for seen in network.urls) >= 3
    assert (await network.settled()).csp_headers == [ROOM_PAGE_CSP] * 3
    joined = [m for m in network.received_messages if m.get("type") == "joined"]
    assert len(joined) == 3 and all(message["ice_servers"] == [] for message in joined), joined
    for page in pages[:2]:
        assert await ice_servers(page) == [[]]
        assert set(await remote_candidate_addresses(page)) == {"127.0.0.1"}

    (artifacts / "browser-call.json").write_text(
        json.dumps({"join_to_first_remote_frame_ms": first_frame_ms, "relay_cpu_cores": relay_cpu})
    )
    print(
        f"\njoin -> first remote frame: {first_frame_ms:.0f} ms; relay CPU: {relay_cpu:.1%} of a core"
    )
    audit = server_process.stop()
    # The browsers' media went through the relay without one decode or encode call.
    assert audit["decoders"] == 0 and audit["encoders"] == 0
    assert {key: audit[key] for key in TRANSCODING_KEYS} == dict.fromkeys(TRANSCODING_KEYS, 0)


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
    await expect(blind.locator('[data-notice="media"] .notice__text')).to_have_text(BLOCKED_NOTICE)
    await join(blind, "NoCamera")
    await blind.wait_for_function(TILE_COUNT, arg=2, timeout=20_000)
    # It still sees and hears the other, and the notice stays up in the call.
    await wait_playing(blind, 1)
    await wait_hearing(blind, {"Camera"})
    await expect(blind.locator('[data-notice="media"] .notice__text')).to_have_text(BLOCKED_NOTICE)
    await seeing.wait_for_function(TILE_COUNT, arg=2, timeout=20_000)


def test_the_frame_check_calls_a_stall_frozen() -> None:
    # The verdict's own test, on made-up frame times (ms): 20 fps is playing; a 2.5 s gap in the
    # middle, a stall in the last 2 s, or 4 fps throughout is frozen.
    def tile(times: list[float]) -> TileFrames:
        return TileFrames("x", times, [1] * len(times), 640)

    steady = [50.0 * i for i in range(101)]  # 0 .. 5000 ms
    assert video_verdict(tile(steady), 0, 5000) == "playing"
    gap = [t for t in steady if not 1500 <= t < 4000]
    assert video_verdict(tile(gap), 0, 5000) == "frozen"
    assert video_verdict(tile([t for t in steady if t < 2900]), 0, 5000) == "frozen"
    assert video_verdict(tile([250.0 * i for i in range(21)]), 0, 5000) == "frozen"
    with pytest.raises(ValueError, match="at least one"):
        video_verdict(tile(steady), 0, 1500)


def test_the_network_log_names_a_foreign_origin() -> None:
    log = NetworkLog()
    log.urls += ["http://127.0.0.1:8000/r/x", "ws://127.0.0.1:8000/ws/x"]
    assert log.origins() == {"http://127.0.0.1:8000"}
    log.urls.append("https://stun.example.net/anything")
    assert log.origins() == {"http://127.0.0.1:8000", "https://stun.example.net"}


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
