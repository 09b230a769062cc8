"""The server's settings: environment variables prefixed ``MEETNOW_`` or ``.env``.

Each chat platform's settings live with its adapter (``bot/*_settings.py``); the composition root
(``meetnow.settings``) reads them all together from the same variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .ice_policy import DEFAULT_DENY_NETWORKS, parse_networks
from .metrics import parse_listen_address

__all__ = ["IceServer", "Settings"]

PORT_RANGE_EXPECTED = "expected FIRST-LAST, two ports from 1024 to 65535, e.g. 40000-40999"


class IceServer(BaseModel):
    """One STUN or TURN server, in the shape of the browser's ``RTCIceServer``."""

    urls: list[str]
    """``stun:host:port`` or ``turn:host:port?transport=udp`` URLs."""
    username: str | None = None
    """TURN user name, if the server needs one."""
    credential: str | None = None
    """TURN password, if the server needs one."""


class Settings(BaseSettings):
    """meetnow's configuration. Each field is read from ``MEETNOW_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="MEETNOW_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    host: str = "127.0.0.1"
    """Address the web server listens on."""
    port: int = Field(default=8080, ge=0, le=65535)
    """Port the web server listens on (0 picks a free one)."""
    public_url: str | None = None
    """Base of every link we hand out, e.g. ``https://meet.example.org``. Default: ``http://host:port``."""
    allowed_origins: Annotated[list[str], NoDecode] = []
    """Extra origins allowed to open the signaling websocket (the public URL's origin always is)."""

    ice_servers: list[IceServer] = []
    """STUN/TURN servers for the relay and the browsers, as JSON. Empty: host candidates only, and
    never a public STUN server (aiortc would pick one by itself if it were given none)."""
    ice_host_addresses: Annotated[list[str], NoDecode] = []
    """Local addresses the relay gathers ICE candidates on, comma-separated. Empty: every interface
    but loopback. Add ``127.0.0.1`` for calls on one machine."""
    ice_public_address: str | None = None
    """Address announced instead of the host addresses, for a relay behind a 1:1 NAT."""
    ice_deny_networks: Annotated[list[str], NoDecode] = list(DEFAULT_DENY_NETWORKS)
    """Networks the relay never sends ICE checks to, whatever a participant's candidates say, as
    comma-separated CIDRs; ``default`` stands for the defaults (link-local, multicast,
    broadcast, unspecified and reserved), so ``default,10.0.0.0/8`` adds a network."""
    ice_allow_networks: Annotated[list[str], NoDecode] = []
    """If set, the only networks the relay sends ICE checks to (comma-separated CIDRs); empty:
    everything not denied."""
    ice_loopback_peers: bool | None = None
    """Whether participants' loopback candidates are used. Unset: exactly when
    ``ice_host_addresses`` offers a loopback address (calls on one machine)."""
    ice_max_candidates: int = Field(default=20, ge=1, le=1000)
    """Distinct UDP ICE candidates (address and port) one participant may give over its
    connection; an answer past it is refused."""
    ice_port_range: Annotated[tuple[int, int] | None, NoDecode] = None
    """UDP ports the relay binds its ICE sockets on, ``FIRST-LAST`` (e.g. ``40000-40999``), for
    every worker; one port per participant on each ICE address, so the range is also the
    number of participants the server holds. Unset: the OS's ephemeral ports."""

    relay_workers: int | None = Field(default=None, ge=0, le=256)
    """Relay worker processes, each using one core; rooms are pinned to one. Unset: one per core.
    0: the relay runs inside the main process (one core in all)."""

    turn_urls: Annotated[list[str], NoDecode] = []
    """TURN server URLs (``turn:host:3478?transport=udp``), comma-separated. With ``turn_secret``,
    each admitted participant gets short-lived credentials (coturn ``use-auth-secret``)."""
    turn_secret: SecretStr | None = None
    """The TURN server's shared secret (coturn ``static-auth-secret``)."""
    turn_ttl_seconds: int = Field(default=3600, ge=60, le=86400)
    """Lifetime of minted TURN credentials."""
    ice_transport_policy: Literal["all", "relay"] = "all"
    """``relay``: browsers send and receive media only through TURN (``iceTransportPolicy``), for
    networks that allow nothing else and to hide participants' addresses. Needs TURN
    (``turn_urls`` with ``turn_secret``, or a ``turn:`` server in ``ice_servers``)."""
    trust_forwarded_for: bool = False
    """Take the client address from ``X-Forwarded-For`` (only behind a reverse proxy you run):
    rate limits are per client address."""

    limit_rooms_per_ip_per_hour: float = Field(default=60, gt=0)
    """Rooms one client address may create through the web page or API (bursts of a third)."""
    limit_rooms_per_user_per_hour: float = Field(default=30, gt=0)
    """Rooms one Slack or Discord user may create (bursts of a third)."""
    limit_rooms_per_org_per_hour: float = Field(default=600, gt=0)
    """Rooms one Slack workspace or Discord guild may create (bursts of a sixth)."""
    limit_unknown_lookups_per_minute: float = Field(default=20, gt=0)
    """Lookups of room ids that do not exist, per client address, before it gets 429."""
    limit_websockets_per_ip: int = Field(default=50, ge=1)
    """Websockets one client address may hold open at once; the next gets 429. As many as a full
    room (an office behind one NAT, ``meetnow loadtest``), far fewer than a flood."""
    limit_chat_per_minute: float = Field(default=60, gt=0)
    """Chat messages one participant may send a minute, sustained, after a burst of 10; past
    it, ``chat_rate_limited`` (the call goes on)."""

    room_max_participants: int = Field(default=20, ge=2, le=500)
    """Participants allowed in one room at once. A room lives on one relay worker, one core:
    20 held at 30 fps without a freeze in the relay density benchmark when this default was set;
    later runs on 2 cores hold fewer (docs/benchmarks.md, section 1). A cap keeps every
    call in a room whole rather than degrading all: measure your core with meetnow loadtest."""
    room_max_screen_shares: int = Field(default=3, ge=1, le=50)
    """Screens shared at once in one room; one more is refused with ``too_many_screen_shares``
    (each share is one more forwarded video to every participant)."""
    room_unused_ttl_seconds: float = Field(default=24 * 3600, gt=0)
    """A room nobody ever joined expires after this long."""
    room_empty_grace_seconds: float = Field(default=60, ge=0)
    """A room everyone has left closes after this long (time to reload a page or reconnect)."""
    max_rooms: int = Field(default=10_000, ge=1)
    """Rooms open at once on this server."""
    topic_max_length: int = Field(default=200, ge=1, le=1000)
    """Longest room topic accepted."""
    name_max_length: int = Field(default=64, ge=1, le=256)
    """Longest display name accepted."""

    ws_max_message_bytes: int = Field(default=256 * 1024, ge=1024)
    """Largest websocket message accepted; a bigger one closes the connection (1009)."""
    ws_heartbeat_seconds: float = Field(default=20.0, gt=0)
    """Websocket ping interval; a peer that misses a pong is dropped."""
    ws_join_timeout_seconds: float = Field(default=30.0, gt=0)
    """A websocket that has not sent ``join`` after this long is closed."""

    metrics_listen: str = "127.0.0.1:9464"
    """Where Prometheus scrapes ``/metrics``: ``host:port`` (``[::1]:9464`` for IPv6), a listener
    of its own, never the public port; empty turns metrics off. Several nodes on one machine
    each set their own."""
    log_format: Literal["text", "json"] = "text"
    """``text`` log lines, or ``json``: one JSON object per line, for log shippers."""

    store: Literal["sqlite", "memory"] = "sqlite"
    """Where rooms are kept: ``sqlite`` (a database in ``data_dir``; rooms, hosts, lobby, lock and
    ended links survive a restart) or ``memory`` (every room ends with the process)."""
    data_dir: Path | None = None
    """Directory of the room database (``sqlite`` store). Unset: ``$XDG_DATA_HOME/meetnow``, else
    ``~/.local/share/meetnow``."""
    redis_url: SecretStr | None = None
    """Redis shared by several nodes (``redis://host:6379/0``; may carry a password): rooms,
    tombstones and chat card references live there instead of ``store``. Unset: one node."""

    @field_validator("metrics_listen")
    @classmethod
    def _check_metrics_listen(cls, value: str) -> str:
        parse_listen_address(value)  # raises ValueError saying what a valid value looks like
        return value.strip()

    @field_validator(
        "allowed_origins",
        "ice_host_addresses",
        "ice_deny_networks",
        "ice_allow_networks",
        "turn_urls",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("ice_port_range", mode="before")
    @classmethod
    def _parse_port_range(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            return None
        first, dash, last = text.partition("-")
        if not (first.strip().isdigit() and (not dash or last.strip().isdigit())):
            raise ValueError(PORT_RANGE_EXPECTED)
        return (int(first), int(last if dash else first))

    @field_validator("ice_port_range")
    @classmethod
    def _check_port_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1024 <= value[0] <= value[1] <= 65535:
            raise ValueError(PORT_RANGE_EXPECTED)
        return value

    @field_validator("ice_host_addresses")
    @classmethod
    def _check_addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            ipaddress.ip_address(address)
        return value

    @field_validator("ice_deny_networks")
    @classmethod
    def _check_deny_networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # raises ValueError, naming the bad entry, at startup
        return value

    @field_validator("ice_allow_networks")
    @classmethod
    def _check_allow_networks(cls, value: list[str]) -> list[str]:
        parse_networks(value, defaults=False)
        return value

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://, e.g. https://meet.example.org")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _relay_needs_turn(self) -> Settings:
        if self.ice_transport_policy == "relay" and not self.has_turn():
            raise ValueError(
                "MEETNOW_ICE_TRANSPORT_POLICY=relay needs a TURN server: set MEETNOW_TURN_URLS "
                "and MEETNOW_TURN_SECRET (or a turn: server with credentials in "
                "MEETNOW_ICE_SERVERS), or set MEETNOW_ICE_TRANSPORT_POLICY=all"
            )
        return self

    def has_turn(self) -> bool:
        """Whether browsers get a TURN server: minted credentials, or a configured one."""
        if self.turn_urls and self.turn_secret is not None:
            return True
        return any(
            url.startswith(("turn:", "turns:")) and server.username and server.credential
            for server in self.ice_servers
            for url in server.urls
        )

    def base_url(self) -> str:
        """The base of every link: ``public_url`` or this server's own address."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
