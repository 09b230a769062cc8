"""Redundant audio (RED, RFC 2198) end to end: Chromium publishes RED through the relay because the
relay's offer lists ``red`` before ``opus``, a Chromium subscriber receives it as RED, and an
aiortc subscriber (which cannot take RED and drops it from its answer) still gets playable Opus:
the relay hands it the primary block of the same packets. In an in-process server, so the aiortc
participant shares the relay's process (RED must stay the relay's alone)."""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import Browser, Page

from signaling.aiortc_hooks.red import RED_PAYLOAD_TYPE
from signaling.client import ParticipantClient

from ..conftest import RunningServer
from ..support.browser import TEST_HOOKS, browser, join, wait_hearing

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

# Records the payload type of every audio frame each peer connection receives (an encoded
# transform that passes frames on unchanged: RED arrives as RED's payload type, before the
# jitter buffer splits it). ``__plainOpusPair`` makes a local Chromium-to-Chromium call negotiated
# the browser's own way (Opus listed before RED): the known-bad case for the check.
CODEC_HOOK = """
(() => {
  const seen = [];
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('track', (event) => {
        if (event.track.kind !== 'audio') return;
        const { readable, writable } = event.receiver.createEncodedStreams();
        readable.pipeThrough(new TransformStream({
          transform(frame, out) { seen.push(frame.getMetadata().payloadType); out.enqueue(frame); },
        })).pipeTo(writable);
      });
    }
  };
  window.__audioPayloadTypes = () => [...new Set(seen)];
  window.__audioFrames = () => seen.length;
  window.__plainOpusPair = async () => {
    const a = new RTCPeerConnection(), b = new RTCPeerConnection();
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    a.addTrack(stream.getAudioTracks()[0], stream);
    a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
    b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription);
  };
})();
"""


def receives_red(payload_types: list[int]) -> bool:
    """Every audio frame received came as RED (and some came)."""
    return bool(payload_types) and set(payload_types) == {RED_PAYLOAD_TYPE}


async def open_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context(
        permissions=["camera", "microphone"], viewport={"width": 960, "height": 640}, locale="en-US"
    )
    await context.add_init_script(TEST_HOOKS)
    await context.add_init_script(CODEC_HOOK)
    page = await context.new_page()
    await page.goto(url)
    return page


async def audio_payload_types(page: Page, timeout_s: float = 20.0) -> list[int]:
    """The payload types of the audio frames the page received, once 100 (two seconds) came."""
    deadline = time.monotonic() + timeout_s
    while await page.evaluate("() => window.__audioFrames()") < 100:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    payload_types: list[int] = await page.evaluate("() => window.__audioPayloadTypes()")
    return payload_types


async def wait_audio_frames(client: ParticipantClient, owner: str, timeout_s: float = 20.0) -> int:
    """Decoded audio frames ``client`` got from ``owner``, once 50 (a second) arrived."""
    deadline = time.monotonic() + timeout_s
    while True:
        stream = client.audio_from(owner)
        frames = stream.frames if stream is not None else 0
        if frames >= 50 or time.monotonic() > deadline:
            return frames
        await asyncio.sleep(0.2)


async def test_browsers_get_red_through_the_relay_and_aiortc_gets_plain_opus(
    browser: Browser, server: RunningServer
) -> None:
    room_id = server.new_room()
    url = f"{server.base_url}/r/{room_id}"
    ada, grace = await open_page(browser, url), await open_page(browser, url)
    await join(ada, "Ada")
    await join(grace, "Grace")
    listener = ParticipantClient(server.base_url, room_id, name="aiortc", audio=None, video=None)
    try:
        await listener.join()
        await wait_hearing(grace, {"Ada"})
        # Ada's microphone reached Grace as RED: Ada sent it, the relay forwarded it untouched.
        payload_types = await audio_payload_types(grace)
        assert receives_red(payload_types), f"Chromium got payload types {payload_types}, not RED"
        ada_ids = [pid for pid, p in listener.participants.items() if p["name"] == "Ada"]
        assert len(ada_ids) == 1, listener.participants
        # The same packets, unwrapped, decode as Opus at the aiortc participant.
        assert await wait_audio_frames(listener, ada_ids[0]) >= 50, "aiortc got no playable audio"
    finally:
        await listener.close()


async def test_the_red_check_fails_on_a_call_without_red(
    browser: Browser, server: RunningServer
) -> None:
    """The check above reports plain Opus as not RED: a Chromium pair negotiated the browser's
    own way (Opus first) receives plain Opus (Chromium's 111)."""
    page = await open_page(browser, f"{server.base_url}/")
    await page.evaluate("() => window.__plainOpusPair()")
    payload_types = await audio_payload_types(page)
    assert payload_types == [111], payload_types
    assert not receives_red(payload_types)
    assert not receives_red([])
