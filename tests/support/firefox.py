"""Headless Firefox (Debian's ``firefox-esr``) driven over WebDriver BiDi: no geckodriver, no extra
package, only a websocket (aiohttp) to the browser's own remote agent.

``launch_firefox()`` starts the browser with a fresh profile whose ``user.js`` makes it a test
participant (fake camera and microphone, no permission prompt, loopback ICE candidates, autoplay
allowed); ``Firefox.new_page()`` opens a tab with the test hooks (``page_hooks.js``) installed as a
preload script, so the probes of ``tests/support/browser.py`` read the same ``window.__meetnowTest``
as in Chromium. Scripts are function strings called with ``script.callFunction``; arguments and
results travel as JSON, so a probe returns plain data. Leaving the ``async with`` kills the
browser's whole process group and removes the profile, whatever happened inside.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .browser import (
    FRAMES_PER_WINDOW,
    PLAYING_NOW,
    WINDOW_MS,
    AudioFlow,
    AudioSample,
    TileFrames,
    VideoCheck,
    frames_per_second,
    video_verdict,
)

FIREFOX = shutil.which("firefox-esr") or "/usr/bin/firefox-esr"
START_TIMEOUT_S = 60.0
"""Generous: a cold start on a loaded 2-core machine takes seconds."""
COMMAND_TIMEOUT_S = 60.0

TEST_HOOKS = (Path(__file__).parent / "page_hooks.js").read_text()

PREFS: dict[str, bool | int | str] = {
    # A test participant: fake camera and microphone, granted without a prompt.
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "permissions.default.camera": 1,
    "permissions.default.microphone": 1,
    # getDisplayMedia on (the default). Headless Firefox has no screen to capture: with a user
    # activation (``click_button``) it fails with NotFoundError, its fake devices being cameras
    # and microphones only; tests/web/test_firefox.py stands a canvas in for the picker.
    "media.getdisplaymedia.enabled": True,
    # ICE over loopback, with real addresses rather than mDNS names.
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    # Remote media plays without a user gesture (script clicks give no user activation).
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    # English pages whatever the machine's LANG (the page follows navigator.languages).
    "intl.accept_languages": "en-US",
    # Quiet: no first-run pages, no update or telemetry traffic from a test browser.
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "app.update.auto": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
}

LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")


def firefox_or_skip() -> str:
    """The Firefox binary; a missing one skips the test here, but fails it in CI, where
    scripts/test.sh installs it."""
    if Path(FIREFOX).exists():
        return FIREFOX
    if os.environ.get("CI") == "true":
        pytest.fail("firefox-esr is missing in CI: scripts/test.sh installs it")
    pytest.skip("firefox-esr is not installed (scripts/test.sh installs it)")


class BiDiError(Exception):
    """The browser answered a command with an error, or a script threw."""


@dataclass
class FirefoxPage:
    """One tab (a top-level browsing context)."""

    browser: Firefox
    context: str

    async def goto(self, url: str) -> None:
        await self.browser.command(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    async def call(self, function: str, *args: Any, user_gesture: bool = False) -> Any:
        """Call ``function`` (a JavaScript function's source) in the page with ``args``, await
        what it returns, and return that as JSON data (``undefined`` becomes ``None``). With
        ``user_gesture``, the call runs with transient user activation, as in a click handler
        (what ``getDisplayMedia`` requires in Firefox)."""
        wrapper = (
            "async (json) => { const result = await (" + function + ")(...JSON.parse(json));"
            " return result === undefined ? 'null' : JSON.stringify(result); }"
        )
        reply = await self.browser.command(
            "script.callFunction",
            {
                "functionDeclaration": wrapper,
                "arguments": [{"type": "string", "value": json.dumps(list(args))}],
                "target": {"context": self.context},
                "awaitPromise": True,
                "userActivation": user_gesture,
            },
        )
        if reply.get("type") == "exception":
            details = reply.get("exceptionDetails", {})
            raise BiDiError(f"script threw: {details.get('text', details)}")
        return json.loads(reply["result"]["value"])

    async def wait_for(
        self, function: str, *args: Any, timeout_s: float = 20.0, poll_s: float = 0.1
    ) -> Any:
        """Call ``function`` until it returns something truthy; return that. Past the deadline,
        fail with the last value it returned."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.call(function, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"still {value!r} after {timeout_s:.0f} s: {function}")
            await asyncio.sleep(poll_s)

    async def click_button(self, name: str) -> None:
        """Click the enabled, visible button whose accessible text is exactly ``name``, with the
        user activation a real click gives (``getDisplayMedia`` in Firefox needs it)."""
        clicked = await self.call(
            """(name) => {
              const button = Array.from(document.querySelectorAll('button')).find((b) =>
                !b.disabled && b.getClientRects().length > 0 &&
                (b.getAttribute('aria-label') ?? b.textContent).trim() === name);
              if (!button) return false;
              button.click();
              return true;
            }""",
            name,
            user_gesture=True,
        )
        if not clicked:
            raise AssertionError(f"no visible button named {name!r}")

    async def fill(self, label: str, value: str) -> None:
        """Type ``value`` into the field labelled ``label`` (an ``input`` event, as typing sends)."""
        filled = await self.call(
            """(label, value) => {
              const found = Array.from(document.querySelectorAll('label'))
                .find((l) => l.textContent.trim() === label);
              const input = found && found.control;
              if (!input) return false;
              input.value = value;
              input.dispatchEvent(new Event('input', { bubbles: true }));
              return true;
            }""",
            label,
            value,
        )
        if not filled:
            raise AssertionError(f"no field labelled {label!r}")

    async def now(self) -> float:
        """The page clock (``performance.now()``, ms)."""
        now: float = await self.call("() => performance.now()")
        return now


@dataclass
class Firefox:
    """A running Firefox and its BiDi session."""

    process: asyncio.subprocess.Process
    websocket: aiohttp.ClientWebSocketResponse
    profile: Path
    """The temporary profile (removed, with the rest of the browser's scratch files, at the end)."""
    stderr: list[str] = field(default_factory=list)
    """What the browser printed on stderr, for failure messages."""
    _pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one BiDi command; return its result or raise ``BiDiError``."""
        command_id = next(self._ids)
        reply = asyncio.get_running_loop().create_future()
        self._pending[command_id] = reply
        await self.websocket.send_json({"id": command_id, "method": method, "params": params})
        try:
            return await asyncio.wait_for(reply, COMMAND_TIMEOUT_S)
        finally:
            self._pending.pop(command_id, None)

    async def read_replies(self) -> None:
        """Hand each reply to the command waiting for it (events are not used)."""
        async for message in self.websocket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            reply = self._pending.get(data.get("id", -1))
            if reply is None or reply.done():
                continue
            if data.get("type") == "error":
                reply.set_exception(BiDiError(f"{data.get('error')}: {data.get('message')}"))
            else:
                reply.set_result(data.get("result", {}))
        for reply in self._pending.values():
            if not reply.done():
                reply.set_exception(BiDiError(f"the browser closed the session: {self.stderr}"))

    async def new_page(self, url: str, *, preload: str | None = None) -> FirefoxPage:
        """A new tab with the test hooks, at ``url``. ``preload`` (a script's source) runs in
        this tab only, after the hooks and before the page's own scripts: e.g. to take a web
        platform feature away, as ``DENY_MEDIA`` does in Chromium."""
        created = await self.command("browsingContext.create", {"type": "tab"})
        page = FirefoxPage(self, created["context"])
        if preload is not None:
            await self.command(
                "script.addPreloadScript",
                {"functionDeclaration": "() => {\n" + preload + "\n}", "contexts": [page.context]},
            )
        await page.goto(url)
        return page


async def install_test_hooks(browser: Firefox) -> None:
    """``page_hooks.js`` before every page's own scripts, in the page's own realm (as
    Playwright's ``add_init_script`` does for Chromium)."""
    await browser.command(
        "script.addPreloadScript", {"functionDeclaration": "() => {\n" + TEST_HOOKS + "\n}"}
    )


def write_profile(profile: Path) -> None:
    lines = [
        f"user_pref({json.dumps(name)}, {json.dumps(value)});" for name, value in PREFS.items()
    ]
    (profile / "user.js").write_text("\n".join(lines) + "\n")


async def bidi_url(process: asyncio.subprocess.Process, stderr: list[str]) -> str:
    """Read the browser's stderr until it says where its BiDi server listens."""
    assert process.stderr is not None
    async with asyncio.timeout(START_TIMEOUT_S):
        while line := (await process.stderr.readline()).decode(errors="replace"):
            stderr.append(line)
            if found := LISTENING.search(line):
                return found.group(1)
    raise AssertionError(f"Firefox exited before its BiDi server listened: {''.join(stderr)}")


async def drain(stream: asyncio.StreamReader | None, lines: list[str]) -> None:
    """Keep reading the browser's output, so it never blocks on a full pipe."""
    while stream is not None and (line := await stream.readline()):
        lines.append(line.decode(errors="replace"))
        del lines[:-200]


def group_running(group: int) -> bool:
    """Whether any live (not zombie) process is left in process group ``group``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False


def kill_group(process: asyncio.subprocess.Process) -> None:
    """Kill the browser and its content processes (their own process group, started here)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def launch_firefox() -> AsyncIterator[Firefox]:
    """Headless Firefox with a temporary profile and the test hooks, ready for ``new_page``.
    Used as ``async with launch_firefox() as firefox:`` inside a test, rather than as a fixture, so
    a test can time the start and check what the end leaves behind."""
    binary = firefox_or_skip()
    with tempfile.TemporaryDirectory(prefix="meetnow-firefox-") as scratch:
        profile, home = Path(scratch, "profile"), Path(scratch, "home")
        profile.mkdir()
        home.mkdir()
        write_profile(profile)
        process = await asyncio.create_subprocess_exec(
            binary,
            "--headless",
            "--no-remote",
            "--profile",
            str(profile),
            "--remote-debugging-port=0",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOME": str(home), "MOZ_HEADLESS": "1"},
            start_new_session=True,
        )
        stderr: list[str] = []
        tasks: list[asyncio.Task[None]] = []
        try:
            url = await bidi_url(process, stderr)
            tasks.append(asyncio.create_task(drain(process.stderr, stderr)))
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(f"{url}/session", max_msg_size=0) as websocket,
            ):
                browser = Firefox(process, websocket, profile, stderr)
                tasks.append(asyncio.create_task(browser.read_replies()))
                await browser.command("session.new", {"capabilities": {}})
                await install_test_hooks(browser)
                yield browser
        finally:
            kill_group(process)
            await process.wait()
            # Its content processes die with it; wait for them before the profile goes.
            deadline = time.monotonic() + 10.0
            while group_running(process.pid) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


# ------------------------------------------------ probes (the page half is page_hooks.js)
# The same checks as tests/support/browser.py's, asked through BiDi instead of Playwright.


async def wait_playing(page: FirefoxPage, count: int, timeout_s: float = 30.0) -> None:
    """Wait until the page shows exactly ``count`` remote tiles, each presenting at least
    ``FRAMES_PER_WINDOW`` new frames within the last ``WINDOW_MS``."""
    await page.wait_for(PLAYING_NOW, [count, FRAMES_PER_WINDOW, WINDOW_MS], timeout_s=timeout_s)


async def remote_frames(page: FirefoxPage) -> list[TileFrames]:
    rows: list[dict[str, Any]] = await page.call("() => window.__meetnowTest.remoteFrames()")
    return [TileFrames(row["name"], row["times"], row["counts"], row["videoWidth"]) for row in rows]


async def watch_videos(page: FirefoxPage, seconds: float) -> VideoCheck:
    """Watch every remote tile for ``seconds`` and judge each by ``video_verdict``."""
    start = await page.now()
    await asyncio.sleep(seconds)
    end = await page.now()
    tiles = await remote_frames(page)
    return VideoCheck(
        {tile.name: video_verdict(tile, start, end) for tile in tiles},
        {tile.name: frames_per_second(tile, start, end) for tile in tiles},
    )


async def remote_audio(page: FirefoxPage) -> dict[str, AudioSample]:
    rows: list[dict[str, Any]] = await page.call("() => window.__meetnowTest.remoteAudio()")
    return {
        row["name"]: AudioSample(int(row["packets"]), row["energy"], row["level"]) for row in rows
    }


async def wait_hearing(
    page: FirefoxPage, names: set[str], timeout_s: float = 20.0
) -> dict[str, AudioFlow]:
    """Wait until the page hears each of ``names`` (packets advancing, energy rising, a level
    above zero: ``AudioFlow.heard``); return what it heard."""
    first: dict[str, AudioSample] = {}
    peaks: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        flows = {}
        for name, sample in (await remote_audio(page)).items():
            start = first.setdefault(name, sample)
            peak = peaks[name] = max(peaks.get(name, 0.0), sample.level)
            flows[name] = AudioFlow(
                sample.packets - start.packets, sample.energy - start.energy, peak
            )
        if all(name in flows and flows[name].heard for name in names):
            return flows
        if time.monotonic() > deadline:
            raise AssertionError(f"not heard: {sorted(names)}; audio seen: {flows}")
        await asyncio.sleep(0.1)
