"""Raised hands end to end in headless Chromium against the real server: a raised hand shows on the
person's tile at everyone (`data-hand-raised`, and a "✋ N" badge giving the order in which hands
went up), the owner's button says "Lower hand", screen readers hear it, and a host lowers anyone's
hand from the tile menu or the participant list. Helpers: tests/web/talk_support.py."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from ..conftest import ServerProcess
from ..support.browser import TILE_COUNT, browser, join, open_room
from .talk_support import HANDS_ON_TILES, PEOPLE_ROWS, announced, open_participants, person_row

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser


async def wait_hands(page: Page, expected: dict[str, list[str]], timeout_ms: int = 15_000) -> None:
    """Wait until exactly the tiles in ``expected`` carry a raised hand, each with the given
    ``[data-hand-raised, badge text]``; fail showing what the tiles carry."""
    try:
        await page.wait_for_function(
            "(expected) => { const found = (" + HANDS_ON_TILES + ")();"
            " return JSON.stringify(Object.entries(found).sort()) ==="
            " JSON.stringify(Object.entries(expected).sort()); }",
            arg=expected,
            timeout=timeout_ms,
        )
    except Exception as error:
        raise AssertionError(
            f"hands on tiles: {await page.evaluate(HANDS_ON_TILES)}, expected {expected}"
        ) from error


SCRATCH_TILES = """(hands) => {
  for (const [name, order] of hands) {
    const tile = document.createElement('div');
    tile.setAttribute('data-participant', name);
    const label = document.createElement('span');
    label.className = 'tile__name';
    label.textContent = name;
    tile.append(label);
    if (order !== null) {
      tile.setAttribute('data-hand-raised', String(order));
      const badge = document.createElement('span');
      badge.className = 'tile__badge tile__badge--hand';
      badge.textContent = `✋ ${order}`;
      tile.append(badge);
    }
    document.body.append(tile);
  }
}"""


async def test_hands_go_up_in_order_and_a_host_lowers_them(
    browser: Browser, server_process: ServerProcess
) -> None:
    base = server_process.base_url
    host = await open_room(browser, f"{base}/")
    await host.get_by_role("button", name="Meet now").click()
    await host.wait_for_url("**/r/**")
    await join(host, "Hostess")
    bea = await open_room(browser, host.url)
    await join(bea, "Bea")
    cy = await open_room(browser, host.url)
    await join(cy, "Cy")
    pages = (host, bea, cy)
    for page in pages:
        await page.wait_for_function(TILE_COUNT, arg=3, timeout=20_000)
    await announced(host, "Cy joined.")

    # Bea first, then Cy: every page numbers them the same, by the server's time.
    await bea.get_by_role("button", name="Raise hand", exact=True).click()
    await expect(bea.get_by_role("button", name="Lower hand", exact=True)).to_be_visible(
        timeout=10_000
    )
    for page in pages:
        await wait_hands(page, {"Bea (you)" if page is bea else "Bea": ["1", "✋ 1"]})
    await announced(host, "Bea raised their hand.")
    await cy.get_by_role("button", name="Raise hand", exact=True).click()
    for page in pages:
        await wait_hands(
            page,
            {
                "Bea (you)" if page is bea else "Bea": ["1", "✋ 1"],
                "Cy (you)" if page is cy else "Cy": ["2", "✋ 2"],
            },
        )
    await announced(bea, "Cy raised their hand.")

    # The list puts raised hands first, in their order, after ourselves.
    await open_participants(host)
    rows = await host.evaluate(PEOPLE_ROWS)
    assert [(row["name"], row["hand"]) for row in rows] == [
        ("Hostess (you)", None),
        ("Bea", "1"),
        ("Cy", "2"),
    ], rows

    # A host lowers Bea's hand from her tile's menu: Cy moves up to 1 at everyone.
    tile = host.locator("[data-participant]:not([data-local])").filter(has_text="Bea")
    await tile.get_by_role("button", name="Host actions").click()
    await tile.get_by_role("button", name="Lower hand", exact=True).click()
    for page in pages:
        await wait_hands(page, {"Cy (you)" if page is cy else "Cy": ["1", "✋ 1"]})
    await expect(bea.get_by_role("button", name="Raise hand", exact=True)).to_be_visible()
    # ... and Cy's from the participant list.
    await person_row(host, "Cy").get_by_role("button", name="Lower hand", exact=True).click()
    for page in pages:
        await wait_hands(page, {})
    await expect(cy.get_by_role("button", name="Raise hand", exact=True)).to_be_visible()
    # Guests get no way to lower someone else's hand.
    await bea.get_by_role("button", name="Raise hand", exact=True).click()
    await wait_hands(cy, {"Bea": ["1", "✋ 1"]})
    await expect(cy.get_by_role("button", name="Host actions")).to_have_count(0)
    await open_participants(cy)
    assert all(row["actions"] == [] for row in await cy.evaluate(PEOPLE_ROWS))
    # A reload keeps it: the server keeps the session's hand and tells her page in `joined`.
    await bea.reload()
    await join(bea, "Bea")
    await expect(bea.get_by_role("button", name="Lower hand", exact=True)).to_be_visible(
        timeout=20_000
    )
    for page in pages:
        await wait_hands(page, {"Bea (you)" if page is bea else "Bea": ["1", "✋ 1"]})
    # The owner lowers it: down everywhere.
    await bea.get_by_role("button", name="Lower hand", exact=True).click()
    for page in pages:
        await wait_hands(page, {})


async def test_the_hand_check_fails_on_a_wrong_order(browser: Browser) -> None:
    """Test of the test: ``wait_hands`` fails when the tiles carry another order than expected
    (here, two hands swapped, and a hand missing), on a scratch page of hand-made tiles."""
    context = await browser.new_context(locale="en-US")
    scratch = await context.new_page()
    await scratch.set_content("<!doctype html><title>scratch</title>")
    await scratch.evaluate(SCRATCH_TILES, [["Bea", 2], ["Cy", 1], ["Dee", None]])
    await wait_hands(scratch, {"Bea": ["2", "✋ 2"], "Cy": ["1", "✋ 1"]}, timeout_ms=2_000)
    with pytest.raises(AssertionError, match="hands on tiles"):
        await wait_hands(scratch, {"Bea": ["1", "✋ 1"], "Cy": ["2", "✋ 2"]}, timeout_ms=500)
    with pytest.raises(AssertionError, match="hands on tiles"):
        await wait_hands(scratch, {"Cy": ["1", "✋ 1"]}, timeout_ms=500)
    await context.close()
