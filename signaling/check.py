"""``meetnow check``: the self-test an operator runs on the server, with the server's settings.

Each check is real: the public URL is fetched as a browser would (through the reverse proxy and
its TLS), the ICE port range is bound, each TURN server is sent a real Allocate with a credential
minted the way ``meetnow serve`` mints them, and two participants make a call through the relay.
One line per check, with the fix on a failure; the exit code is 1 if any check failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint

from .settings import Settings

__all__ = [
    "CheckResult",
    "TurnTarget",
    "check_call",
    "check_port_range",
    "check_public_url",
    "check_turn",
    "main",
    "port_range_of",
    "run_checks",
    "turn_targets",
]

Status = Literal["ok", "FAIL", "skip"]

LANDING_MARKER = b"<title>meetnow</title>"
"""What the landing page of meetnow carries and a proxy's default page does not."""

CALL_FRAMES = 10
"""Video frames each participant of the loopback call must receive from the other."""

CHECK_USER = "meetnow-check"
"""The user part of the TURN credential the check mints (``expiry:meetnow-check``)."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: what was seen and, on a failure, what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def line(self) -> str:
        text = f"{self.status:<5} {self.name}: {self.detail}"
        return f"{text}. Fix: {self.fix}" if self.failed and self.fix else text


def _ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "ok", detail)


def _fail(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, "FAIL", detail, fix)


# ---------------------------------------------------------------- public URL


async def check_public_url(base_url: str, timeout: float) -> CheckResult:
    """``GET /healthz`` answers ok and ``GET /`` is meetnow's landing page."""
    name = f"public URL {base_url}"
    unreachable_fix = (
        "start meetnow serve (and the reverse proxy in front of it), open TCP 443 (and 80 for "
        "the certificate) in the firewall, and set MEETNOW_PUBLIC_URL to the address users open"
    )
    wrong_site_fix = (
        "point the reverse proxy at meetnow (reverse_proxy 127.0.0.1:8080 in deploy/Caddyfile) "
        "and set MEETNOW_PUBLIC_URL to the address users open"
    )
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    try:
        async with aiohttp.ClientSession(timeout=client_timeout) as http:
            async with http.get(f"{base_url}/healthz", allow_redirects=False) as response:
                health_status = response.status
                health = await response.text()
            async with http.get(f"{base_url}/", allow_redirects=False) as response:
                landing_status = response.status
                landing = await response.read()
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        reason = str(error) or type(error).__name__
        return _fail(name, f"cannot fetch it ({reason})", unreachable_fix)
    if health_status == 421 or landing_status == 421:
        return _fail(
            name,
            "meetnow refuses this host name (421)",
            "set MEETNOW_PUBLIC_URL to exactly this URL (or add it to MEETNOW_ALLOWED_ORIGINS)",
        )
    if health_status == 503:
        return _fail(name, f"meetnow says it is unhealthy: {health.strip()[:200]}", "see its log")
    if health_status != 200 or '"ok"' not in health:
        return _fail(
            name, f"GET /healthz answered {health_status}, not meetnow's ok", wrong_site_fix
        )
    if landing_status != 200 or LANDING_MARKER not in landing:
        return _fail(
            name, f"GET / answered {landing_status} without meetnow's page", wrong_site_fix
        )
    return _ok(name, "answers GET /healthz and serves meetnow's page")


# ---------------------------------------------------------------- ICE port range


def port_range_of(settings: Settings) -> tuple[int, int] | None:
    """``MEETNOW_ICE_PORT_RANGE`` as (first, last), or None when it is not set."""
    value: Any = getattr(settings, "ice_port_range", None)
    if value is None:
        return None
    first, last = value
    return int(first), int(last)


