"""The pre-join network check in headless Chromium against the real ``meetnow serve``: the line under
the preview says ``direct`` on loopback, ``turn`` when media may only go through Debian's coturn
(``MEETNOW_ICE_TRANSPORT_POLICY=relay``), and ``unreachable``, with what to do, when the relay
announces an address the page cannot reach and the relay may not reach the page either."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from ..server.test_deploy import create_room
from ..support.browser import browser, open_room
from ..support.coturn import run_coturn
from ..support.serve_process import ServeProcess, meetnow_serve

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

RESULT_TIMEOUT_MS = 30_000
"""The check decides within about 5 s of the offer; generous for a loaded machine."""

CHECK_RESULT = """() => {
  const line = document.getElementById('network-check');
  return line && line.dataset.network !== 'checking' ? line.dataset.network : null;
}"""

RUN_CHECK = """async (roomId) => {
  const module = await import('/static/js/netcheck.js');
  return module.runNetworkCheck(roomId);
}"""
"""The page's own netcheck.js, run once more: its whole result (the DOM shows the verdict only)."""


async def network_result(page: Page) -> tuple[str, str]:
    """Wait for the check's verdict at load: ``data-network`` and the words shown."""
    handle = await page.wait_for_function(CHECK_RESULT, timeout=RESULT_TIMEOUT_MS)
    result: str = await handle.json_value()
    text = await page.locator("#network-check-text").inner_text()
    return result, text


async def check_in_page(server: ServeProcess, browser: Browser) -> tuple[Page, str]:
    room_id = await create_room(server.base_url)
    page = await open_room(browser, f"{server.base_url}/r/{room_id}")
    return page, room_id


async def test_loopback_is_direct_and_join_is_never_blocked(
    browser: Browser, tmp_path: Path
) -> None:
    with meetnow_serve(tmp_path) as server:
        page, _ = await check_in_page(server, browser)
        # Join is there to click while the check runs.
        assert await page.get_by_role("button", name="Join", exact=True).is_enabled()
        result, text = await network_result(page)
        assert result == "direct", text
        assert "directly" in text
        assert await page.locator("#network-check").get_attribute("data-candidate") in (
            "host",
            "prflx",
            "srflx",
        )
        # "Check again" runs it again, through "checking", to the same verdict.
        await page.get_by_role("button", name="Check again").click()
        assert await page.locator("#network-check").get_attribute("data-network") == "checking"
        result, _ = await network_result(page)
        assert result == "direct"


async def test_turn_only_shows_turn_from_the_selected_pair(
    browser: Browser, tmp_path: Path
) -> None:
    (tmp_path / "coturn").mkdir()
    (tmp_path / "serve").mkdir()
    with (
        run_coturn(tmp_path / "coturn") as coturn,
        meetnow_serve(
            tmp_path / "serve",
            MEETNOW_ICE_TRANSPORT_POLICY="relay",
            MEETNOW_TURN_URLS=coturn.url,
            MEETNOW_TURN_SECRET=coturn.secret,
        ) as server,
    ):
        page, room_id = await check_in_page(server, browser)
        result, text = await network_result(page)
        assert result == "turn", text
        assert "TURN" in text
        assert await page.locator("#network-check").get_attribute("data-candidate") == "relay"
        again: dict[str, Any] = await page.evaluate(RUN_CHECK, room_id)
        allocations = coturn.allocations()
    assert again["result"] == "turn" and again["localCandidateType"] == "relay", again
    assert allocations >= 1, coturn.log()


async def test_an_unreachable_relay_says_so_and_what_to_do(
    browser: Browser, tmp_path: Path
) -> None:
    # The relay announces 127.0.0.2 (a wrong MEETNOW_ICE_PUBLIC_ADDRESS: nothing listens there),
    # and may not send to the page's own addresses (every candidate of a browser on this machine
    # is one), as a relay cannot reach a browser behind NAT: no path either way.
    with meetnow_serve(
        tmp_path, MEETNOW_ICE_PUBLIC_ADDRESS="127.0.0.2", MEETNOW_ICE_LOOPBACK_PEERS="false"
    ) as server:
        page, _ = await check_in_page(server, browser)
        result, text = await network_result(page)
    assert result == "unreachable", text
    for advice in ("another network", "UDP", "MEETNOW_TURN_"):
        assert advice in text
