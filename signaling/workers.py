"""Relay workers: one process per core, each room pinned to one of them.

One asyncio thread uses one core, so the relay runs in ``MEETNOW_RELAY_WORKERS`` processes (default:
one per core) and a machine's capacity is the sum of its cores. The main process keeps everything
else: HTTP, the websockets, the room service and its events. :class:`WorkerPool` implements the same
:class:`~signaling.relay.RelayBackend` interface as the in-process :class:`~signaling.relay.Relay`,
so the signaling code does not know where a room's media lives.

A room is pinned to the worker with the fewest participants when its first participant arrives,
and unpinned when its last one leaves. If a worker dies, the participants of its rooms are
disconnected (close code 1011) so their clients reconnect, and the worker is started again: at once
the first time, then after a growing delay while it keeps exiting soon after each start
(:func:`restart_delay`), so a worker that cannot start never turns into a tight loop of process
starts. A worker is "up" once it has answered a request after starting; ``/healthz`` and
``meetnow_relay_workers_up`` report the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .errors import WorkerDied, WorkerMessageInvalid
from .forwarding import Kind
from .metrics import MediaConnected
from .protocol import ErrorCode, ProtocolError, Source
from .relay import RelayConfig, SendOffer, SpeakersListener
from .speaker import Speakers
from .worker_ipc import (
    AddRequest,
    AnswerRequest,
    ForwardRequest,
    MediaConnectedEvent,
    OfferEvent,
    RemoveRequest,
    ResultReply,
    ScreenShareRequest,
    SpeakersEvent,
    StatsRequest,
    WorkerRequest,
    WorkerSpec,
    WorkerStats,
    encode,
    parse_reply,
)

__all__ = [
    "WorkerDied",
    "WorkerPool",
    "count_failure",
    "default_worker_count",
    "restart_delay",
]

logger = logging.getLogger(__name__)

LINE_LIMIT = 1 << 22
"""Longest JSON line between processes (an SDP for a full room is far below it)."""

WORKER_COMMAND = (sys.executable, "-m", "signaling.relay_worker")
"""How a relay worker process is started."""

STABLE_SECONDS = 30.0
"""A worker that ran this long before exiting is restarted at once, as if it never failed."""
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
READY_TIMEOUT_SECONDS = 30.0
"""How long a starting worker may take to answer its first request (importing aiortc)."""
STATS_TIMEOUT_SECONDS = 2.0
"""How long a scrape waits for a worker's counts before using the last ones it gave."""


def count_failure(previous: int, uptime: float) -> int:
    """Consecutive quick exits of one worker, after one more exit following ``uptime`` seconds
    of running: a worker that ran ``STABLE_SECONDS`` starts the count again."""
    return previous + 1 if uptime < STABLE_SECONDS else 1


def restart_delay(failures: int) -> float:
    """Seconds to wait before starting a worker again after its ``failures``-th quick exit in a
    row: none the first time (a crash under a running call should cost as little as possible),
    then 0.5 s, doubling up to 30 s."""
    if failures <= 1:
        return 0.0
    doublings = min(failures - 2, 16)  # capped: the count grows for as long as it crashes
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * (1 << doublings))


def default_worker_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    reader_task: asyncio.Task[None] | None = None
    pending: dict[int, asyncio.Future[WorkerStats | None]] = field(default_factory=dict)
    participants: int = 0
    rooms: set[str] = field(default_factory=set)
    alive: bool = True
    ready: bool = False
    """It answered a request since it started (importing aiortc takes a moment)."""
    started_at: float = 0.0
    forwarded: tuple[int, int] = (0, 0)
    """Packets and bytes it last reported forwarding."""


