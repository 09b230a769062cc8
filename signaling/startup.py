"""What ``meetnow serve`` tells the operator at start: a short summary of what runs, warnings
for settings that will not do what they seem to, and settings errors that name the variable.

Pure functions of the settings and what the caller found (environment names, ``.env`` names,
ICE addresses, the chat platforms' own lines), so each line is testable; ``meetnow/cli.py``
prints them. This module knows no chat platform: the composition root passes in what each
platform's settings say about themselves (:class:`StartupFacts`).
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_settings import SettingsError

from .settings import Settings

__all__ = [
    "PREFIX",
    "StartupFacts",
    "settings_error_lines",
    "startup_summary",
    "startup_warnings",
    "unknown_variables",
    "variable_name",
]

PREFIX = "MEETNOW_"
INTERNAL_VARIABLES = frozenset({"MEETNOW_WORKER_CONFIG"})
"""Set by meetnow itself for its relay workers; never an operator's typo."""

EXAMPLES: dict[str, str] = {
    "host": "an address to listen on, e.g. 127.0.0.1 or 0.0.0.0",
    "port": "a port from 0 to 65535, e.g. 8080",
    "public_url": "e.g. https://meet.example.org",
    "allowed_origins": "comma-separated origins, e.g. https://chat.example.org",
    "ice_servers": 'JSON, e.g. [{"urls": ["stun:stun.example.org:3478"]}]',
    "ice_host_addresses": "comma-separated IP addresses, e.g. 192.0.2.10,127.0.0.1",
    "ice_public_address": "an IP address, e.g. 203.0.113.7",
    "ice_deny_networks": "comma-separated CIDRs, e.g. default,10.0.0.0/8",
    "ice_allow_networks": "comma-separated CIDRs, e.g. 192.0.2.0/24",
    "ice_port_range": "FIRST-LAST, e.g. 40000-40999",
    "turn_urls": "comma-separated URLs, e.g. turn:turn.example.org:3478?transport=udp",
}
"""What a valid value looks like, for settings whose type alone does not say it."""

TYPE_HINTS: dict[str, str] = {
    "int_parsing": "a whole number",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
    "literal_error": "",  # pydantic's message lists the choices
}


def variable_name(field: str) -> str:
    """``port`` -> ``MEETNOW_PORT``."""
    return PREFIX + field.upper()


def settings_error_lines(
    error: ValidationError | SettingsError,
    options: Mapping[str, str] | None = None,
    examples: Mapping[str, str] | None = None,
) -> list[str]:
    """One line per problem, each naming the environment variable (and the command-line option
    that set it, from ``options``: field -> option) and what a valid value looks like (from
    :data:`EXAMPLES` and ``examples``, the other parts' settings). Never the value itself: it
    may be a token."""
    known_examples = {**EXAMPLES, **(examples or {})}
    if isinstance(error, SettingsError):
        # pydantic-settings could not decode a value (JSON settings): it names the field.
        match = re.search(r'field "(\w+)"', str(error))
        if match is None:
            return [f"{str(error).splitlines()[0]}"]
        field = match.group(1)
        example = known_examples.get(field, "valid JSON")
        return [f"{variable_name(field)}: not valid JSON; expected {example}"]
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        location = [str(part) for part in problem["loc"]]
        message = str(problem["msg"]).removeprefix("Value error, ")
        if not location:  # a rule across settings: its message names the variables
            lines.append(message)
            continue
        field, inner = location[0], location[1:]
        name = variable_name(field)
        if options and field in options:
            name += f" (or {options[field]})"
        if inner:
            name += f" (at {'.'.join(inner)})"
        expected = known_examples.get(field) or TYPE_HINTS.get(str(problem["type"]), "")
        if expected and "e.g." not in message:
            message += f"; expected {expected}"
        lines.append(f"{name}: {message}")
    return lines


def unknown_variables(
    environment: Iterable[str], dotenv: Iterable[str], fields: Iterable[str]
) -> list[str]:
    """Names that start with ``MEETNOW_`` (as the settings read them: any case) but are no
    setting, from the environment and the ``.env`` file, each once, sorted."""
    known = {variable_name(field) for field in fields} | INTERNAL_VARIABLES
    found = {name.upper() for name in [*environment, *dotenv] if name.upper().startswith(PREFIX)}
    return sorted(found - known)


@dataclass(frozen=True)
class StartupFacts:
    """What the summary needs besides the settings, found by the caller."""

    relay_workers: int
    """Relay worker processes (0: the relay runs in the main process)."""
    ice_addresses: list[str]
    """Addresses the relay gathers host candidates on."""
    unknown: list[str]
    """``MEETNOW_`` names that are no setting."""
    chat: list[str] = dataclasses.field(default_factory=list)
    """The chat platforms that run, as their own settings describe them (the root's)."""
    chat_warnings: list[str] = dataclasses.field(default_factory=list)
    """What the chat platforms' settings warn about (half-configured), each naming a variable."""
    setting_fields: list[str] = dataclasses.field(default_factory=list)
    """Every setting's field name, the chat platforms' included (for "did you mean"); empty:
    the server's own."""


