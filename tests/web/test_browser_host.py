"""Host controls end to end in headless Chromium: the creator's host link, the lobby (admit, deny),
remove, host mute, make host, lock and end meeting, each seen from the pages of the people it
affects. Fixtures, helpers and probes: tests/support/browser.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from ..conftest import ServerProcess
from ..support.browser import (
    TILE_COUNT,
    audio_stopped,
    browser,
    join,
    open_room,
    wait_audio_stopped,
    wait_hearing,
    wait_playing,
)

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

XSS_NAME = "<img src=x onerror=alert(1)>"
ENDED_SCREEN = "#ended"
ENDED_TEXT = "#ended-text"
NO_TILES = "() => document.querySelectorAll('[data-participant]').length === 0"


async def ended_with(page: Page, text: str) -> None:
    """The page left the call for good and says why; no tile, no grid."""
    await expect(page.locator(ENDED_TEXT)).to_have_text(text, timeout=15_000)
    await expect(page.locator(ENDED_SCREEN)).to_be_visible()
    await expect(page.locator("#grid")).to_be_hidden()
    await page.wait_for_function(NO_TILES, timeout=5_000)


async def knock_item(host: Page, name: str) -> Locator:
    """The host's lobby entry for ``name`` (matched as text: names are never parsed)."""
    item = host.locator("#lobby-list li").filter(has_text=name)
    await expect(item).to_have_count(1, timeout=15_000)
    return item


def remote_tile(page: Page, name: str) -> Locator:
    return page.locator("[data-participant]:not([data-local])").filter(has_text=name)


async def host_action(page: Page, name: str, action: str) -> None:
    """Open the host menu of ``name``'s tile and click ``action``."""
    tile = remote_tile(page, name)
    await tile.get_by_role("button", name="Host actions").click()
    await tile.get_by_role("button", name=action, exact=True).click()