class WorkerPool:
    """The relay, spread over worker processes."""

    def __init__(
        self,
        count: int,
        config: RelayConfig,
        host_addresses: list[str],
        on_worker_lost: Callable[[set[str]], Awaitable[None]] | None = None,
        *,
        on_media_connected: MediaConnected | None = None,
        log_format: str = "text",
        command: Sequence[str] = WORKER_COMMAND,
        clock: Callable[[], float] = time.monotonic,
        backoff: Callable[[int], float] = restart_delay,
    ) -> None:
        self.count = count
        """How many worker processes run."""
        self.restarts = 0
        """Workers started again after one exited."""
        self._config = config
        self._host_addresses = host_addresses
        self._on_worker_lost = on_worker_lost
        self._on_media_connected = on_media_connected
        self._log_format = log_format
        self._command = tuple(command)
        self._clock = clock
        self._backoff = backoff
        self._failures: dict[int, int] = {}
        self._retired = (0, 0)
        self._closed = asyncio.Event()
        self._workers: list[_Worker] = []
        self._room_worker: dict[str, _Worker] = {}
        self._room_participants: dict[str, set[str]] = {}
        self._offer_sinks: dict[tuple[str, str], SendOffer] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self._speakers_listener: SpeakersListener | None = None

    async def start(self) -> None:
        """Start every worker and wait (a bounded time) until each answers."""
        self._workers = [await self._spawn(index) for index in range(self.count)]
        await asyncio.gather(*(self._until_ready(worker) for worker in self._workers))

    def workers_up(self) -> int:
        """Workers running and answering."""
        return sum(1 for w in self._workers if w.alive and w.ready)

    def down_reasons(self) -> list[str]:
        """One line per worker that is not up, for ``/healthz``."""
        reasons = []
        for worker in self._workers:
            if not worker.alive:
                state = "is down (exited; restarting)"
            elif not worker.ready:
                state = "is starting"
            else:
                continue
            reasons.append(f"relay worker {worker.index + 1} of {self.count} {state}")
        return reasons

    def forwarded_totals(self) -> tuple[int, int]:
        """Packets and bytes forwarded by every worker, as of the last :meth:`refresh_counts`
        (those of exited workers included, so the totals never go back)."""
        packets, sent_bytes = self._retired
        for worker in self._workers:
            packets += worker.forwarded[0]
            sent_bytes += worker.forwarded[1]
        return packets, sent_bytes

    async def refresh_counts(self) -> None:
        """Ask each worker for its counts (through the stats request), all at once."""
        await asyncio.gather(*(self._refresh(w) for w in self._workers if w.alive))

    async def _refresh(self, worker: _Worker) -> None:
        try:
            await asyncio.wait_for(self._request(worker, StatsRequest()), STATS_TIMEOUT_SECONDS)
        except (WorkerDied, TimeoutError):
            pass

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def room_worker_pid(self, room_id: str) -> int | None:
        worker = self._room_worker.get(room_id)
        return worker.process.pid if worker else None

    def set_speakers_listener(self, listener: SpeakersListener | None) -> None:
        self._speakers_listener = listener

    async def add_participant(
        self,
        room_id: str,
        participant_id: str,
        kinds: Iterable[Kind],
        send_offer: SendOffer,
        screen: Sequence[Source] = (),
    ) -> None:
        worker = self._room_worker.get(room_id)
        if worker is None:
            worker = min(self._workers, key=lambda w: (not w.alive, w.participants))
            self._room_worker[room_id] = worker
            worker.rooms.add(room_id)
        worker.participants += 1
        self._room_participants.setdefault(room_id, set()).add(participant_id)
        self._offer_sinks[(room_id, participant_id)] = send_offer
        await self._request(
            worker,
            AddRequest(
                room=room_id, participant=participant_id, kinds=list(kinds), screen=list(screen)
            ),
        )

    async def apply_answer(
        self, room_id: str, participant_id: str, revision: int, sdp: str
    ) -> None:
        worker = self._room_worker.get(room_id)
        if worker is None or (room_id, participant_id) not in self._offer_sinks:
            raise ProtocolError(ErrorCode.OUT_OF_ORDER, "No offer is waiting for an answer.")
        await self._request(
            worker,
            AnswerRequest(room=room_id, participant=participant_id, revision=revision, sdp=sdp),
        )

    async def set_forwarding(
        self, room_id: str, participant_id: str, kind: Kind, enabled: bool
    ) -> None:
        worker = self._room_worker.get(room_id)
        if worker is not None and worker.alive:
            await self._request(
                worker,
                ForwardRequest(
                    room=room_id, participant=participant_id, kind=kind, enabled=enabled
                ),
            )

    async def set_screen_share(
        self, room_id: str, participant_id: str, sources: Sequence[Source]
    ) -> None:
        worker = self._room_worker.get(room_id)
        if worker is not None and worker.alive:
            await self._request(
                worker,
                ScreenShareRequest(room=room_id, participant=participant_id, sources=list(sources)),
            )

    async def remove_participant(self, room_id: str, participant_id: str) -> None:
        worker = self._room_worker.get(room_id)
        members = self._room_participants.get(room_id, set())
        if worker is None or participant_id not in members:
            return
        members.discard(participant_id)
        self._offer_sinks.pop((room_id, participant_id), None)
        worker.participants -= 1
        if not members:
            self._room_participants.pop(room_id, None)
            self._room_worker.pop(room_id, None)
            worker.rooms.discard(room_id)
        if worker.alive:
            with contextlib.suppress(WorkerDied):
                await self._request(worker, RemoveRequest(room=room_id, participant=participant_id))

    async def stats(self) -> list[WorkerStats]:
        """Each running worker's counts."""
        found = [await self._request(w, StatsRequest()) for w in self._workers if w.alive]
        return [stats for stats in found if stats is not None]

    async def close(self) -> None:
        self._closing = True
        self._closed.set()
        for worker in self._workers:
            if worker.process.stdin is not None and not worker.process.stdin.is_closing():
                worker.process.stdin.close()
        for worker in self._workers:
            try:
                await asyncio.wait_for(worker.process.wait(), 5)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()
            if worker.reader_task is not None:
                await worker.reader_task

    async def _spawn(self, index: int) -> _Worker:
        spec = WorkerSpec(
            ice_servers=list(self._config.ice_servers),
            public_address=self._config.public_address,
            port_range=self._config.port_range,
            host_addresses=self._host_addresses,
            log_format=self._log_format,
        )
        process = await asyncio.create_subprocess_exec(
            *self._command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "MEETNOW_WORKER_CONFIG": spec.model_dump_json()},
            limit=LINE_LIMIT,
            # Its own session: Ctrl-C reaches the main process, which then stops the workers.
            start_new_session=True,
        )
        worker = _Worker(index, process, started_at=self._clock())
        worker.reader_task = asyncio.ensure_future(self._read(worker))
        return worker

    async def _request(self, worker: _Worker, request: WorkerRequest) -> WorkerStats | None:
        """Send ``request`` under a fresh id and wait for its result (raises the worker's
        :class:`ProtocolError`, or :class:`WorkerDied`)."""
        if not worker.alive or worker.process.stdin is None:
            raise WorkerDied("relay worker is gone")
        request_id = next(self._ids)
        future: asyncio.Future[WorkerStats | None] = asyncio.get_running_loop().create_future()
        worker.pending[request_id] = future
        try:
            worker.process.stdin.write(encode(request.model_copy(update={"id": request_id})))
            await worker.process.stdin.drain()
        except (ConnectionError, BrokenPipeError) as exc:
            worker.pending.pop(request_id, None)
            raise WorkerDied("relay worker is gone") from exc
        return await future

    async def _read(self, worker: _Worker) -> None:
        assert worker.process.stdout is not None
        try:
            while line := await worker.process.stdout.readline():
                await self._handle_reply(worker, parse_reply(line))
        except WorkerMessageInvalid as error:
            # Out of step with this process: whatever it holds can no longer be trusted.
            logger.error("relay worker %d: %s; stopping it", worker.index, error)
            worker.process.kill()
        finally:
            await self._lost(worker)

    async def _handle_reply(
        self,
        worker: _Worker,
        reply: ResultReply | OfferEvent | MediaConnectedEvent | SpeakersEvent,
    ) -> None:
        if isinstance(reply, OfferEvent):
            sink = self._offer_sinks.get((reply.room, reply.participant))
            if sink is not None:
                await sink(reply.offer)
        elif isinstance(reply, MediaConnectedEvent):
            if self._on_media_connected is not None:
                self._on_media_connected(reply.seconds)
        elif isinstance(reply, SpeakersEvent):
            # Only for a room still on this worker: a late event of a lost room is dropped.
            if self._speakers_listener is not None and self._room_worker.get(reply.room) is worker:
                speakers = Speakers(reply.dominant, tuple(reply.speaking))
                self._speakers_listener(reply.room, speakers)
        else:
            self._settle(worker, reply)

    def _settle(self, worker: _Worker, reply: ResultReply) -> None:
        """Complete the request ``reply`` answers."""
        if reply.id is None:  # a request it could not read: reported in its own log
            return
        future = worker.pending.pop(reply.id, None)
        if future is None or future.done():
            return
        if reply.error is not None:
            future.set_exception(reply.error.to_error())
            return
        if reply.result is not None:
            worker.forwarded = (reply.result.forwarded_packets, reply.result.forwarded_bytes)
        future.set_result(reply.result)

    async def _until_ready(self, worker: _Worker) -> None:
        """Mark ``worker`` up once it answers a request; it stays "starting" if it never does."""
        try:
            await asyncio.wait_for(self._request(worker, StatsRequest()), READY_TIMEOUT_SECONDS)
        except (WorkerDied, TimeoutError):
            return
        worker.ready = True

    async def _lost(self, worker: _Worker) -> None:
        worker.alive = False
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(WorkerDied("relay worker is gone"))
        worker.pending.clear()
        if self._closing:
            return
        await worker.process.wait()
        self._retired = (
            self._retired[0] + worker.forwarded[0],
            self._retired[1] + worker.forwarded[1],
        )
        worker.forwarded = (0, 0)
        failures = count_failure(
            self._failures.get(worker.index, 0), self._clock() - worker.started_at
        )
        self._failures[worker.index] = failures
        delay = self._backoff(failures)
        logger.error(
            "relay worker %d exited (code %s); restarting it in %.1f s",
            worker.index,
            worker.process.returncode,
            delay,
        )
        rooms = set(worker.rooms)
        for room_id in rooms:
            for participant_id in self._room_participants.pop(room_id, set()):
                self._offer_sinks.pop((room_id, participant_id), None)
            self._room_worker.pop(room_id, None)
        if delay > 0:
            # Its people reconnect now, onto the other workers, rather than after the wait.
            await self._tell_lost(rooms)
            rooms = set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)
            if self._closing:
                return
        self.restarts += 1
        replacement = await self._spawn(worker.index)
        self._workers[worker.index] = replacement
        if self._closing:  # close() began while it was starting: stop it too
            if replacement.process.stdin is not None:
                replacement.process.stdin.close()
            await replacement.process.wait()
            return
        await self._tell_lost(rooms)
        await self._until_ready(replacement)

    async def _tell_lost(self, rooms: set[str]) -> None:
        if self._on_worker_lost is not None and rooms:
            await self._on_worker_lost(rooms)
