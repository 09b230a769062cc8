"""deploy/ tested as it is deployed: Debian's Caddy, with deploy/Caddyfile as written (plus test-only
global options: its own internal CA, loopback ports, storage in a temporary directory), in front of
the real ``meetnow serve`` with ``MEETNOW_ICE_TRANSPORT_POLICY=relay``, and Debian's coturn reading
deploy/turnserver.conf (adapted to loopback by flags). Two headless Chromium pages open the room
over ``https://`` through Caddy and see each other's video, and both coturn's log and each page's
selected ICE candidate pair show the media went through TURN."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page

from ..conftest import REPO, free_port
from ..support.browser import TEST_HOOKS, browser, join, wait_playing
from ..support.caddy import CADDY, RunningCaddy, caddy_environment, caddy_running
from ..support.coturn import run_coturn
from ..support.serve_process import meetnow_serve

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

DEPLOY = REPO / "deploy"
START_TIMEOUT = 15.0

TEST_GLOBAL_OPTIONS = """\
# Test-only global options, put before deploy/Caddyfile: no admin endpoint, certificates from
# Caddy's own local CA (never a public one), nothing written outside the test's directory, and
# only loopback ports.
{{
	admin off
	local_certs
	skip_install_trust
	storage file_system {storage}
	http_port {http_port}
	https_port {https_port}
	auto_https disable_redirects
	default_bind 127.0.0.1
}}

"""

MEDIA_PATH_HOOKS = """
(() => {
  // Keeps every peer connection the page makes (after tests/support/page_hooks.js's wrapper).
  const peerConnections = [];
  const Wrapped = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Wrapped {
    constructor(...args) {
      super(...args);
      peerConnections.push(this);
    }
  };
  window.__deployTest = {
    // For each connected peer connection: its configured policy and the type of the local
    // candidate of the pair ICE selected ("relay": through TURN; "host": straight to the relay).
    mediaPaths: async () => {
      const paths = [];
      for (const pc of peerConnections) {
        if (pc.connectionState !== 'connected') continue;
        const stats = await pc.getStats();
        let local = null;
        for (const stat of stats.values()) {
          if (stat.type === 'transport' && stat.selectedCandidatePairId) {
            const pair = stats.get(stat.selectedCandidatePairId);
            local = pair ? stats.get(pair.localCandidateId) : null;
          }
        }
        paths.push({ policy: pc.getConfiguration().iceTransportPolicy,
                     localType: local ? local.candidateType : null });
      }
      return paths;
    },
  };
})();
"""


@contextlib.contextmanager
def run_caddy(
    directory: Path, domain: str, https_port: int, upstream: str
) -> Iterator[RunningCaddy]:
    """``caddy run`` with deploy/Caddyfile behind the test's global options; stopped by its
    process id on exit."""
    directory.mkdir()
    caddyfile = directory / "Caddyfile"
    options = TEST_GLOBAL_OPTIONS.format(
        storage=directory / "storage", http_port=free_port(), https_port=https_port
    )
    caddyfile.write_text(options + (DEPLOY / "Caddyfile").read_text())
    environment = caddy_environment(
        directory, MEETNOW_DOMAIN=f"{domain}:{https_port}", MEETNOW_UPSTREAM=upstream
    )

    def ready(caddy: RunningCaddy) -> bool:
        return "certificate obtained successfully" in caddy.log()

    url = f"https://{domain}:{https_port}"
    with caddy_running(caddyfile, environment, url, ready, START_TIMEOUT) as caddy:
        yield caddy


async def create_room(base_url: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/rooms", json={}) as response:
            assert response.status == 201, await response.text()
            room_id: str = (await response.json())["id"]
            return room_id


async def open_room_page(browser: Browser, url: str) -> Page:
    """tests/support/browser.py's ``open_room``, plus: the certificate of Caddy's internal CA is
    accepted, and the page's media path can be read."""
    context = await browser.new_context(
        locale="en-US",
        ignore_https_errors=True,
        permissions=["camera", "microphone"],
        viewport={"width": 960, "height": 640},
    )
    await context.add_init_script(TEST_HOOKS)
    await context.add_init_script(MEDIA_PATH_HOOKS)
    page = await context.new_page()
    await page.goto(url)
    return page


