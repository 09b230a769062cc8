"""Room pages with extra init scripts (more fake devices, stats as a degraded link would report
them, a browser without WebRTC), and the probes that read what those pages did.

The scripts are injected after page_hooks.js, before the page's own code, like the frame probes:
the web client carries no test code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page

from .browser import TEST_HOOKS

FAKE_DEVICES = (Path(__file__).parent / "fake_devices.js").read_text()
"""Two more cameras ("Canvas camera", "Busy camera"): ``window.__fakeDevices``."""

CANVAS_CAMERA = "Canvas camera"
BUSY_CAMERA = "Busy <i>camera</i>"
"""Listed with markup in its label: shown as text, never parsed; opening it fails (NotReadableError)."""
CHROMIUM_CAMERA = "fake_device_0"

MAGENTA = (255, 0, 255)
"""What the canvas camera shows (fake_devices.js paints it)."""


async def open_room_with(browser: Browser, url: str, *scripts: str) -> Page:
    """A room page in a fresh context (its own storage) with camera and microphone allowed, the
    frame probes and ``scripts`` injected in that order."""
    context = await browser.new_context(
        permissions=["camera", "microphone"],
        viewport={"width": 960, "height": 640},
        locale="en-US",  # English pages whatever the machine's LANG (the page follows it)
    )
    await context.add_init_script(TEST_HOOKS)
    for script in scripts:
        await context.add_init_script(script)
    page = await context.new_page()
    await page.goto(url)
    return page


async def sent_tracks(page: Page) -> list[dict[str, Any]]:
    """Kind, label, enabled and state of each track the page's open connections send."""
    tracks: list[dict[str, Any]] = await page.evaluate("() => window.__fakeDevices.sentTracks()")
    return tracks


async def sent_label(page: Page, kind: str) -> str:
    labels = [track["label"] for track in await sent_tracks(page) if track["kind"] == kind]
    assert len(labels) == 1, labels
    return str(labels[0])


async def offers_answered(page: Page) -> int:
    """The call's offers (with media sections) the page answered so far."""
    count: int = await page.evaluate("() => window.__fakeDevices.offersAnswered()")
    return count


async def call_connections_made(page: Page) -> int:
    """Peer connections that carried the call (the network check's is not one)."""
    count: int = await page.evaluate("() => window.__fakeDevices.callConnectionCount()")
    return count


TILE_COLOUR = """(name) => {
  const tile = Array.from(document.querySelectorAll('[data-participant]:not([data-local])'))
    .find((candidate) => candidate.querySelector('.tile__name')?.textContent === name);
  const video = tile && tile.querySelector('video');
  if (!video || video.videoWidth === 0) return null;
  const canvas = document.createElement('canvas');
  canvas.width = 32;
  canvas.height = 24;
  const context = canvas.getContext('2d', { willReadFrequently: true });
  // The centre of the picture (the canvas camera's moving square runs along the bottom edge).
  const w = video.videoWidth, h = video.videoHeight;
  context.drawImage(video, w / 4, h / 4, w / 2, h / 2, 0, 0, 32, 24);
  const data = context.getImageData(0, 0, 32, 24).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += data[i + c];
  return sum.map((total) => Math.round(total / (data.length / 4)));
}"""


async def tile_colour(page: Page, name: str) -> tuple[int, int, int] | None:
    """The mean colour of the centre of ``name``'s remote tile, as the page decodes it now."""
    colour: list[int] | None = await page.evaluate(TILE_COLOUR, name)
    return (colour[0], colour[1], colour[2]) if colour else None


COLOUR_TOLERANCE = 40
"""Per channel, after VP8 and the colour conversions on the way."""


def near(colour: tuple[int, int, int] | None, target: tuple[int, int, int]) -> bool:
    """Close enough to ``target``: each channel within ``COLOUR_TOLERANCE``."""
    return colour is not None and all(
        abs(a - b) <= COLOUR_TOLERANCE for a, b in zip(colour, target, strict=True)
    )


async def wait_tile_colour(
    page: Page,
    name: str,
    target: tuple[int, int, int],
    *,
    away: bool = False,
    timeout_ms: int = 20_000,
) -> None:
    """Wait until ``name``'s tile shows ``target`` (see ``near``), or with ``away`` something
    clearly else."""
    await page.wait_for_function(
        f"([name, target, tolerance, away]) => {{ const c = ({TILE_COLOUR})(name);"
        " if (c === null) return false;"
        " const near = c.every((v, i) => Math.abs(v - target[i]) <= tolerance);"
        " return away ? !near : near; }",
        arg=[name, list(target), COLOUR_TOLERANCE, away],
        timeout=timeout_ms,
    )