def _bind_error(address: str, port: int) -> int | None:
    """The errno of binding UDP ``address:port`` (None: it could be bound)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((address, port))
        except OSError as error:
            return error.errno or -1
    return None


def check_port_range(settings: Settings) -> CheckResult:
    """Every UDP port of the range can be bound on each ICE address, or is in use (by the
    relay, if meetnow is running); at least one is free for the next participant."""
    span = port_range_of(settings)
    if span is None:
        return CheckResult(
            "ICE port range",
            "skip",
            "MEETNOW_ICE_PORT_RANGE is not set: the relay uses the OS's ephemeral UDP ports",
        )
    first, last = span
    name = f"ICE port range {first}-{last}"
    # No ICE addresses set: aioice binds each interface's address; the wildcard covers them all.
    addresses = settings.ice_host_addresses or ["0.0.0.0"]  # noqa: S104
    free = in_use = 0
    for address in addresses:
        for port in range(first, last + 1):
            code = _bind_error(address, port)
            if code is None:
                free += 1
            elif code == errno.EADDRINUSE:
                in_use += 1
            else:
                return _fail(
                    name,
                    f"cannot bind UDP {address}:{port} ({errno.errorcode.get(code, code)})",
                    "list only this machine's own addresses in MEETNOW_ICE_HOST_ADDRESSES, and "
                    "choose ports above 1024 in MEETNOW_ICE_PORT_RANGE",
                )
    where = ", ".join(addresses)
    if free == 0:
        return _fail(
            name,
            f"every port ({in_use}) on {where} is in use",
            "widen MEETNOW_ICE_PORT_RANGE or stop what holds those ports",
        )
    return _ok(name, f"{free} UDP ports free on {where}, {in_use} in use")


# ---------------------------------------------------------------- TURN


@dataclass(frozen=True)
class TurnTarget:
    """One TURN server URL and the credential the check tries on it."""

    url: str
    host: str
    port: int
    transport: Literal["udp", "tcp"]
    secure: bool
    username: str
    credential: str
    minted: bool
    """Whether the credential was minted from ``MEETNOW_TURN_SECRET`` (else: configured)."""


def parse_turn_url(url: str) -> tuple[str, int, Literal["udp", "tcp"], bool]:
    """``turn:host:port?transport=udp`` as (host, port, transport, TLS)."""
    scheme, _, rest = url.partition(":")
    secure = scheme == "turns"
    if scheme not in ("turn", "turns"):
        raise ValueError(f"not a TURN URL: {url}")
    where, _, query = rest.partition("?")
    parts = urlsplit(f"//{where}")
    if not parts.hostname:
        raise ValueError(f"no host in TURN URL: {url}")
    transport = parse_qs(query).get("transport", ["tcp" if secure else "udp"])[0].lower()
    if transport not in ("udp", "tcp"):
        raise ValueError(f"unknown transport in TURN URL: {url}")
    port = parts.port or (5349 if secure else 3478)
    return parts.hostname, port, "udp" if transport == "udp" else "tcp", secure


def turn_targets(settings: Settings, now: float) -> list[TurnTarget]:
    """Every TURN URL browsers are given: ``MEETNOW_TURN_URLS`` with a credential minted as
    ``meetnow serve`` mints them, and ``turn:`` URLs of ``MEETNOW_ICE_SERVERS`` with theirs."""
    from .server import turn_credentials

    found: list[tuple[str, str, str, bool]] = []
    secret = settings.turn_secret
    if settings.turn_urls and secret is not None:
        expires_at = now + settings.turn_ttl_seconds
        username, credential = turn_credentials(secret.get_secret_value(), CHECK_USER, expires_at)
        found += [(url, username, credential, True) for url in settings.turn_urls]
    for server in settings.ice_servers:
        for url in server.urls:
            if url.startswith(("turn:", "turns:")):
                found.append((url, server.username or "", server.credential or "", False))
    targets = []
    for url, username, credential, minted in found:
        host, port, transport, secure = parse_turn_url(url)
        targets.append(TurnTarget(url, host, port, transport, secure, username, credential, minted))
    return targets


class _AllocationWatch(asyncio.DatagramProtocol):
    """Receives nothing; tells when the allocation is gone."""

    def __init__(self) -> None:
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.gone.done():
            self.gone.set_result(None)


async def _allocate(target: TurnTarget, timeout: float) -> tuple[str, int]:
    """A real TURN Allocate (aioice's client: 401 challenge, then the credential); the
    allocation is deleted again. Returns the relayed address."""
    tls: ssl.SSLContext | None = ssl.create_default_context() if target.secure else None
    transport, watch = await asyncio.wait_for(
        create_turn_endpoint(
            _AllocationWatch,
            (target.host, target.port),
            username=target.username,
            password=target.credential,
            lifetime=60,
            ssl=tls,
            transport=target.transport,
        ),
        timeout,
    )
    relayed: tuple[str, int] = transport.get_extra_info("sockname")
    transport.close()  # deletes the allocation (a Refresh with lifetime 0)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(watch.gone, timeout)
    return relayed


async def check_turn(target: TurnTarget, timeout: float) -> CheckResult:
    """The TURN server grants an allocation to the credential."""
    name = f"TURN {target.url}"
    secret_fix = (
        "MEETNOW_TURN_SECRET must equal static-auth-secret in turnserver.conf (with "
        "use-auth-secret on), and both machines' clocks must be right"
        if target.minted
        else "fix this server's username and credential in MEETNOW_ICE_SERVERS"
    )
    try:
        relayed = await _allocate(target, timeout)
    except TransactionFailed as error:
        code, reason = error.response.attributes.get("ERROR-CODE", (0, "no reason"))
        credential = "a freshly minted credential" if target.minted else "the credential"
        fix = secret_fix if code in (401, 437, 441) else "see the TURN server's log"
        return _fail(name, f"refused {credential} ({code} {reason})", fix)
    except TimeoutError:
        proto = "UDP" if target.transport == "udp" else "TCP"
        return _fail(
            name,
            f"no answer within {timeout:g} s",
            f"start the TURN server (coturn), open {proto} {target.port} in its firewall, and "
            "check the host name in the URL",
        )
    except (OSError, ConnectionError, ssl.SSLError) as error:
        return _fail(
            name,
            f"cannot reach it ({error})",
            "check the host and port in the URL, and that coturn listens there",
        )
    return _ok(name, f"granted an allocation (relayed address {relayed[0]}:{relayed[1]})")


# ---------------------------------------------------------------- a call through the relay


async def _create_room(base_url: str, timeout: float) -> str:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
        body = {"topic": "meetnow check"}
        async with http.post(f"{base_url}/api/rooms", json=body) as response:
            if response.status != 201:
                raise RuntimeError(f"POST /api/rooms answered {response.status}")
            room_id: str = (await response.json())["id"]
            return room_id


async def check_call(base_url: str, timeout: float) -> CheckResult:
    """Two participants on this machine join a new room through the public URL; each must
    receive ``CALL_FRAMES`` video frames from the other through the relay."""
    from .client import ParticipantClient, PatternVideoTrack

    name = "call through the relay"
    fix = (
        "the relay's UDP ports must be reachable: set MEETNOW_ICE_HOST_ADDRESSES (or "
        "MEETNOW_ICE_PUBLIC_ADDRESS behind a 1:1 NAT) and open MEETNOW_ICE_PORT_RANGE (UDP) in "
        "the firewall"
    )
    try:
        room_id = await _create_room(base_url, timeout)
    except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError) as error:
        return _fail(name, f"cannot create a room ({error})", "see the public URL check")
    clients = [
        ParticipantClient(
            base_url, room_id, name=f"check {index}", video=PatternVideoTrack(160, 120, 15)
        )
        for index in (1, 2)
    ]
    started = time.monotonic()
    try:
        for client in clients:
            await client.join(timeout)
        received = await _wait_for_frames(clients, started + timeout)
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        return _fail(name, f"cannot join ({error or type(error).__name__})", fix)
    finally:
        for client in clients:
            await client.close()
    if min(received) < CALL_FRAMES:
        return _fail(
            name,
            f"no media within {timeout:g} s (video frames received: {received[0]} and "
            f"{received[1]})",
            fix,
        )
    elapsed = time.monotonic() - started
    return _ok(name, f"video both ways ({received[0]} and {received[1]} frames in {elapsed:.1f} s)")


async def _wait_for_frames(clients: list[Any], deadline: float) -> list[int]:
    """Frames each client received from the other, once both have ``CALL_FRAMES`` or at the
    deadline."""
    first, second = clients

    def received() -> list[int]:
        counts = []
        for client, other in ((first, second), (second, first)):
            stream = client.video_from(other.participant_id or "")
            counts.append(stream.frames if stream is not None else 0)
        return counts

    while True:
        counts = received()
        if min(counts) >= CALL_FRAMES or time.monotonic() >= deadline:
            return counts
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- all of them


async def run_checks(
    settings: Settings, base_url: str, timeout: float, report: Callable[[CheckResult], None]
) -> list[CheckResult]:
    """Every check, in order, each reported as soon as it is done."""
    results: list[CheckResult] = []

    def done(result: CheckResult) -> None:
        results.append(result)
        report(result)

    public = await check_public_url(base_url, timeout)
    done(public)
    done(check_port_range(settings))
    try:
        targets = turn_targets(settings, time.time())
    except ValueError as error:
        done(_fail("TURN", str(error), "fix MEETNOW_TURN_URLS or MEETNOW_ICE_SERVERS"))
        targets = []
    if not targets:
        done(CheckResult("TURN", "skip", "no TURN server configured (MEETNOW_TURN_URLS)"))
    for target in targets:
        done(await check_turn(target, timeout))
    if public.failed:
        done(CheckResult("call through the relay", "skip", "the public URL does not answer"))
    else:
        done(await check_call(base_url, timeout))
    return results


def main(settings: Settings, base_url: str | None, timeout: float) -> int:
    """``meetnow check``: print one line per check; 1 if any failed, else 0."""
    from .aiortc_hooks import set_host_addresses

    url = (base_url or settings.base_url()).rstrip("/")
    print(f"meetnow check: {url}", flush=True)
    # The call's participants gather ICE candidates where the relay does.
    set_host_addresses(settings.ice_host_addresses)
    results = asyncio.run(
        run_checks(settings, url, timeout, lambda result: print(result.line(), flush=True))
    )
    failures = sum(result.failed for result in results)
    print("all checks passed" if not failures else f"{failures} check(s) failed", flush=True)
    return 1 if failures else 0