def startup_summary(settings: Settings, facts: StartupFacts) -> list[str]:
    """The lines printed under "meetnow is running": what runs, where, and with what."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    workers = (
        f"{facts.relay_workers} relay worker processes"
        if facts.relay_workers
        else "the relay runs in the main process"
    )
    addresses = ", ".join(facts.ice_addresses) or "none found"
    if settings.ice_public_address:
        addresses += f" (announced as {settings.ice_public_address})"
    if settings.ice_port_range is None:
        ports = "UDP ports: the OS's ephemeral range (set MEETNOW_ICE_PORT_RANGE for a firewall)"
    else:
        first, last = settings.ice_port_range
        size = last - first + 1
        ports = (
            f"UDP ports {first}-{last}: room for {size} participants in calls at once "
            f"(one port each on every ICE address, shared by all relay workers)"
        )
    turn = (
        f"on, {len(settings.turn_urls)} server(s) with short-lived credentials"
        if settings.turn_urls and settings.turn_secret is not None
        else "off"
    )
    chat = ", ".join(facts.chat) or "none"
    return [
        f"  rooms:     {rooms_summary(settings)}",
        f"  links:     {settings.base_url()}/",
        f"  listening: {host}:{settings.port}",
        f"  relay:     {workers}",
        f"  ICE:       addresses {addresses}; {ports}",
        f"  TURN:      {turn}",
        f"  chat:      {chat}",
    ]


def rooms_summary(settings: Settings) -> str:
    """Where rooms are kept, without a Redis URL's password. With Redis, exactly what the nodes
    share and what they do not yet (an operator must not believe more)."""
    if settings.redis_url is not None:
        url = urlsplit(settings.redis_url.get_secret_value())
        where = f"{url.hostname or '?'}:{url.port or 6379}{url.path or ''}"
        return (
            f"Redis at {where} (MEETNOW_REDIS_URL), shared with every node on it: rooms, hosts, "
            "lobby and lock, ended links, the per-address limits on new rooms and unknown links; "
            "each room's call runs on the node that claimed it, and websockets that land on "
            "another node are forwarded there; while Redis is away, calls go on and new ones "
            "answer 'temporarily unavailable'; a node told to stop (SIGTERM) lets go of its rooms "
            "and sends its pages to the other nodes; chat cards are updated by the room's node "
            "alone, and a chat gateway that must be single runs on one node at a time (another "
            "takes over within 6 s)"
        )
    if settings.store == "memory":
        return "in memory (every room ends with the process)"
    return "SQLite in MEETNOW_DATA_DIR (rooms survive a restart)"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _public_url_warning(settings: Settings) -> str | None:
    if _is_loopback(settings.host):
        return None  # a machine of one: loopback http:// links are right
    base = settings.base_url()
    link_host = urlsplit(base).hostname or ""
    fix = (
        "set MEETNOW_PUBLIC_URL to the https:// address people reach, e.g. https://meet.example.org"
    )
    if _is_unspecified(link_host):
        reason = f"links would point at {base}/, which no browser can open"
    elif _is_loopback(link_host):
        reason = f"links point at {base}/, which only this machine can open"
    elif base.startswith("http://"):
        reason = (
            f"links use plain {base}/: browsers give camera and microphone only to https:// pages"
        )
    else:
        return None
    return f"the server listens on {settings.host}, but {reason}: {fix}"


def _turn_warnings(settings: Settings) -> list[str]:
    warnings = []
    if settings.turn_urls and settings.turn_secret is None:
        warnings.append(
            "TURN is off: MEETNOW_TURN_URLS is set but browsers get no credentials without "
            "MEETNOW_TURN_SECRET"
        )
    if settings.turn_secret is not None and not settings.turn_urls:
        warnings.append("TURN is off: MEETNOW_TURN_SECRET is set; set MEETNOW_TURN_URLS too")
    return warnings


def startup_warnings(settings: Settings, facts: StartupFacts) -> list[str]:
    """Settings that will not do what the operator expects, each naming the variable to set."""
    warnings = []
    public = _public_url_warning(settings)
    if public is not None:
        warnings.append(public)
    warnings += facts.chat_warnings
    warnings += _turn_warnings(settings)
    fields = facts.setting_fields or list(Settings.model_fields)
    for name in facts.unknown:
        close = difflib.get_close_matches(name, [variable_name(f) for f in fields], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"{name} is not a meetnow setting and is ignored{hint}")
    return warnings