async def test_host_runs_the_meeting_from_the_browser(
    browser: Browser, server_process: ServerProcess, artifacts: Path
) -> None:
    base = server_process.base_url

    # The creator: landing page, lobby ticked, "Meet now": the host link's token never stays in
    # the address bar.
    host = await open_room(browser, f"{base}/")
    await host.get_by_label("Topic (optional)").fill("Host test")
    await host.get_by_label("Lobby: I let people in").check()
    await host.get_by_role("button", name="Meet now").click()
    await host.wait_for_url("**/r/**")
    assert "#host=" not in host.url and "host=" not in host.url
    assert await host.evaluate("() => location.hash") == ""
    room_url = host.url
    await expect(host.locator("#host-hint")).to_be_visible()
    await join(host, "Hostess")
    await host.wait_for_function(TILE_COUNT, arg=1, timeout=15_000)
    await expect(host.get_by_role("button", name="Lock meeting")).to_be_visible()
    await expect(host.get_by_role("button", name="Lobby on")).to_be_visible()
    await expect(host.locator("[data-local] .tile__badge--host")).to_be_visible()
    assert "#" not in await host.evaluate("() => location.href")

    # A guest opens the plain link and knocks; the host admits them from the lobby panel.
    guest = await open_room(browser, room_url)
    await join(guest, "Guest")
    await expect(guest.get_by_text("Waiting for the host to let you in…")).to_be_visible(
        timeout=15_000
    )
    await expect(guest.locator("#waiting-topic")).to_have_text("Meeting: Host test")
    await expect(guest.get_by_role("button", name="Leave")).to_be_visible()
    await (await knock_item(host, "Guest")).get_by_role("button", name="Admit").click()
    for page in (host, guest):
        await page.wait_for_function(TILE_COUNT, arg=2, timeout=20_000)
        await wait_playing(page, 1)
    await expect(host.locator("#lobby-panel")).to_be_hidden()
    # Hosts carry a badge on every page; guests get no host controls.
    await expect(remote_tile(guest, "Hostess").locator(".tile__badge--host")).to_be_visible()
    await expect(guest.locator("#host-bar")).to_be_hidden()
    await expect(guest.get_by_role("button", name="Host actions")).to_have_count(0)

    # A stranger with an HTML-looking name knocks: shown as text, then turned away.
    stranger = await open_room(browser, room_url)
    await join(stranger, XSS_NAME)
    knock = await knock_item(host, XSS_NAME)
    await expect(knock.locator(".knock__name")).to_have_text(XSS_NAME)
    assert await host.locator("img").count() == 0
    await knock.get_by_role("button", name="Deny").click()
    await ended_with(stranger, "The host did not let you in.")
    await expect(host.locator("#lobby-panel")).to_be_hidden()
    await stranger.context.close()

    # The host turns the lobby off: a third person comes straight in; later gets host rights.
    await host.get_by_role("button", name="Lobby on").click()
    await expect(host.get_by_role("button", name="Lobby off")).to_be_visible(timeout=10_000)
    third = await open_room(browser, room_url)
    await join(third, "Third")
    for page in (host, guest, third):
        await page.wait_for_function(TILE_COUNT, arg=3, timeout=20_000)
    # Host mute, judged by what stops arriving on the other pages: first everyone hears everyone
    # (so "stopped" cannot hold yet); then the guest's audio packets stop while the third's (or the
    # host's) still arrive, and the hearing check no longer hears the guest.
    heard = await asyncio.gather(
        wait_hearing(host, {"Guest", "Third"}), wait_hearing(third, {"Hostess", "Guest"})
    )
    assert not audio_stopped(heard[0], silent="Guest", sending="Third")
    assert not audio_stopped(heard[1], silent="Guest", sending="Hostess")
    await host_action(host, "Guest", "Mute")
    await expect(guest.locator("#mic-button")).to_be_disabled(timeout=10_000)
    await expect(guest.locator("#mic-button")).to_have_text("Muted by host")
    await expect(remote_tile(host, "Guest").locator(".tile__badge--muted")).to_be_visible()
    silenced = await asyncio.gather(
        wait_audio_stopped(host, silent="Guest", sending="Third"),
        wait_audio_stopped(third, silent="Guest", sending="Hostess"),
    )
    assert not any(flows["Guest"].heard for flows in silenced), silenced
    await host_action(host, "Guest", "Allow audio")
    await expect(guest.locator("#mic-button")).to_be_enabled(timeout=10_000)
    await expect(guest.locator("#mic-button")).to_have_text("Mute")
    await asyncio.gather(wait_hearing(host, {"Guest"}), wait_hearing(third, {"Guest"}))

    await host_action(host, "Third", "Make host")
    await expect(third.locator("#host-bar")).to_be_visible(timeout=10_000)
    await expect(remote_tile(guest, "Third").locator(".tile__badge--host")).to_be_visible()

    # Remove: the guest is out, and the same tab cannot come straight back.
    await host_action(host, "Guest", "Remove")
    await ended_with(guest, "The host removed you from this meeting.")
    for page in (host, third):
        await page.wait_for_function(TILE_COUNT, arg=2, timeout=10_000)
    await guest.reload()
    await join(guest, "Guest")
    await ended_with(guest, "The host removed you from this meeting.")
    await guest.context.close()

    # Lock: everyone sees the badge; a newcomer is refused.
    await host.get_by_role("button", name="Lock meeting").click()
    await expect(host.get_by_role("button", name="Unlock meeting")).to_be_visible(timeout=10_000)
    for page in (host, third):
        await expect(page.locator("#locked-badge")).to_be_visible()
    late = await open_room(browser, room_url)
    await join(late, "Late")
    await ended_with(late, "The host has locked this meeting.")
    await late.context.close()
    await host.screenshot(path=str(artifacts / "host-controls.png"))

    # End meeting for all, with a confirm step inside the page; the link then answers 410.
    await host.get_by_role("button", name="End meeting for all").click()
    await host.get_by_role("button", name="End for everyone").click()
    await ended_with(host, "You ended the meeting for everyone.")
    await ended_with(third, "The host ended the meeting for everyone.")
    async with aiohttp.ClientSession() as http, http.get(room_url) as response:
        assert response.status == 410
    # Nothing on the pages ever showed the host token.
    for page in (host, third):
        assert "host=" not in await page.evaluate("() => location.href")
