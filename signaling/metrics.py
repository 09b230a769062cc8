"""Prometheus metrics, on a listener of their own (``MEETNOW_METRICS_LISTEN``), never the public port.

Behind a reverse proxy every request reaches the public port from loopback, so "loopback only"
there would publish the metrics to the internet: they get their own address instead, loopback by
default, and ``GET /metrics`` on the public port is the usual 404.

Figures are read when Prometheus scrapes, not counted as they happen: the room gauges from the room
service, the forwarded packet and byte totals from plain integers the relay's per-packet path bumps
(:data:`FORWARDED`, and each relay worker's own copy, fetched through the worker stats request).
A ``Counter.inc()`` per packet would cost a lock and a lookup on the hottest path there is.

No label ever carries a room id, a name or a topic: the only labels are a chat platform and the
result of a chat command, both from closed sets (:data:`ChatPlatform`, :data:`ChatResult`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .rooms import RoomService
    from .workers import WorkerPool

__all__ = [
    "FORWARDED",
    "ChatPlatform",
    "ChatResult",
    "ForwardedCounts",
    "ServerMetrics",
    "parse_listen_address",
    "start_metrics_listener",
]

logger = logging.getLogger(__name__)

ChatPlatform = str
"""A chat adapter's name (its rooms' ``origin``): a constant in the adapter's code, never what a
user typed, so the label's values stay a closed set (one per installed platform)."""
ChatResult = Literal["created", "help", "invalid", "rate_limited", "server_full", "off"]
"""What became of a chat command: a room (``created``), the usage text (``help``), a mistake
explained (``invalid``), refused by a rate limit, by ``MEETNOW_MAX_ROOMS`` (``server_full``), or by
an adapter whose token the platform refused (``off``)."""

JOIN_TO_MEDIA_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0)
"""Seconds. Measured on loopback an aiortc pair connects in well under a second; across the
internet ICE and DTLS take a few round trips, and TURN fallbacks several seconds."""


class ForwardedCounts:
    """Packets and bytes the relay forwarded in this process: plain integers, bumped once per
    packet per subscriber on the forwarding path and read at scrape time."""

    __slots__ = ("bytes", "packets")

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0


FORWARDED = ForwardedCounts()
"""This process's forwarded totals (each relay worker process has its own)."""


def parse_listen_address(text: str) -> tuple[str, int] | None:
    """``host:port`` (``[v6]:port`` for IPv6) as a pair; None for the empty string (metrics off).
    Raises ValueError, saying what a valid value looks like, for anything else."""
    text = text.strip()
    if not text:
        return None
    host, separator, port_text = text.rpartition(":")
    host = host.strip("[]") if host.startswith("[") else host
    if not separator or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(
            f"{text!r} is not host:port; write e.g. 127.0.0.1:9464 or [::1]:9464, "
            "or leave it empty to turn metrics off"
        )
    return host, int(port_text)


class ServerMetrics:
    """One server's metrics registry (a registry per server, not the library's global one, so
    servers in one process, as in the tests, never mix their figures)."""

    def __init__(
        self,
        rooms: RoomService,
        workers: WorkerPool | None,
        forwarded: ForwardedCounts = FORWARDED,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        """What ``/metrics`` on the metrics listener serves."""
        self._workers = workers
        self.join_to_media = Histogram(
            "meetnow_join_to_media_seconds",
            "Time from a participant entering the call (its peer connection made on the relay) "
            "to that connection reaching 'connected'.",
            buckets=JOIN_TO_MEDIA_BUCKETS,
            registry=self.registry,
        )
        self.chat_commands = Counter(
            "meetnow_chat_commands",
            "Chat /meetnow commands handled, by platform and result.",
            ["platform", "result"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(rooms, workers, forwarded))

    def observe_join_to_media(self, seconds: float) -> None:
        self.join_to_media.observe(seconds)

    def count_chat_command(self, platform: ChatPlatform, result: ChatResult) -> None:
        """Called by the chat adapters once per command they answer."""
        self.chat_commands.labels(platform=platform, result=result).inc()

    async def scrape(self) -> bytes:
        """The text exposition, with the relay workers' counts fetched first (a worker that does
        not answer in time counts with its last known figures)."""
        if self._workers is not None:
            await self._workers.refresh_counts()
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Figures read from the server's state at scrape time."""

    def __init__(
        self, rooms: RoomService, workers: WorkerPool | None, forwarded: ForwardedCounts
    ) -> None:
        self._rooms = rooms
        self._workers = workers
        self._forwarded = forwarded

    def collect(self) -> Iterable[Metric]:
        rooms = self._rooms.rooms()
        yield _gauge("meetnow_rooms", "Open rooms.", len(rooms))
        yield _gauge(
            "meetnow_participants",
            "People in calls (admitted; the lobby not counted).",
            sum(len(room.participants) for room in rooms),
        )
        yield _gauge(
            "meetnow_lobby_waiting",
            "People waiting in a lobby for a host.",
            sum(len(room.waiting) for room in rooms),
        )
        packets, sent_bytes = self._forwarded.packets, self._forwarded.bytes
        workers = self._workers
        if workers is not None:
            worker_packets, worker_bytes = workers.forwarded_totals()
            packets, sent_bytes = packets + worker_packets, sent_bytes + worker_bytes
        yield _counter(
            "meetnow_forwarded_packets",
            "RTP packets the relay forwarded (one per packet per subscriber).",
            packets,
        )
        yield _counter(
            "meetnow_forwarded_bytes",
            "Bytes of the RTP packets the relay forwarded (before SRTP).",
            sent_bytes,
        )
        yield _gauge(
            "meetnow_relay_workers",
            "Relay worker processes configured (0: the relay runs in the main process).",
            workers.count if workers is not None else 0,
        )
        yield _gauge(
            "meetnow_relay_workers_up",
            "Relay worker processes running and answering.",
            workers.workers_up() if workers is not None else 0,
        )
        yield _counter(
            "meetnow_relay_worker_restarts",
            "Relay worker processes started again after one exited.",
            workers.restarts if workers is not None else 0,
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


METRICS = web.AppKey("metrics", ServerMetrics)


async def _scrape(request: web.Request) -> web.Response:
    body = await request.app[METRICS].scrape()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def start_metrics_listener(
    metrics: ServerMetrics, host: str, port: int, explicit: bool
) -> web.AppRunner | None:
    """Serve ``GET /metrics`` (and nothing else) on ``host:port``. A port in use is fatal when
    the operator chose the address; with the default (another meetnow on this machine took it)
    the server runs on without metrics and says which variable to set."""
    app = web.Application()
    app[METRICS] = metrics
    app.router.add_get("/metrics", _scrape)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        await runner.cleanup()
        where = f"{host}:{port}"
        if explicit:
            logger.error(
                "metrics: cannot listen on %s (MEETNOW_METRICS_LISTEN): %s; "
                "set another address, or an empty value to turn metrics off",
                where,
                error.strerror or type(error).__name__,
            )
            raise
        logger.warning(
            "metrics: the default %s is taken (%s): metrics are off. Set "
            "MEETNOW_METRICS_LISTEN to an address of this node's own, or empty",
            where,
            error.strerror or type(error).__name__,
        )
        return None
    logger.info("metrics: serving /metrics on %s:%d", host, port)
    return runner


MediaConnected = Callable[[float], None]
"""Told the seconds from a participant's peer connection being made to it connecting."""
