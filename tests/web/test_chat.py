"""Chat in the call, end to end in headless Chromium against the real server: messages reach the
others with the sender's name and time, anything that looks like HTML stays text, only http(s)
links become links, a too-long message and a flood are refused with the server's words (the flood
without harming the call), and a guest in the lobby sees and receives nothing. Helpers:
tests/web/talk_support.py and tests/support/browser.py."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime

import pytest
from playwright.async_api import Browser, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from ..conftest import ServerProcess
from ..support.browser import (
    TILE_COUNT,
    NetworkLog,
    browser,
    join,
    open_room,
    remote_frames,
    stop_sending_video,
    wait_playing,
)
from .talk_support import (
    SHOWN_MESSAGES,
    announced,
    assert_only_http_links,
    assert_shown_as_text,
    chat_button,
    joined_pair,
    message_with,
    open_chat,
    send_chat,
    wait_message,
    watch_advancing,
)

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

HTML_IMG = "<img src=x onerror=alert(1)>"
HTML_BOLD = "<b>bold</b>"
LINKS = "see https://example.org/x, not javascript:alert(1)"
TOO_LONG = "Messages can be at most 2,000 characters."
TOO_FAST = "You are sending messages too fast; wait a moment."

FLOOD = """(count) => {
  const field = document.querySelector('#chat-panel textarea');
  for (let number = 1; number <= count; number++) {
    field.value = `flood ${number}`;
    field.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
  }
}"""
"""A script's flood: ``count`` messages typed and sent with Enter as fast as the page can."""

OWN_ID = "() => document.querySelector('[data-local]:not([data-screen])')?.dataset.participant"
TILE_OF = (
    "(id) => document.querySelectorAll(`[data-participant='${id}']:not([data-screen])`).length"
)

COUNT_TONES = """() => {
  window.__tones = 0;
  const create = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function () {
    window.__tones += 1;
    return create.call(this);
  };
}"""
"""Counts the tones the page starts (each is one or more OscillatorNodes made in a row; the
count is of calls, so the checks wait for exact totals after each event)."""

BROKEN_RENDERER = """(texts) => {
  const panel = document.createElement('div');
  panel.id = 'chat-panel';
  for (const text of texts) {
    const item = document.createElement('div');
    item.className = 'chat-message';
    const body = document.createElement('p');
    body.className = 'chat-message__text';
    body.innerHTML = text; // the mistake the real renderer must never make
    item.append(body);
    panel.append(item);
  }
  document.body.append(panel);
}"""
"""A deliberately broken copy of the chat's renderer, for the tests of the test: HTML parsed, and
every word with a colon made a link."""

BROKEN_LINKER = """(text) => {
  const panel = document.createElement('div');
  panel.id = 'chat-panel';
  const item = document.createElement('div');
  item.className = 'chat-message';
  const body = document.createElement('p');
  body.className = 'chat-message__text';
  for (const word of text.split(' ')) {
    if (word.includes(':')) {
      const a = document.createElement('a');
      a.href = word.replace(/,$/, '');
      a.textContent = word;
      body.append(a, ' ');
    } else body.append(word + ' ');
  }
  item.append(body);
  panel.append(item);
  document.body.append(panel);
}"""