async def call_of_two(browser: Browser, room_url: str) -> list[list[dict[str, Any]]]:
    """Two pages join the room and play each other's video (frames advancing); returns each
    page's media paths while they play."""
    pages = [await open_room_page(browser, room_url) for _ in range(2)]
    for page, name in zip(pages, ("Ada", "Grace"), strict=True):
        await join(page, name)
    for page in pages:
        await wait_playing(page, 1)
    paths: list[list[dict[str, Any]]] = [
        await page.evaluate("() => window.__deployTest.mediaPaths()") for page in pages
    ]
    for page in pages:
        await page.context.close()
    return paths


def local_candidate_types(paths: list[list[dict[str, Any]]]) -> list[str | None]:
    return [path["localType"] for page_paths in paths for path in page_paths]


# ---------------------------------------------------------------- the recipe's files


def test_deploy_caddyfile_validates(tmp_path: Path) -> None:
    done = subprocess.run(
        [CADDY, "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        env=caddy_environment(tmp_path, MEETNOW_DOMAIN="meet.example.org"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Valid configuration" in done.stdout + done.stderr


def test_caddy_validate_rejects_a_broken_caddyfile(tmp_path: Path) -> None:
    # The test of the test above: validate does fail on a mistake (a misspelt directive).
    broken = tmp_path / "Caddyfile"
    broken.write_text((DEPLOY / "Caddyfile").read_text().replace("reverse_proxy", "reverse_prxy"))
    done = subprocess.run(
        [CADDY, "validate", "--config", str(broken), "--adapter", "caddyfile"],
        env=caddy_environment(tmp_path, MEETNOW_DOMAIN="meet.example.org"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert "reverse_prxy" in done.stderr


# ---------------------------------------------------------------- a call, as deployed


async def test_call_over_https_through_caddy_with_media_only_through_coturn(
    browser: Browser, tmp_path: Path
) -> None:
    https_port = free_port()
    domain = "meetnow.localhost"  # Chromium resolves *.localhost to loopback by itself
    public_url = f"https://{domain}:{https_port}"
    (tmp_path / "coturn").mkdir()
    (tmp_path / "meetnow").mkdir()
    with run_coturn(tmp_path / "coturn", config=DEPLOY / "turnserver.conf") as coturn:
        settings = {
            "MEETNOW_PUBLIC_URL": public_url,
            "MEETNOW_TRUST_FORWARDED_FOR": "true",
            "MEETNOW_ICE_TRANSPORT_POLICY": "relay",
            "MEETNOW_TURN_URLS": coturn.url,
            "MEETNOW_TURN_SECRET": coturn.secret,
            "MEETNOW_RELAY_WORKERS": "1",
        }
        with meetnow_serve(tmp_path / "meetnow", **settings) as server:
            upstream = server.base_url.removeprefix("http://")
            with run_caddy(tmp_path / "caddy", domain, https_port, upstream):
                room_id = await create_room(server.base_url)
                paths = await call_of_two(browser, f"{public_url}/r/{room_id}")
        allocations = coturn.allocations()
    assert [path["policy"] for page_paths in paths for path in page_paths] == ["relay"] * 2
    assert local_candidate_types(paths) == ["relay", "relay"], paths
    assert allocations >= 2, coturn.log()


async def test_without_turn_media_goes_direct_and_coturn_grants_nothing(
    browser: Browser, tmp_path: Path
) -> None:
    # The test of the test above: the same call with policy "all" and no TURN server given to
    # anyone. Its checks must see it: host candidates, and no allocation in coturn's log.
    (tmp_path / "coturn").mkdir()
    (tmp_path / "meetnow").mkdir()
    with run_coturn(tmp_path / "coturn", config=DEPLOY / "turnserver.conf") as coturn:
        with meetnow_serve(tmp_path / "meetnow", MEETNOW_RELAY_WORKERS="1") as server:
            room_id = await create_room(server.base_url)
            paths = await call_of_two(browser, f"{server.base_url}/r/{room_id}")
        allocations = coturn.allocations()
    assert [path["policy"] for page_paths in paths for path in page_paths] == ["all"] * 2
    assert local_candidate_types(paths) == ["host", "host"], paths
    assert allocations == 0, coturn.log()
