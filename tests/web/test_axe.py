"""axe-core on every screen of the web client, in headless Chromium against the real server: the
landing page, pre-join, the lobby (a guest waiting, and the host's knock), the call as host and as
guest with the chat and participant panels open, and the left and ended screens. None may have a
violation of serious or critical impact. axe's source (npm axe-core 4.x, installed by
scripts/test.sh) is evaluated in each page, as the CSP blocks script tags.

Each language's pages are checked (a browser whose language is en-US, then fr-FR): a third
catalog in web_client/i18n joins ``LANGUAGES``. Helpers: tests/web/a11y_support.py."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from ..conftest import ServerProcess
from ..support.browser import browser
from .a11y_support import (
    assert_axe_clean,
    axe_violations,
    blocking,
    create_room,
    join_by_id,
    open_page,
    wait_tiles,
)

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

LANGUAGES = ["en", "fr"]
"""The languages whose pages are checked (each a catalog in web_client/i18n)."""

PREJOIN_READY = (
    "() => !document.querySelector('#join-button').disabled"
    " && !document.querySelector('#prejoin-mic').disabled"
)
"""The pre-join screen once the camera and microphone are open (the toggles enabled)."""


async def open_panels(page: Page) -> None:
    """Open the chat and the participant list, as the audit had them."""
    await page.locator("#chat-button").click()
    await expect(page.locator("#chat-panel")).to_be_visible()
    await page.locator("#participants-button").click()
    await expect(page.locator("#participants-panel")).to_be_visible()


@pytest.mark.parametrize("language", LANGUAGES)
async def test_no_serious_axe_violation_on_any_screen(
    browser: Browser, server_process: ServerProcess, language: str
) -> None:
    host = await open_page(browser, f"{server_process.base_url}/", language=language)
    await assert_axe_clean(host, f"the landing page ({language})")
    room_url = await create_room(host, lobby=True)
    await host.wait_for_function(PREJOIN_READY, timeout=15_000)
    await assert_axe_clean(host, f"pre-join ({language})")
    await join_by_id(host, "Hostess")
    await wait_tiles(host, 1)

    guest = await open_page(browser, room_url, language=language)
    await guest.wait_for_function(PREJOIN_READY, timeout=15_000)
    await join_by_id(guest, "Guest")
    await expect(guest.locator("#waiting")).to_be_visible(timeout=15_000)
    await assert_axe_clean(guest, f"the lobby, waiting ({language})")
    knock = host.locator("#lobby-list li")
    await expect(knock).to_have_count(1, timeout=15_000)
    await assert_axe_clean(host, f"the call with a knock, host ({language})")
    await knock.locator(".button--primary").click()
    for page in (host, guest):
        await wait_tiles(page, 2)

    # The call with both panels open, a message, a raised hand and a host-muted guest shown.
    for page in (host, guest):
        await open_panels(page)
    field = host.locator("#chat-panel textarea")
    await field.fill("Hello, https://example.org")
    await field.press("Enter")
    await expect(guest.locator("#chat-panel .chat-message")).to_have_count(1, timeout=15_000)
    await guest.locator("#hand-button").click()
    await expect(host.locator("[data-hand-raised]").first).to_be_visible(timeout=15_000)
    await (
        host.locator("#participants-panel .person")
        .filter(has_text="Guest")
        .locator("[data-action='mute']")
        .click()
    )
    await expect(guest.locator("#mic-button")).to_be_disabled(timeout=15_000)
    await assert_axe_clean(host, f"the call, host, panels open ({language})")
    await assert_axe_clean(guest, f"the call, guest, panels open ({language})")

    await guest.locator("#leave-button").click()
    await expect(guest.locator("#left")).to_be_visible()
    await assert_axe_clean(guest, f"left the meeting ({language})")
    await host.locator("#end-button").click()
    await host.locator("#end-confirm-button").click()
    await expect(host.locator("#ended")).to_be_visible(timeout=15_000)
    await assert_axe_clean(host, f"the meeting ended ({language})")


PLANT = """() => {
  const nameless = document.createElement('button');
  nameless.id = 'planted-nameless';
  const faint = document.createElement('p');
  faint.id = 'planted-faint';
  faint.textContent = 'Hard to read';
  Object.assign(faint.style, { color: '#fff', background: '#e5534b', fontSize: '14px' });
  document.body.append(nameless, faint);
}"""


async def test_axe_reports_planted_violations(
    browser: Browser, server_process: ServerProcess
) -> None:
    """Test of the test: on the real landing page (its CSP in force), a button with no name and
    white text on the old Leave red (#e5534b, 3.7:1) are reported as critical and serious, with their targets, and fail the
    check."""
    page = await open_page(browser, f"{server_process.base_url}/")
    await page.evaluate(PLANT)
    found = {violation.id: violation for violation in blocking(await axe_violations(page))}
    assert "button-name" in found and found["button-name"].impact == "critical", found
    assert found["button-name"].targets == ["#planted-nameless"], found
    assert "color-contrast" in found and found["color-contrast"].impact == "serious", found
    assert "#planted-faint" in found["color-contrast"].targets, found
    with pytest.raises(AssertionError, match=r"button-name .*#planted-nameless"):
        await assert_axe_clean(page, "the planted page")
