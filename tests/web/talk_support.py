"""Helpers shared by the chat, hands and participant-list browser tests: the page probes (function
strings, run with ``page.evaluate`` in Chromium or ``FirefoxPage.call`` in Firefox) and the checks
on what they return, each proved able to fail by the tests' tests of the test."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from playwright.async_api import Browser, Locator, Page, expect

from ..support.browser import TILE_COUNT, TileFrames, join, open_room, page_now, remote_frames

SHOWN_MESSAGES = """() => Array.from(document.querySelectorAll('#chat-panel .chat-message'), (item) => ({
  name: item.querySelector('.chat-message__name')?.textContent ?? '',
  time: item.querySelector('.chat-message__time')?.textContent ?? '',
  datetime: item.querySelector('.chat-message__time')?.getAttribute('datetime') ?? '',
  text: item.querySelector('.chat-message__text')?.textContent ?? '',
  elements: Array.from(item.querySelector('.chat-message__text')?.querySelectorAll('*') ?? [],
    (element) => element.tagName.toLowerCase()),
  links: Array.from(item.querySelectorAll('.chat-message__text a'), (a) => ({
    href: a.getAttribute('href'), rel: a.getAttribute('rel'), target: a.getAttribute('target'),
    text: a.textContent })),
}))"""
"""Every message the chat panel shows: its sender, time, text, the elements inside its text and
its links, read from the DOM (never from the page's own state)."""

HANDS_ON_TILES = """() => Object.fromEntries(Array.from(
  document.querySelectorAll('[data-participant]:not([data-screen])[data-hand-raised]'),
  (tile) => [tile.querySelector('.tile__name')?.textContent ?? '',
             [tile.getAttribute('data-hand-raised'),
              tile.querySelector('.tile__badge--hand')?.textContent ?? '']]))"""
"""Name -> [data-hand-raised, the badge's text] for every tile with a raised hand."""

PEOPLE_ROWS = """() => Array.from(document.querySelectorAll('#participants-panel .people-list .person:not(.person--knock)'),
  (row) => ({
    name: row.querySelector('.person__name')?.textContent ?? '',
    hand: row.getAttribute('data-hand-raised'),
    badges: Array.from(row.querySelectorAll('.person__badges > *'),
      (badge) => badge.getAttribute('aria-label') ?? badge.textContent),
    actions: Array.from(row.querySelectorAll('.person__actions button'), (b) => b.textContent),
  }))"""
"""The participant list's rows, in order: name, hand order, badges and host actions."""


ADVANCING_WINDOW_MS = 1500.0
"""A video keeps advancing while every window this long (sliding by 50 ms) holds a new frame.
Looser than ``browser.video_verdict``'s "playing" (10 frames in every 2 s), which a loaded 2-core
machine misses now and then with no flood at all (measured: 3-6 fps for seconds); what a flood
could do to a call, close it (1008) and reconnect, stops the frames for longer than this."""


def advancing(tile: TileFrames, start: float, end: float) -> bool:
    """Whether ``tile`` presented a new frame in every ``ADVANCING_WINDOW_MS`` window between
    ``start`` and ``end`` (page clock, ms)."""
    if end - start < ADVANCING_WINDOW_MS:
        raise ValueError("a check must span at least one window")
    window_start = start
    while window_start + ADVANCING_WINDOW_MS <= end:
        if not any(window_start <= at < window_start + ADVANCING_WINDOW_MS for at in tile.times):
            return False
        window_start += 50.0
    return True


async def watch_advancing(page: Page, seconds: float) -> dict[str, bool]:
    """Watch every remote tile for ``seconds``: name -> whether it kept advancing."""
    start = await page_now(page)
    await asyncio.sleep(seconds)
    end = await page_now(page)
    return {tile.name: advancing(tile, start, end) for tile in await remote_frames(page)}


def message_with(shown: list[dict[str, Any]], text: str) -> dict[str, Any]:
    """The one shown message whose text is exactly ``text``."""
    found = [message for message in shown if message["text"] == text]
    assert len(found) == 1, f"{text!r} shown {len(found)} times in {shown}"
    return found[0]


def assert_shown_as_text(message: dict[str, Any], text: str) -> None:
    """The message reads exactly ``text`` and no element was made of it (a renderer that parsed it
    as HTML would have made an <img> or a <b>)."""
    assert message["elements"] == [], f"elements created from {text!r}: {message['elements']}"
    assert message["text"] == text, message


def assert_only_http_links(message: dict[str, Any], expected_hrefs: list[str]) -> None:
    """The message's links are exactly ``expected_hrefs``, each opening apart from this page."""
    assert [link["href"] for link in message["links"]] == expected_hrefs, message["links"]
    for link in message["links"]:
        assert link["href"].startswith(("http://", "https://")), link
        assert link["rel"] == "noopener noreferrer" and link["target"] == "_blank", link


async def joined_pair(browser: Browser, url: str, first: str, second: str) -> tuple[Page, Page]:
    """Two Chromium pages in the call at ``url``, each seeing the other's tile."""
    one = await open_room(browser, url)
    await join(one, first)
    two = await open_room(browser, url)
    await join(two, second)
    for page in (one, two):
        await page.wait_for_function(TILE_COUNT, arg=2, timeout=20_000)
    return one, two


def chat_button(page: Page) -> Locator:
    return page.locator("#chat-button")


async def open_chat(page: Page) -> None:
    # Named "Chat", or "Chat, 3 unread" while messages wait.
    await page.get_by_role("button", name=re.compile(r"^Chat(, \d+ unread)?$")).click()
    await expect(page.get_by_label("Message", exact=True)).to_be_focused()


async def send_chat(page: Page, text: str) -> None:
    """Type ``text`` in the Message field and press Enter, as a user does."""
    field = page.get_by_label("Message", exact=True)
    await field.fill(text)
    await field.press("Enter")


async def wait_message(page: Page, text: str, timeout_ms: int = 15_000) -> dict[str, Any]:
    """Wait until the chat panel shows a message reading ``text``; return it."""
    await page.wait_for_function(
        "(text) => Array.from(document.querySelectorAll('#chat-panel .chat-message__text'))"
        ".some((p) => p.textContent === text)",
        arg=text,
        timeout=timeout_ms,
    )
    return message_with(await page.evaluate(SHOWN_MESSAGES), text)


async def open_participants(page: Page) -> None:
    await page.get_by_role("button", name="Participants", exact=True).click()
    await expect(page.locator("#participants-panel")).to_be_visible()


def person_row(page: Page, name: str) -> Locator:
    """The participant list's row for ``name`` (matched as text: names are never parsed)."""
    return page.locator("#participants-panel .people-list .person").filter(has_text=name)


async def announced(page: Page, text: str, timeout_ms: int = 10_000) -> None:
    """Wait until the polite live region says ``text``."""
    await page.wait_for_function(
        "(text) => { const region = document.getElementById('announcements');"
        " return region !== null && region.getAttribute('aria-live') === 'polite' &&"
        " Array.from(region.children).some((line) => line.textContent === text); }",
        arg=text,
        timeout=timeout_ms,
    )
