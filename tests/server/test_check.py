"""``meetnow check`` against real servers: each failure mode an operator meets (public URL down or
not meetnow, TURN with a wrong secret or unreachable, an ICE port range that cannot be bound), and
every check passing against a running ``meetnow serve`` and Debian's coturn."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from signaling.check import (
    CHECK_USER,
    CheckResult,
    TurnTarget,
    check_port_range,
    check_public_url,
    check_turn,
    turn_targets,
)
from signaling.settings import Settings

from ..conftest import free_port
from ..support.coturn import Coturn, free_udp_port, run_coturn
from ..support.serve_process import clean_environment, meetnow_command, meetnow_serve

CHECK_TIMEOUT = 20.0
"""Seconds the whole ``meetnow check`` command may take in a test."""


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def minted_target(coturn: Coturn, secret: str) -> TurnTarget:
    [target] = turn_targets(settings(turn_urls=[coturn.url], turn_secret=secret), time.time())
    return target


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    with run_coturn(tmp_path) as running:
        yield running


# ---------------------------------------------------------------- public URL


async def test_public_url_down_fails_with_the_fix() -> None:
    result = await check_public_url(f"http://127.0.0.1:{free_port()}", timeout=3)
    assert result.failed, result
    assert "cannot fetch" in result.detail
    assert "MEETNOW_PUBLIC_URL" in result.fix


async def _serve_app(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def proxy_default_site() -> AsyncIterator[str]:
    """What a reverse proxy pointed at the wrong place answers: its own page everywhere."""

    async def default_page(request: web.Request) -> web.Response:
        return web.Response(text="<title>Welcome to nginx!</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", default_page)
    async for url in _serve_app(app):
        yield url


@pytest.fixture
async def healthy_lookalike() -> AsyncIterator[str]:
    """Another service with a health endpoint that says ok, and a page of its own."""

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<title>Grafana</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/healthz", health)
    app.router.add_get("/", page)
    async for url in _serve_app(app):
        yield url


async def test_public_url_that_is_not_meetnow_fails(proxy_default_site: str) -> None:
    result = await check_public_url(proxy_default_site, timeout=3)
    assert result.failed, result
    assert "/healthz" in result.detail
    assert "reverse_proxy" in result.fix


async def test_public_url_with_a_lookalike_health_endpoint_fails(healthy_lookalike: str) -> None:
    result = await check_public_url(healthy_lookalike, timeout=3)
    assert result.failed, result
    assert "without meetnow's page" in result.detail


# ---------------------------------------------------------------- TURN


async def test_turn_with_the_right_secret_grants_an_allocation(coturn: Coturn) -> None:
    result = await check_turn(minted_target(coturn, coturn.secret), timeout=5)
    assert result.status == "ok", result.line()
    assert coturn.allocations() == 1, coturn.log()


async def test_turn_with_a_wrong_secret_fails_naming_the_setting(coturn: Coturn) -> None:
    result = await check_turn(minted_target(coturn, "not-the-secret"), timeout=5)
    assert result.failed, result
    assert "401" in result.detail
    assert "MEETNOW_TURN_SECRET" in result.fix and "static-auth-secret" in result.fix
    # coturn really saw the credential and refused it, and granted nothing.
    assert coturn.refused_credentials() == ["401"], coturn.log()
    assert coturn.allocations() == 0


async def test_turn_that_does_not_answer_fails_with_the_firewall_fix() -> None:
    url = f"turn:127.0.0.1:{free_udp_port()}?transport=udp"
    [target] = turn_targets(settings(turn_urls=[url], turn_secret="s"), time.time())
    started = time.monotonic()
    result = await check_turn(target, timeout=1.5)
    assert result.failed, result
    assert "no answer within 1.5 s" in result.detail
    assert "UDP" in result.fix and "firewall" in result.fix
    assert time.monotonic() - started < 5  # the check's own timeout, not aioice's 30 s of retries


# ---------------------------------------------------------------- ICE port range


def test_port_range_held_by_another_program_fails() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        held = settings(ice_host_addresses=["127.0.0.1"], ice_port_range=f"{port}-{port}")
        result = check_port_range(held)
    assert result.failed, result
    assert "every port (1) on 127.0.0.1 is in use" in result.detail
    assert "MEETNOW_ICE_PORT_RANGE" in result.fix


def test_port_range_on_an_address_of_another_machine_fails() -> None:
    # TEST-NET-2 (documentation addresses): not an address of this machine.
    address = "198.51.100.7"
    other = settings(ice_host_addresses=[address], ice_port_range="40000-40009")
    result = check_port_range(other)
    assert result.failed, result
    assert f"cannot bind UDP {address}:40000 (EADDRNOTAVAIL)" in result.detail
    assert "MEETNOW_ICE_HOST_ADDRESSES" in result.fix


def test_port_range_unset_is_skipped_not_passed() -> None:
    result = check_port_range(settings())
    assert result.status == "skip"


# ---------------------------------------------------------------- the command


def run_check(directory: Path, **environment: str) -> tuple[int, list[str]]:
    """``meetnow check`` as an operator runs it, with this environment; its exit code and
    lines."""
    done = subprocess.run(
        [*meetnow_command(), "check", "--timeout", "8"],
        cwd=directory,
        env=clean_environment(directory, **environment),
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).splitlines()


def line_of(lines: list[str], name: str) -> str:
    [found] = [line for line in lines if line[6:].startswith(name)]  # after "ok    " / "FAIL  "
    return found


def test_every_check_passes_against_meetnow_and_coturn(tmp_path: Path, coturn: Coturn) -> None:
    first = min(free_udp_port(), 65535 - 19)
    environment = {
        "MEETNOW_TURN_URLS": coturn.url,
        "MEETNOW_TURN_SECRET": coturn.secret,
        "MEETNOW_ICE_PORT_RANGE": f"{first}-{first + 19}",
        "MEETNOW_RELAY_WORKERS": "1",
    }
    with meetnow_serve(tmp_path, **environment) as server:
        code, lines = run_check(
            tmp_path,
            MEETNOW_PUBLIC_URL=server.base_url,
            MEETNOW_ICE_HOST_ADDRESSES="127.0.0.1",
            **environment,
        )
    assert code == 0, "\n".join(lines)
    assert line_of(lines, "public URL").startswith("ok")
    assert line_of(lines, "ICE port range").startswith("ok")
    assert line_of(lines, "TURN").startswith("ok")
    assert line_of(lines, "call through the relay").startswith("ok")
    assert lines[-1] == "all checks passed"
    # The TURN check's own allocation (the call's participants may allocate too).
    assert f":{CHECK_USER}>: incoming packet ALLOCATE processed, success" in coturn.log()


def test_a_failed_check_makes_the_command_fail(tmp_path: Path, coturn: Coturn) -> None:
    # The test of the test above: the same command, exit code and lines, with the public URL
    # down and a wrong TURN secret.
    code, lines = run_check(
        tmp_path,
        MEETNOW_PUBLIC_URL=f"http://127.0.0.1:{free_port()}",
        MEETNOW_TURN_URLS=coturn.url,
        MEETNOW_TURN_SECRET="not-the-secret",
    )
    assert code == 1, "\n".join(lines)
    assert line_of(lines, "public URL").startswith("FAIL")
    assert "Fix: " in line_of(lines, "public URL")
    assert line_of(lines, "TURN").startswith("FAIL")
    assert line_of(lines, "call through the relay").startswith("skip")
    assert lines[-1] == "2 check(s) failed"


def test_result_lines_name_the_fix_only_on_failure() -> None:
    assert CheckResult("x", "ok", "fine", "never shown").line() == "ok    x: fine"
    assert CheckResult("x", "FAIL", "broken", "do this").line() == "FAIL  x: broken. Fix: do this"
