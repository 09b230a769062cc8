"""The pages in French for a French browser, in English for an English one, in headless Chromium
against the real server: the landing page, the pre-join screen ("Votre nom", "Rejoindre"), the
call's buttons and the 404 page, each with ``<html lang>`` set (web_client/js/i18n.js); a notice
from the device modules in French; English when the French catalog cannot be fetched, and readable
words (each key's last segment) when no catalog can."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from ..conftest import ServerProcess
from ..support.browser import DENY_MEDIA, TEST_HOOKS, browser

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser


async def new_context(browser: Browser, locale: str) -> BrowserContext:
    context = await browser.new_context(
        locale=locale,
        permissions=["camera", "microphone"],
        viewport={"width": 960, "height": 640},
    )
    await context.add_init_script(TEST_HOOKS)
    return context


async def start_meeting(page: Page, base_url: str, create_button: str) -> None:
    """From the landing page, start a meeting with its button: the page becomes the room's."""
    await page.goto(base_url + "/")
    await page.get_by_role("button", name=create_button, exact=True).click()
    await page.wait_for_url("**/r/**")


async def test_a_french_browser_sees_french_pages(
    browser: Browser, server_process: ServerProcess
) -> None:
    base = server_process.base_url
    context = await new_context(browser, "fr-FR")
    page = await context.new_page()
    await page.goto(base + "/")
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await expect(page.get_by_label("Sujet (facultatif)")).to_be_visible()

    await start_meeting(page, base, "Réunion immédiate")
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await expect(page.get_by_role("heading", name="Prêt à rejoindre ?")).to_be_visible()
    await page.get_by_label("Votre nom", exact=True).fill("Camille")
    await page.get_by_role("button", name="Rejoindre", exact=True).click()

    for name in ("Partager l'écran", "Vue intervenant", "Lever la main", "Participants", "Quitter"):
        await expect(page.get_by_role("button", name=name, exact=True)).to_be_visible(
            timeout=20_000
        )
    await expect(page.get_by_role("button", name="Discussion", exact=True)).to_be_visible()
    await page.get_by_role("button", name="Vue intervenant", exact=True).click()
    await expect(page.get_by_role("button", name="Vue grille", exact=True)).to_be_visible()

    await page.goto(base + "/r/no-such-meeting-here")
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await expect(page.get_by_role("heading", name="Cette réunion est introuvable")).to_be_visible()
    await expect(page).to_have_title("Réunion introuvable · meetnow")
    await context.close()


async def test_an_english_browser_sees_the_english_names(
    browser: Browser, server_process: ServerProcess
) -> None:
    base = server_process.base_url
    context = await new_context(browser, "en-US")
    page = await context.new_page()
    await start_meeting(page, base, "Meet now")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await page.get_by_label("Your name", exact=True).fill("Alex")
    await page.get_by_role("button", name="Join", exact=True).click()
    for name in ("Share screen", "Raise hand", "Participants", "Chat", "Leave"):
        await expect(page.get_by_role("button", name=name, exact=True)).to_be_visible(
            timeout=20_000
        )
    await page.goto(base + "/r/no-such-meeting-here")
    await expect(page.get_by_role("heading", name="Meeting not found")).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await context.close()


async def test_a_language_without_a_catalog_falls_back_to_english(
    browser: Browser, server_process: ServerProcess
) -> None:
    """A German browser (no de.json): English words, ``lang="en"``, not the catalog keys."""
    context = await new_context(browser, "de-DE")
    page = await context.new_page()
    await page.goto(server_process.base_url + "/")
    await expect(page.get_by_role("button", name="Meet now", exact=True)).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await context.close()


async def test_a_french_browser_is_told_about_blocked_devices_in_french(
    browser: Browser, server_process: ServerProcess
) -> None:
    """The media notice (media.js) comes from the catalog too."""
    context = await new_context(browser, "fr-FR")
    await context.add_init_script(DENY_MEDIA)
    page = await context.new_page()
    await start_meeting(page, server_process.base_url, "Réunion immédiate")
    await expect(
        page.get_by_text(
            "Micro et caméra bloqués : vous pouvez quand même rejoindre l'appel, voir et entendre "
            "les autres.",
            exact=True,
        )
    ).to_be_visible(timeout=20_000)
    await context.close()


async def test_a_french_catalog_that_fails_to_load_gives_english(
    browser: Browser, server_process: ServerProcess
) -> None:
    context = await new_context(browser, "fr-FR")
    await context.route("**/i18n/fr.json", lambda route: route.abort())
    page = await context.new_page()
    await page.goto(server_process.base_url + "/")
    await expect(page.get_by_role("button", name="Meet now", exact=True)).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await context.close()


async def test_no_catalog_at_all_still_names_the_buttons(
    browser: Browser, server_process: ServerProcess
) -> None:
    """Every catalog refused: each key's last segment, made readable ("Join" for
    ``page.prejoin.join``), never a dotted key, and the root marked ``data-i18n-missing``."""
    context = await new_context(browser, "fr-FR")
    await context.route("**/i18n/*.json", lambda route: route.fulfill(status=503, body=""))
    page = await context.new_page()
    await page.goto(server_process.base_url + "/")
    await expect(page.locator("html")).to_have_attribute("data-i18n-missing", "")
    await expect(page.get_by_role("button", name="Create", exact=True)).to_be_visible()
    await page.get_by_role("button", name="Create", exact=True).click()
    await page.wait_for_url("**/r/**")
    await expect(page.get_by_role("button", name="Join", exact=True)).to_be_visible()
    assert "page." not in await page.locator("body").inner_text()
    await context.close()
