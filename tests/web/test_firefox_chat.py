"""Chat and raised hands in a mixed call: headless Firefox (Debian's firefox-esr over WebDriver
BiDi, tests/support/firefox.py) and headless Chromium (Playwright) in one room of the real server
write to each other and raise hands both ways; each sees the other's words as text, with the
sender's name, and the other's hand on its tile in the right order."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from ..conftest import ServerProcess
from ..support.browser import TILE_COUNT, browser, join, open_room
from ..support.firefox import FirefoxPage, launch_firefox
from .talk_support import (
    HANDS_ON_TILES,
    SHOWN_MESSAGES,
    assert_shown_as_text,
    message_with,
    open_chat,
    send_chat,
    wait_message,
)

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

FROM_FIREFOX = "<b>from Firefox</b> https://example.org/fx"
FROM_CHROMIUM = "<i>from Chromium</i>"
SHOWS_TEXT = (
    "(text) => Array.from(document.querySelectorAll('#chat-panel .chat-message__text'))"
    ".some((p) => p.textContent === text)"
)
HANDS_ARE = (
    "(expected) => JSON.stringify(Object.entries((" + HANDS_ON_TILES + ")()).sort())"
    " === JSON.stringify(Object.entries(expected).sort())"
)


async def firefox_joins(page: FirefoxPage, name: str) -> None:
    """Type the name and click Join, as a user would on the pre-join screen."""
    await page.wait_for("() => document.querySelector('#join-button') !== null")
    await page.fill("Your name", name)
    await page.click_button("Join")


async def firefox_sends(page: FirefoxPage, text: str) -> None:
    """Type in the Message field and click Send (the form's submit, as Enter is)."""
    await page.fill("Message", text)
    await page.click_button("Send")


async def test_firefox_and_chromium_chat_and_raise_hands_both_ways(
    browser: Browser, server_process: ServerProcess
) -> None:
    room_id = await server_process.create_room("Mixed chat")
    url = f"{server_process.base_url}/r/{room_id}"
    ada = await open_room(browser, url)
    await join(ada, "Ada")
    async with launch_firefox() as fox:
        grace = await fox.new_page(url)
        await firefox_joins(grace, "Grace")
        await grace.wait_for(TILE_COUNT, 2, timeout_s=30.0)
        await ada.wait_for_function(TILE_COUNT, arg=2, timeout=30_000)

        # Firefox writes; Chromium counts it unread, then shows it as text with Grace's name.
        await grace.click_button("Chat")
        await firefox_sends(grace, FROM_FIREFOX)
        await expect(ada.get_by_role("button", name="Chat, 1 unread", exact=True)).to_be_visible(
            timeout=15_000
        )
        await open_chat(ada)
        shown = await wait_message(ada, FROM_FIREFOX)
        assert shown["name"] == "Grace"
        assert shown["elements"] == ["a"] and shown["links"][0]["href"] == "https://example.org/fx"

        # Chromium answers; Firefox shows it as text with Ada's name.
        await send_chat(ada, FROM_CHROMIUM)
        await grace.wait_for(SHOWS_TEXT, FROM_CHROMIUM)
        answer = message_with(await grace.call(SHOWN_MESSAGES), FROM_CHROMIUM)
        assert answer["name"] == "Ada"
        assert_shown_as_text(answer, FROM_CHROMIUM)

        # Hands both ways: Grace first, then Ada; each page shows both, in that order.
        await grace.click_button("Raise hand")
        await ada.wait_for_function(HANDS_ARE, arg={"Grace": ["1", "✋ 1"]}, timeout=15_000)
        await ada.get_by_role("button", name="Raise hand", exact=True).click()
        both = {"Grace (you)": ["1", "✋ 1"], "Ada": ["2", "✋ 2"]}
        await grace.wait_for(HANDS_ARE, both)
        await ada.wait_for_function(
            HANDS_ARE, arg={"Grace": ["1", "✋ 1"], "Ada (you)": ["2", "✋ 2"]}, timeout=15_000
        )
        await grace.click_button("Lower hand")
        await grace.wait_for(HANDS_ARE, {"Ada": ["1", "✋ 1"]})
        await ada.wait_for_function(HANDS_ARE, arg={"Ada (you)": ["1", "✋ 1"]}, timeout=15_000)
