"""Helpers for the accessibility tests (tests/web/test_axe.py, tests/web/test_focus.py): pages in a
chosen language or on a touch screen, axe-core injected into a page, and the measures the audit
took by hand (text contrast from computed styles, element sizes, widths), each a probe run with
``page.evaluate``. Every check here is proved able to fail in test_focus.py's and test_axe.py's
tests of the test.

The web client is driven by element ids, never by button names, so the same steps run in every
language."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, ViewportSize, expect

from ..support.browser import TEST_HOOKS, TILE_COUNT

AXE_SOURCE = Path(__file__).resolve().parents[2] / ".cache/node/node_modules/axe-core/axe.min.js"
"""Installed by scripts/test.sh (npm ``axe-core`` 4.x into the ``.cache/node`` prefix)."""

BLOCKING_IMPACTS = frozenset({"serious", "critical"})
"""axe's impacts that fail the check: the issue asks for no serious or critical violation."""

MIN_CONTRAST = 4.5
"""WCAG 2 AA for normal-size text."""

MIN_TARGET_PX = 44.0
"""The issue's touch target size (WCAG 2.5.5)."""

LOCALES = {"en": "en-US", "fr": "fr-FR"}
"""The browser locale each language's pages are opened with (``navigator.languages``)."""

PHONE: ViewportSize = {"width": 360, "height": 740}
DESKTOP: ViewportSize = {"width": 960, "height": 640}


async def open_page(
    browser: Browser,
    url: str,
    *,
    language: str = "en",
    viewport: ViewportSize | None = None,
    touch: bool = False,
) -> Page:
    """A page with the camera and microphone allowed and the test hooks, in its own context: the
    browser's language ``language``, and with ``touch`` a phone's touch screen."""
    context = await browser.new_context(
        permissions=["camera", "microphone"],
        viewport=viewport or DESKTOP,
        locale=LOCALES[language],
        has_touch=touch,
        is_mobile=touch,
    )
    await context.add_init_script(TEST_HOOKS)
    page = await context.new_page()
    await page.goto(url)
    return page


async def create_room(page: Page, *, lobby: bool) -> str:
    """From the landing page: create a meeting (with its lobby if asked); return its URL."""
    if lobby:
        await page.locator("#lobby-input").check()
    await page.locator("#create-button").click()
    await page.wait_for_url("**/r/**")
    # The host link's fragment (the host token) may still be in the address: never share it.
    return page.url.split("#", 1)[0]


async def join_by_id(page: Page, name: str) -> None:
    """Fill in the name and click Join, by the elements' ids (any language)."""
    await page.locator("#name-input").fill(name)
    await page.locator("#join-button").click()


async def wait_tiles(page: Page, count: int) -> None:
    await page.wait_for_function(TILE_COUNT, arg=count, timeout=20_000)


def remote_tile_menu_toggle(page: Page, name: str) -> Locator:
    """The "•••" button of ``name``'s tile (matched as text: names are never parsed)."""
    tile = page.locator("[data-participant]:not([data-local])").filter(has_text=name)
    return tile.locator(".tile__menu-toggle")


# ---------------------------------------------------------------- axe-core


@dataclass(frozen=True)
class AxeViolation:
    id: str
    impact: str
    help: str
    targets: list[str]

    def __str__(self) -> str:
        return f"{self.id} ({self.impact}: {self.help}) at {self.targets}"


RUN_AXE = """async () => {
  const results = await window.axe.run(document, { resultTypes: ['violations'] });
  return results.violations.map((violation) => ({
    id: violation.id,
    impact: violation.impact ?? '',
    help: violation.help,
    targets: violation.nodes.map((node) => node.target.map(String).join(' ')),
  }));
}"""


def axe_source() -> str:
    if not AXE_SOURCE.exists():
        pytest.fail(f"axe-core is missing ({AXE_SOURCE}): scripts/test.sh installs it")
    return AXE_SOURCE.read_text()


async def axe_violations(page: Page) -> list[AxeViolation]:
    """Every violation axe-core finds on the page as it is now. axe's source is evaluated in the
    page (the CSP rightly blocks a script tag), once per document."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(axe_source())
    rows: list[dict[str, Any]] = await page.evaluate(RUN_AXE)
    return [AxeViolation(row["id"], row["impact"], row["help"], row["targets"]) for row in rows]


def blocking(violations: list[AxeViolation]) -> list[AxeViolation]:
    return [violation for violation in violations if violation.impact in BLOCKING_IMPACTS]


async def assert_axe_clean(page: Page, where: str) -> None:
    """No serious or critical axe violation on the page; the message lists each with its targets."""
    found = blocking(await axe_violations(page))
    assert not found, f"axe on {where}: " + "; ".join(str(violation) for violation in found)


# ---------------------------------------------------------------- contrast


COLORS = """(selector) => {
  const element = document.querySelector(selector);
  if (!element) return null;
  const style = getComputedStyle(element);
  return [style.color, style.backgroundColor];
}"""

RGB = re.compile(r"rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)(?:\s*[,/]\s*([\d.]+))?\s*\)")


def parse_rgb(text: str) -> tuple[float, float, float, float]:
    """A computed colour (``rgb(r, g, b)`` or ``rgba(r, g, b, a)``) as 0-255 channels and alpha."""
    match = RGB.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a computed rgb colour: {text!r}")
    red, green, blue, alpha = match.groups()
    return float(red), float(green), float(blue), float(alpha) if alpha is not None else 1.0


def relative_luminance(red: float, green: float, blue: float) -> float:
    """WCAG 2's relative luminance of an sRGB colour (channels 0-255)."""

    def linear(channel: float) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2's contrast ratio of two opaque computed colours."""
    lighter, darker = sorted(
        (relative_luminance(*parse_rgb(color)[:3]) for color in (foreground, background)),
        reverse=True,
    )
    return (lighter + 0.05) / (darker + 0.05)