async def test_messages_reach_the_others_as_text_with_name_time_and_safe_links(
    browser: Browser, server_process: ServerProcess
) -> None:
    room_id = await server_process.create_room("Chat")
    ada, bea = await joined_pair(browser, f"{server_process.base_url}/r/{room_id}", "Ada", "Bea")

    # Sounds: off by default; on, remembered in this browser, and a message plays a tone.
    sounds = bea.get_by_role("button", name="Sounds", exact=True)
    await expect(sounds).to_have_attribute("aria-pressed", "false")
    await bea.evaluate(COUNT_TONES)
    await open_chat(ada)
    await send_chat(ada, "quiet")
    await wait_message(ada, "quiet")
    await announced(bea, "New message from Ada.")
    assert await bea.evaluate("() => window.__tones") == 0
    await sounds.click()
    await expect(sounds).to_have_attribute("aria-pressed", "true")
    assert await bea.evaluate("() => localStorage.getItem('meetnow.sounds')") == "on"
    await bea.wait_for_function("() => window.__tones === 1")  # the toggle's own sample
    await send_chat(ada, "loud")
    await bea.wait_for_function("() => window.__tones === 2", timeout=15_000)
    await sounds.click()
    await expect(sounds).to_have_attribute("aria-pressed", "false")
    await open_chat(bea)
    await wait_message(bea, "loud")
    await bea.get_by_role("button", name="Close chat").click()
    await expect(bea.get_by_role("button", name="Chat", exact=True)).to_be_focused()

    sent_between = time.time()
    await send_chat(ada, "Hello Bea")
    # Bea's panel is closed: the button counts it, in its accessible name too.
    await expect(bea.get_by_role("button", name="Chat, 1 unread", exact=True)).to_be_visible(
        timeout=15_000
    )
    await expect(chat_button(bea).locator(".control__count")).to_have_text("1")
    await announced(bea, "New message from Ada.")
    await send_chat(ada, HTML_IMG)
    await send_chat(ada, HTML_BOLD)
    await send_chat(ada, LINKS)
    await expect(bea.get_by_role("button", name="Chat, 4 unread", exact=True)).to_be_visible(
        timeout=15_000
    )

    # Opening the panel shows them and clears the count.
    await open_chat(bea)
    await expect(bea.get_by_role("button", name="Chat", exact=True)).to_be_visible()
    hello = await wait_message(bea, "Hello Bea")
    assert hello["name"] == "Ada"
    sent_at = datetime.fromisoformat(hello["datetime"].replace("Z", "+00:00")).timestamp()
    assert abs(sent_at - sent_between) < 60, (hello, sent_between)
    local = await bea.evaluate(
        "(iso) => { const d = new Date(iso); return [d.getHours(), d.getMinutes()]; }",
        hello["datetime"],
    )
    assert hello["time"] == f"{local[0]:02d}:{local[1]:02d}", hello

    # HTML-looking text stays text: no element made of it, nowhere on the page.
    assert_shown_as_text(await wait_message(bea, HTML_IMG), HTML_IMG)
    assert_shown_as_text(await wait_message(bea, HTML_BOLD), HTML_BOLD)
    assert await bea.locator("img, #chat-panel b").count() == 0
    # Only the http(s) address is a link; javascript: stays text.
    links = await wait_message(bea, LINKS)
    assert_only_http_links(links, ["https://example.org/x"])
    assert links["links"][0]["text"] == "https://example.org/x"
    # The sender sees the same, from the server's echo.
    assert_shown_as_text(await wait_message(ada, HTML_IMG), HTML_IMG)
    assert (await wait_message(ada, "Hello Bea"))["name"] == "Ada"
    # Replies go both ways; an open panel counts nothing unread.
    await send_chat(bea, "Hi Ada")
    assert (await wait_message(ada, "Hi Ada"))["name"] == "Bea"
    await expect(ada.get_by_role("button", name="Chat", exact=True)).to_be_visible()


async def test_the_text_link_and_announcement_checks_fail_on_broken_pages(
    browser: Browser,
) -> None:
    """Tests of the test: the same probes and checks, on a scratch page where a broken copy of the
    renderer uses innerHTML and links anything with a colon, and where the words are in no live
    region, report each failure."""
    context = await browser.new_context(locale="en-US")
    scratch = await context.new_page()
    await scratch.set_content("<!doctype html><title>scratch</title>")
    await scratch.evaluate(BROKEN_RENDERER, [HTML_IMG, HTML_BOLD])
    shown = await scratch.evaluate(SHOWN_MESSAGES)
    for text, tag in ((HTML_IMG, "img"), (HTML_BOLD, "b")):
        rendered = [message for message in shown if tag in message["elements"]]
        assert len(rendered) == 1, shown
        with pytest.raises(AssertionError, match="elements created"):
            assert_shown_as_text(rendered[0], text)
    await scratch.set_content("<!doctype html><title>scratch</title>")
    await scratch.evaluate(BROKEN_LINKER, LINKS)
    broken = message_with(await scratch.evaluate(SHOWN_MESSAGES), LINKS + " ")
    with pytest.raises(AssertionError):
        assert_only_http_links(broken, ["https://example.org/x"])
    # The announcement check wants the words in a polite live region: a plain element fails it.
    await scratch.set_content(
        "<!doctype html><div id='announcements'><p>New message from Ada.</p></div>"
    )
    with pytest.raises(PlaywrightTimeoutError):
        await announced(scratch, "New message from Ada.", timeout_ms=500)
    await scratch.evaluate(
        "() => document.getElementById('announcements').setAttribute('aria-live', 'polite')"
    )
    await announced(scratch, "New message from Ada.", timeout_ms=2_000)
    await context.close()


