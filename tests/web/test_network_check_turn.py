"""The pre-join network check says ``turn`` from the pair ICE selected, not from what it gathered.

Under a TURN-only policy a page gathers relay candidates only, so a page that judged from its
gathered candidates would pass tests/web/test_network_check.py's "turn" test too. Here the policy
is "all" with TURN configured (Debian's coturn, tests/support/coturn.py) and direct UDP from the
page to the relay's ICE ports (``MEETNOW_ICE_PORT_RANGE``) is dropped by an nftables table of
this test's own: the page gathers host candidates (asserted) and still must say ``turn``, its
selected pair's local candidate being ``relay``. The same setup without the drop says
``direct`` (the test of the test: the drop, not the setup, makes it ``turn``).

The rule is precise, for a machine other tests share: UDP to the relay's ICE port range (chosen
above the kernel's ephemeral ports, so no other socket has them), except from coturn's listening
port and relay ports (the relayed path and the relay's own TURN traffic), dropped at prerouting
on arrival (a send that fails with EPERM is not how a network loses packets). The table is
deleted at the end whatever happens. Needs root and ``nft``: in CI (``CI=true``, root on Debian
with nftables from scripts/test.sh) their absence fails the test, elsewhere it is skipped."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

from ..support.browser import browser
from ..support.coturn import Coturn, run_coturn
from ..support.serve_process import meetnow_serve
from .test_network_check import RUN_CHECK, check_in_page, network_result

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

ICE_PORTS = 20
"""Ports in the relay's range (a network check and a spare)."""


def nft_unavailable() -> str | None:
    """Why this test cannot drop packets here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root to add an nftables table"
    if shutil.which("nft") is None:
        return "needs nft (Debian's nftables, installed by scripts/test.sh)"
    return None


def require_nft(reason: str | None, ci: bool) -> None:
    """Fail (in CI) or skip (elsewhere) when nft cannot be used, for ``reason``."""
    if reason is not None:
        if ci:
            pytest.fail(f"CI runs as root with nftables: {reason}")
        pytest.skip(reason)


def test_without_nft_ci_fails_and_elsewhere_skips() -> None:
    """The test of the guard: a missing nft fails in CI, skips elsewhere, and passes when there."""
    with pytest.raises(pytest.fail.Exception, match="CI runs as root"):
        require_nft("needs nft", ci=True)
    with pytest.raises(pytest.skip.Exception, match="needs nft"):
        require_nft("needs nft", ci=False)
    require_nft(None, ci=True)


@pytest.fixture
def nft() -> str:
    """The nft binary; fails in CI and skips elsewhere where it cannot be used."""
    require_nft(nft_unavailable(), ci=os.environ.get("CI") == "true")
    found = shutil.which("nft")
    assert found is not None
    return found


def relay_port_range() -> tuple[int, int]:
    """A block of ports above the kernel's ephemeral range (no socket is given one unasked)."""
    ephemeral_top = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[1])
    first = ephemeral_top + 1 + secrets.randbelow(65_535 - ephemeral_top - ICE_PORTS)
    return first, first + ICE_PORTS - 1


def coturn_ports(coturn: Coturn) -> str:
    """coturn's listening port and relay port range, as an nft set."""
    command = " ".join(map(str, coturn.process.args))  # type: ignore[arg-type]
    match = re.search(r"--min-port=(\d+).*--max-port=(\d+)", command)
    assert match is not None, command
    return f"{{ {coturn.port}, {match[1]}-{match[2]} }}"


@contextlib.contextmanager
def dropped_udp(nft: str, ports: tuple[int, int], except_from: str) -> Iterator[str]:
    """An nftables table that drops UDP arriving for ``ports`` unless its source port is in
    ``except_from``; yields the table's name (its rule counts what it dropped). Deleted on exit."""
    table = f"meetnow_netcheck_{secrets.token_hex(4)}"
    script = (
        f"add table inet {table}\n"
        f"add chain inet {table} pre {{ type filter hook prerouting priority -300; }}\n"
        f"add rule inet {table} pre udp dport {ports[0]}-{ports[1]}"
        f" udp sport != {except_from} counter drop\n"
    )
    subprocess.run([nft, "-f", "-"], input=script.encode(), check=True, timeout=10)
    try:
        yield table
    finally:
        subprocess.run([nft, "delete", "table", "inet", table], check=True, timeout=10)


def dropped_packets(nft: str, table: str) -> int:
    listed = subprocess.run(
        [nft, "list", "table", "inet", table], capture_output=True, check=True, timeout=10
    ).stdout.decode()
    match = re.search(r"counter packets (\d+)", listed)
    assert match is not None, listed
    return int(match[1])


async def run_check(
    browser: Browser, tmp_path: Path, ports: tuple[int, int], coturn: Coturn
) -> Any:
    (tmp_path / "serve").mkdir(exist_ok=True)
    with meetnow_serve(
        tmp_path / "serve",
        MEETNOW_ICE_TRANSPORT_POLICY="all",
        MEETNOW_TURN_URLS=coturn.url,
        MEETNOW_TURN_SECRET=coturn.secret,
        MEETNOW_ICE_PORT_RANGE=f"{ports[0]}-{ports[1]}",
    ) as server:
        page, room_id = await check_in_page(server, browser)
        result, text = await network_result(page)
        candidate = await page.locator("#network-check").get_attribute("data-candidate")
        again: dict[str, Any] = await page.evaluate(RUN_CHECK, room_id)
        await page.context.close()
    return result, text, candidate, again


async def test_a_page_with_host_candidates_says_turn_when_only_turn_gets_through(
    browser: Browser, tmp_path: Path, nft: str
) -> None:
    ports = relay_port_range()
    (tmp_path / "coturn").mkdir()
    with run_coturn(tmp_path / "coturn") as coturn:
        with dropped_udp(nft, ports, coturn_ports(coturn)) as table:
            result, text, candidate, again = await run_check(browser, tmp_path, ports, coturn)
            dropped = dropped_packets(nft, table)
        allocations = coturn.allocations()
    assert result == "turn", text
    assert candidate == "relay"
    assert again["result"] == "turn" and again["localCandidateType"] == "relay", again
    # What a page judging from its gathered candidates would have seen: host ones, so "direct".
    assert "host" in again["gatheredTypes"], again
    assert dropped > 0, "the direct path was never tried, so never dropped"
    assert allocations >= 1, coturn.log()


async def test_the_same_setup_without_the_drop_is_direct(
    browser: Browser, tmp_path: Path, nft: str
) -> None:
    """The test of the test: with nothing dropped, the same page and servers say ``direct``, so
    the ``turn`` above comes from the dropped direct path."""
    ports = relay_port_range()
    (tmp_path / "coturn").mkdir()
    with run_coturn(tmp_path / "coturn") as coturn:
        result, text, candidate, again = await run_check(browser, tmp_path, ports, coturn)
    assert result == "direct", text
    assert candidate in ("host", "prflx", "srflx")
    assert "host" in again["gatheredTypes"], again