async def text_contrast(page: Page, selector: str) -> float:
    """The contrast of the element's text on its own background, from the computed styles. Only
    an opaque background is judged (a see-through one depends on what lies under it)."""
    colors: list[str] | None = await page.evaluate(COLORS, selector)
    assert colors is not None, f"{selector} is not on the page"
    foreground, background = colors
    assert parse_rgb(background)[3] == 1.0, f"{selector}'s background is not opaque: {background}"
    return contrast_ratio(foreground, background)


# ---------------------------------------------------------------- sizes


SIZES = """(selector) => Array.from(document.querySelectorAll(selector))
  .filter((element) => element.getClientRects().length > 0)
  .map((element) => {
    const box = element.getBoundingClientRect();
    return { label: element.getAttribute('aria-label') || element.textContent.trim(),
             width: box.width, height: box.height };
  })"""


async def target_sizes(page: Page, selector: str) -> list[dict[str, Any]]:
    """Label, width and height of every shown element matching ``selector``."""
    sizes: list[dict[str, Any]] = await page.evaluate(SIZES, selector)
    return sizes


def too_small(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets less than ``MIN_TARGET_PX`` tall or wide."""
    return [size for size in sizes if min(size["width"], size["height"]) < MIN_TARGET_PX - 0.5]


async def element_width(page: Page, selector: str) -> float:
    width: float | None = await page.evaluate(
        "(selector) => document.querySelector(selector)?.getBoundingClientRect().width ?? null",
        selector,
    )
    assert width is not None, f"{selector} is not on the page"
    return width


# ---------------------------------------------------------------- toggles


TOGGLE_CUES = """(selector) => {
  const button = document.querySelector(selector);
  return { name: (button.getAttribute('aria-label') || button.textContent).trim(),
           pressed: button.getAttribute('aria-pressed') };
}"""


async def toggle_cues(page: Page, selector: str) -> dict[str, str | None]:
    """What a screen reader says of a toggle: its name and its aria-pressed (None if absent)."""
    cues: dict[str, str | None] = await page.evaluate(TOGGLE_CUES, selector)
    return cues


def assert_state_said_once(before: dict[str, str | None], after: dict[str, str | None]) -> None:
    """A toggle says its state either by its label or by aria-pressed, never both ("Unmute,
    pressed"): a label that changes goes without aria-pressed, and one with aria-pressed stays."""
    assert before["name"] != after["name"] or before["pressed"] != after["pressed"], (
        f"the toggle's state did not change: {before} -> {after}"
    )
    label_changed = before["name"] != after["name"]
    has_pressed = before["pressed"] is not None or after["pressed"] is not None
    assert not (label_changed and has_pressed), (
        f"the toggle says its state twice (label and aria-pressed): {before} -> {after}"
    )


CUES_CHANGED = (
    "([selector, before]) => { const now = (" + TOGGLE_CUES + ")(selector);"
    " return now.name !== before.name || now.pressed !== before.pressed; }"
)


async def click_and_check_toggle(page: Page, selector: str) -> dict[str, str | None]:
    """Click the toggle, wait until what it says changes, and check it said the change once;
    return what it says now."""
    before = await toggle_cues(page, selector)
    await page.locator(selector).click()
    await page.wait_for_function(CUES_CHANGED, arg=[selector, before], timeout=10_000)
    after = await toggle_cues(page, selector)
    assert_state_said_once(before, after)
    return after


MIN_NAME_WIDTH_PX = 40.0
"""A name beside badges keeps at least this much room (the audit measured 13 px, or nothing)."""


async def assert_name_shown(page: Page, selector: str) -> float:
    """The name element ``selector`` is wider than ``MIN_NAME_WIDTH_PX``; return its width."""
    width = await element_width(page, selector)
    assert width > MIN_NAME_WIDTH_PX, f"{selector} is cut to {width:.1f} px"
    return width


async def focused_is(page: Page, selector: str, timeout_ms: int = 10_000) -> None:
    """Wait until the element ``selector`` has the focus."""
    await expect(page.locator(selector)).to_be_focused(timeout=timeout_ms)
