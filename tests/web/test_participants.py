"""The participant list end to end in headless Chromium against the real server: everyone in the
call (ourselves first, "(you)"), host badges, muted state, and for hosts the host actions (mute,
make host, remove) and the lobby (admit, deny), each seen working from the pages it affects.
Helpers: tests/web/talk_support.py."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from ..conftest import ServerProcess
from ..support.browser import TILE_COUNT, browser, join, open_room
from .talk_support import PEOPLE_ROWS, open_participants, person_row

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

XSS_NAME = "<img src=x onerror=alert(1)>"


async def rows(page: Page) -> list[tuple[str, list[str]]]:
    return [(row["name"], row["badges"]) for row in await page.evaluate(PEOPLE_ROWS)]


async def wait_rows(
    page: Page, expected: list[tuple[str, list[str]]], timeout_ms: int = 15_000
) -> None:
    """Wait until the list shows exactly these rows (name, badges), in this order."""
    try:
        await page.wait_for_function(
            "(expected) => JSON.stringify((" + PEOPLE_ROWS + ")().map((row) =>"
            " [row.name, row.badges])) === JSON.stringify(expected)",
            arg=[list(row) for row in expected],
            timeout=timeout_ms,
        )
    except Exception as error:
        raise AssertionError(f"rows: {await rows(page)}, expected {expected}") from error


async def test_hosts_run_the_call_from_the_participant_list(
    browser: Browser, server_process: ServerProcess
) -> None:
    base = server_process.base_url
    host = await open_room(browser, f"{base}/")
    await host.get_by_label("Lobby: I let people in").check()
    await host.get_by_role("button", name="Meet now").click()
    await host.wait_for_url("**/r/**")
    room_url = host.url
    await join(host, "Hostess")
    await host.wait_for_function(TILE_COUNT, arg=1, timeout=15_000)
    await open_participants(host)
    await wait_rows(host, [("Hostess (you)", ["Host"])])

    # Knocks appear in the list, names as text; Admit and Deny work from there.
    guest = await open_room(browser, room_url)
    await join(guest, "Guest")
    stranger = await open_room(browser, room_url)
    await join(stranger, XSS_NAME)
    await expect(host.locator("#participants-panel .person--knock")).to_have_count(
        2, timeout=15_000
    )
    lobby_names = await host.locator(
        "#participants-panel .person--knock .person__name"
    ).all_text_contents()
    assert sorted(lobby_names) == sorted(["Guest", XSS_NAME])
    assert await host.locator("#participants-panel img").count() == 0
    await (
        host.locator("#participants-panel .person--knock")
        .filter(has_text=XSS_NAME)
        .get_by_role("button", name="Deny")
        .click()
    )
    await expect(stranger.locator("#ended-text")).to_have_text(
        "The host did not let you in.", timeout=15_000
    )
    await (
        host.locator("#participants-panel .person--knock")
        .filter(has_text="Guest")
        .get_by_role("button", name="Admit")
        .click()
    )
    await expect(host.locator("#participants-panel .person--knock")).to_have_count(
        0, timeout=15_000
    )
    await guest.wait_for_function(TILE_COUNT, arg=2, timeout=20_000)
    await stranger.context.close()
    third = await open_room(browser, room_url)
    await join(third, "Third")
    await (
        host.locator("#participants-panel .person--knock")
        .filter(has_text="Third")
        .get_by_role("button", name="Admit")
        .click(timeout=15_000)
    )
    for page in (host, guest, third):
        await page.wait_for_function(TILE_COUNT, arg=3, timeout=20_000)

    # Everyone, ourselves first; hosts before the others; then by name.
    await wait_rows(host, [("Hostess (you)", ["Host"]), ("Guest", []), ("Third", [])])
    await open_participants(guest)
    await wait_rows(guest, [("Guest (you)", []), ("Hostess", ["Host"]), ("Third", [])])
    await open_participants(third)
    guest_row = person_row(host, "Guest")
    await expect(guest_row.get_by_role("button")).to_have_text(["Mute", "Make host", "Remove"])
    await expect(person_row(guest, "Third").get_by_role("button")).to_have_count(0)

    # Mute from the list: the guest's state changes at everyone.
    await guest_row.get_by_role("button", name="Mute", exact=True).click()
    await expect(guest.locator("#mic-button")).to_have_text("Muted by host", timeout=10_000)
    await wait_rows(
        third, [("Third (you)", []), ("Hostess", ["Host"]), ("Guest", ["Muted by host"])]
    )
    await wait_rows(
        guest, [("Guest (you)", ["Muted by host"]), ("Hostess", ["Host"]), ("Third", [])]
    )
    await expect(
        third.locator("[data-participant]").filter(has_text="Guest").locator(".tile__badge--muted")
    ).to_be_visible()
    await guest_row.get_by_role("button", name="Allow audio", exact=True).click()
    await expect(guest.locator("#mic-button")).to_have_text("Mute", timeout=10_000)

    # Make host from the list: Third gets the host bar, and moves up among the hosts.
    await person_row(host, "Third").get_by_role("button", name="Make host", exact=True).click()
    await expect(third.locator("#host-bar")).to_be_visible(timeout=10_000)
    await wait_rows(guest, [("Guest (you)", []), ("Hostess", ["Host"]), ("Third", ["Host"])])
    await wait_rows(host, [("Hostess (you)", ["Host"]), ("Third", ["Host"]), ("Guest", [])])

    # Remove from the list: the guest is out, and gone from everyone's list.
    await person_row(third, "Guest").get_by_role("button", name="Remove", exact=True).click()
    await expect(guest.locator("#ended-text")).to_have_text(
        "The host removed you from this meeting.", timeout=15_000
    )
    await wait_rows(host, [("Hostess (you)", ["Host"]), ("Third", ["Host"])])
    await wait_rows(third, [("Third (you)", ["Host"]), ("Hostess", ["Host"])])


SCRATCH_LIST = """(rows) => {
  const panel = document.createElement('aside');
  panel.id = 'participants-panel';
  const list = document.createElement('ul');
  list.className = 'people-list';
  for (const [name, badges] of rows) {
    const row = document.createElement('li');
    row.className = 'person';
    const label = document.createElement('span');
    label.className = 'person__name';
    label.textContent = name;
    const marks = document.createElement('span');
    marks.className = 'person__badges';
    for (const badge of badges) {
      const mark = document.createElement('span');
      mark.textContent = badge;
      marks.append(mark);
    }
    row.append(label, marks);
    list.append(row);
  }
  panel.append(list);
  document.body.append(panel);
}"""


async def test_the_list_check_fails_on_a_wrong_order_or_badge(browser: Browser) -> None:
    """Test of the test: ``wait_rows`` fails when the list is in another order, or a badge is
    missing, on a scratch page holding a hand-made list."""
    context = await browser.new_context(locale="en-US")
    scratch = await context.new_page()
    await scratch.set_content("<!doctype html><title>scratch</title>")
    await scratch.evaluate(SCRATCH_LIST, [["Ann (you)", ["Host"]], ["Bo", []]])
    await wait_rows(scratch, [("Ann (you)", ["Host"]), ("Bo", [])])
    with pytest.raises(AssertionError, match="rows:"):
        await wait_rows(scratch, [("Bo", []), ("Ann (you)", ["Host"])], timeout_ms=500)
    with pytest.raises(AssertionError, match="rows:"):
        await wait_rows(scratch, [("Ann (you)", []), ("Bo", [])], timeout_ms=500)
    await context.close()