async def test_a_too_long_message_is_refused_and_nobody_gets_it(
    browser: Browser, server_process: ServerProcess
) -> None:
    room_id = await server_process.create_room("Long")
    url = f"{server_process.base_url}/r/{room_id}"
    ada = await open_room(browser, url)
    await join(ada, "Ada")
    bea_frames = NetworkLog()
    bea = await open_room(browser, url, network=bea_frames)
    await join(bea, "Bea")
    for page in (ada, bea):
        await page.wait_for_function(TILE_COUNT, arg=2, timeout=20_000)
    await open_chat(ada)
    await open_chat(bea)
    field = ada.get_by_label("Message", exact=True)

    # Counted as the server counts: 2,000 emoji are 2,000 characters (4,000 UTF-16 units).
    emoji = "\U0001f600" * 2000
    await field.fill(emoji)
    counter = ada.locator(".chat-form__counter")
    await expect(counter).to_have_text("2,000 of 2,000 characters")
    await expect(counter).not_to_have_class(re.compile("chat-form__counter--over"))
    await field.press("Enter")
    await wait_message(bea, emoji)
    await expect(field).to_have_value("")

    # One more is refused with the server's words, kept in the field for the writer to shorten.
    too_long = "x" * 2001
    await field.fill(too_long)
    await expect(counter).to_have_text("2,001 of 2,000 characters")
    await expect(counter).to_have_class(re.compile("chat-form__counter--over"))
    await field.press("Enter")
    await expect(ada.locator(".chat-form__error")).to_have_text(TOO_LONG, timeout=10_000)
    await expect(field).to_have_value(too_long)

    # Round trip: Ada's next message reaches Bea, so the server handled the long one before it,
    # and Bea's websocket never received it.
    await send_chat(ada, "after the long one")
    await wait_message(bea, "after the long one")
    await expect(ada.locator(".chat-form__error")).to_have_text("")
    chats = [m["text"] for m in bea_frames.received_messages if m.get("type") == "chat"]
    assert chats == [emoji, "after the long one"], [len(text) for text in chats]
    texts = [message["text"] for message in await ada.evaluate(SHOWN_MESSAGES)]
    assert too_long not in texts


async def test_a_flood_is_rate_limited_while_the_video_plays_on(
    browser: Browser, server_process: ServerProcess
) -> None:
    room_id = await server_process.create_room("Flood")
    ada, bea = await joined_pair(browser, f"{server_process.base_url}/r/{room_id}", "Ada", "Bea")
    await asyncio.gather(wait_playing(ada, 1), wait_playing(bea, 1))
    await open_chat(ada)
    await open_chat(bea)

    ada_id = await ada.evaluate(OWN_ID)
    # Bea's view of Ada's video over the whole flood and after it: frames keep advancing, and
    # Ada's tile is the same participant (no reconnect: the flood never closed her connection).
    check, _ = await asyncio.gather(watch_advancing(bea, 6.0), ada.evaluate(FLOOD, 30))
    assert check == {"Ada": True}, await remote_frames(bea)
    assert await bea.evaluate(TILE_OF, ada_id) == 1
    await expect(ada.locator(".chat-form__error")).to_have_text(TOO_FAST, timeout=10_000)
    # Round trip: a message sent after the flood arrives (the call and its chat go on), after
    # only the first burst of the flood and what the per-minute rate let through meanwhile.
    # The refused text stays in the field. Seconds later the rate has room again.
    await expect(ada.get_by_label("Message", exact=True)).to_have_value("flood 30")
    await send_chat(ada, "after the flood")
    await wait_message(bea, "after the flood")
    bea_texts = [message["text"] for message in await bea.evaluate(SHOWN_MESSAGES)][:-1]
    assert 10 <= len(bea_texts) < 30, bea_texts
    assert bea_texts == [f"flood {number}" for number in range(1, len(bea_texts) + 1)]
    await asyncio.gather(wait_playing(ada, 1), wait_playing(bea, 1))
    assert await bea.evaluate(TILE_OF, ada_id) == 1

    # Test of the test: once Ada's video stops, the same check at Bea says so.
    await stop_sending_video(ada)
    assert await watch_advancing(bea, 3.0) == {"Ada": False}


async def test_a_guest_in_the_lobby_sees_no_chat_and_receives_none(
    browser: Browser, server_process: ServerProcess
) -> None:
    base = server_process.base_url
    host = await open_room(browser, f"{base}/")
    await host.get_by_label("Lobby: I let people in").check()
    await host.get_by_role("button", name="Meet now").click()
    await host.wait_for_url("**/r/**")
    await join(host, "Hostess")
    await host.wait_for_function(TILE_COUNT, arg=1, timeout=15_000)
    await open_chat(host)

    guest_frames = NetworkLog()
    guest = await open_room(browser, host.url, network=guest_frames)
    await join(guest, "Guest")
    await expect(guest.get_by_text("Waiting for the host to let you in…")).to_be_visible(
        timeout=15_000
    )
    await expect(guest.get_by_role("button", name=re.compile("^Chat"))).to_have_count(0)

    await send_chat(host, "before you came in")
    await wait_message(host, "before you came in")
    # Round trip: the host's admit follows the message on the same connection, so anything the
    # server sent the guest for it would reach the guest before `joined`.
    await (
        host.locator("#lobby-list li")
        .filter(has_text="Guest")
        .get_by_role("button", name="Admit")
        .click()
    )
    await guest.wait_for_function(TILE_COUNT, arg=2, timeout=20_000)
    types = [message.get("type") for message in guest_frames.received_messages]
    assert "joined" in types and "chat" not in types, types
    # In the call now: the panel shows nothing from before, then what is said from now on.
    await open_chat(guest)
    assert await guest.evaluate(SHOWN_MESSAGES) == []
    await send_chat(host, "welcome")
    await wait_message(guest, "welcome")
    assert [m["text"] for m in await guest.evaluate(SHOWN_MESSAGES)] == ["welcome"]
