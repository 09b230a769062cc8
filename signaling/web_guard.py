"""What every HTTP request meets before a handler: the names this server answers to, the security
headers on every response (aiohttp's own low-level errors included), a redacted server log, and
the list of static files there are to serve.

Kept out of ``server.py`` so the handlers read as the API they are.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import ifaddr
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .settings import Settings

__all__ = [
    "SECURITY_HEADERS",
    "STATIC_SUFFIXES",
    "MeetnowApplication",
    "RedactedServerLog",
    "SiteNames",
    "add_security_headers",
    "static_files",
]

logger = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def add_security_headers(response: web.StreamResponse) -> None:
    """Add the headers a response lacks (a handler may set its own, stricter ones)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


async def security_headers_on_prepare(_: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response of a routed request, errors and 500s included."""
    add_security_headers(response)


class GuardedRequest(web.Request):
    """A request whose responses always carry the security headers. ``on_response_prepare`` only
    runs for requests that reached the router; aiohttp answers a request it could not parse (a
    malformed request line or header) with a plain 400 of its own, and this hook is the one place
    that response passes through."""

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        await super()._prepare_hook(response)
        add_security_headers(response)


with warnings.catch_warnings():
    # aiohttp discourages subclassing its Application; this one changes nothing but the request
    # class (``_cls`` is the parameter aiohttp keeps for that), and tests/security/test_hardening_http.py
    # fails by name if a new aiohttp stops calling it.
    warnings.simplefilter("ignore", DeprecationWarning)

    class MeetnowApplication(web.Application):
        """meetnow's aiohttp application: requests are :class:`GuardedRequest`s."""

        def _make_request(self, *args: Any, **kwargs: Any) -> web.Request:
            kwargs["_cls"] = GuardedRequest
            return super()._make_request(*args, **kwargs)


# ------------------------------------------------------------------------------- the server log

ExcInfo: TypeAlias = (
    bool
    | BaseException
    | tuple[type[BaseException], BaseException, TracebackType | None]
    | tuple[None, None, None]
    | None
)


class RedactedServerLog(logging.LoggerAdapter[logging.Logger]):
    """Stands in for aiohttp's ``aiohttp.server`` logger (``handler_args={"logger": ...}``).

    aiohttp logs "Error handling request from <client address>" with the parser's exception,
    whose text quotes the raw request bytes, for every malformed request anyone sends. Here each
    line keeps only the message's fixed text (up to its first placeholder: never an argument) and
    the exception's type; a handler's crash keeps its stack (file, line, code) without the
    exception's message, which may quote request data. Each kind of line is written at most once
    per ``interval`` seconds, with a count of those left out."""

    def __init__(
        self,
        target: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(target, None)
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def log(
        self,
        level: int,
        msg: object,
        *args: object,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **kwargs: object,
    ) -> None:
        if not self.logger.isEnabledFor(level):
            return
        error = _exception_of(exc_info)
        text = _fixed_text(str(msg))
        kind = f"{text} ({type(error).__name__})" if error is not None else text
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            self._left_out[kind] = self._left_out.get(kind, 0) + 1
            return
        self._last[kind] = now
        left_out = self._left_out.pop(kind, 0)
        line = kind + (f"; {left_out} more like it left out" if left_out else "")
        if error is not None and not isinstance(error, HttpProcessingError):
            line += "\n" + "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
        self.logger.log(level, "%s", line)


def _exception_of(exc_info: ExcInfo) -> BaseException | None:
    if exc_info is True:
        return sys.exc_info()[1]
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1]
    return None


def _fixed_text(message: str) -> str:
    """The message up to its first %-placeholder, without a dangling "from"."""
    head = message.split("%", 1)[0].strip()
    head = head.removesuffix(" from").removesuffix(":").strip()
    return head[:120] or "aiohttp server message"


# ---------------------------------------------------------------------- names and origins


@dataclass(frozen=True)
class Site:
    """An origin, normalized: scheme, host name (lower case, IPv6 without brackets), port."""

    scheme: str
    host: str
    port: int


DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def parse_origin(text: str) -> Site | None:
    """``scheme://host[:port]`` as a :class:`Site`; None for anything else (``null`` too)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return Site(scheme, _normal_host(parts.hostname), port or DEFAULT_PORTS[scheme])


def parse_host_header(text: str) -> tuple[str, int | None] | None:
    """A ``Host`` header as (name, port or None); None if it is not a host name and port."""
    text = text.strip()
    if not text or any(ch in text for ch in "/\\@?# "):
        return None
    port_text: str | None
    if text.startswith("["):
        name, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    elif ":" in text:
        name, _, port_text = text.partition(":")  # an IPv6 address without brackets fails below
    else:
        name, port_text = text, None
    if not name:
        return None
    if port_text is None:
        return _normal_host(name), None
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        return None
    return _normal_host(name), int(port_text)


def _normal_host(name: str) -> str:
    return name.lower().rstrip(".").strip("[]")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_unspecified(host: str) -> bool:
    """``0.0.0.0`` or ``::``: listening on every interface."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def interface_addresses() -> list[str]:
    """This machine's own addresses (IPv6 link-local ones left out: they need a zone)."""
    addresses: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                addresses.append(ip.ip)
            elif ip.ip[2] == 0:
                addresses.append(ip.ip[0])
    return addresses


class SiteNames:
    """The origins and ``Host`` names this server answers to, from its configuration alone.

    Allowed: ``MEETNOW_PUBLIC_URL``'s origin, each of ``MEETNOW_ALLOWED_ORIGINS``, and the address
    it listens on over plain HTTP: on loopback, ``localhost``, ``127.0.0.1`` and ``::1`` alike; on
    all interfaces (``0.0.0.0``), each of this machine's addresses typed as an IP. Never the
    request's own ``Host``: a DNS-rebinding page sends its own name there, and would otherwise
    pass an Origin check made against it."""

    def __init__(
        self, settings: Settings, addresses: Callable[[], list[str]] = interface_addresses
    ) -> None:
        sites: set[Site] = set()
        for text in [settings.public_url or "", *settings.allowed_origins]:
            site = parse_origin(text)
            if site is not None:
                sites.add(site)
        sites.update(
            Site("http", name, settings.port) for name in _listen_names(settings, addresses)
        )
        self.sites = frozenset(sites)
        """Every origin allowed, normalized."""

    def origin_allowed(self, origin: str | None) -> bool:
        """No ``Origin`` (not a browser) or one of ours. Browsers always send it on websockets and
        POSTs: a foreign one means another site is using its visitors' browsers against us."""
        if origin is None:
            return True
        return parse_origin(origin) in self.sites

    def host_allowed(self, host: str | None) -> bool:
        """No ``Host`` (not a browser) or one of our names, with our port (or none, for a site
        on its scheme's default port)."""
        if host is None:
            return True
        parsed = parse_host_header(host)
        if parsed is None:
            return False
        name, port = parsed
        return any(
            site.host == name and (site.port == port or (port is None and _default_port(site)))
            for site in self.sites
        )


def _default_port(site: Site) -> bool:
    return DEFAULT_PORTS[site.scheme] == site.port


def _listen_names(settings: Settings, addresses: Callable[[], list[str]]) -> Iterable[str]:
    host = _normal_host(settings.host)
    if not host or _is_unspecified(host):
        return {*LOOPBACK_NAMES, *(_normal_host(a) for a in addresses())}
    if _is_loopback(host):
        return {*LOOPBACK_NAMES, host}
    return {host}


# ---------------------------------------------------------------------------- static files

STATIC_SUFFIXES = frozenset(
    {
        ".html",
        ".css",
        ".js",
        ".json",
        ".png",
        ".svg",
        ".ico",
        ".jpg",
        ".jpeg",
        ".webp",
        ".gif",
        ".woff2",
    }
)
"""The kinds of file the web client is made of; nothing else under ``/static`` is ever served."""


def static_files(root: Path) -> dict[str, Path]:
    """Every file to serve under ``/static/``, by its path relative to ``root``: regular files
    (no links) with a web suffix, none under or named with a leading dot or underscore
    (``__pycache__``, ``__init__.py``, ``.git``). Taken once at start-up; a request's path is only
    ever looked up in it, never joined to a directory."""
    files: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith((".", "_")) for part in relative.parts):
            continue
        if path.suffix.lower() not in STATIC_SUFFIXES or path.is_symlink() or not path.is_file():
            continue
        # JSON is served for the language catalogs only, never a tool's configuration
        # (jsconfig.json).
        if path.suffix.lower() == ".json" and relative.parts[0] != "i18n":
            continue
        files[relative.as_posix()] = path
    return files
