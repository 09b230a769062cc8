"""A relay worker process: one asyncio loop, one core, the media of the rooms pinned to it.

Started by :class:`~signaling.workers.WorkerPool` as ``python -m signaling.relay_worker``. It speaks
the typed JSON lines of :mod:`signaling.worker_ipc`: requests on stdin, offers and results on
stdout (logs go to stderr). Every request is answered with a ``result`` carrying its ``id``, a
request it cannot read included (with the reason, as a ``server_error``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys

from .aiortc_hooks import set_host_addresses
from .errors import WorkerMessageInvalid
from .logging_setup import configure_logging
from .metrics import FORWARDED
from .protocol import ErrorCode, OfferMessage, ProtocolError
from .relay import Relay, RelayConfig
from .speaker import Speakers
from .tasks import spawn
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
    WorkerFailure,
    WorkerRequest,
    WorkerStats,
    encode,
    parse_request,
    parse_spec,
    request_id_of,
)

__all__ = ["main"]

logger = logging.getLogger("signaling.relay_worker")


FAILURE = WorkerFailure(code=ErrorCode.SERVER_ERROR, message="relay worker failure", fatal=True)
"""What the participant hears when a request fails on a bug of ours (the log has the rest)."""


class Worker:
    def __init__(self, relay: Relay, writer: asyncio.WriteTransport) -> None:
        self._relay = relay
        self._out = writer

    def emit(self, message: ResultReply | OfferEvent | MediaConnectedEvent | SpeakersEvent) -> None:
        self._out.write(encode(message))

    def speakers_changed(self, room_id: str, speakers: Speakers) -> None:
        """Pass a room's speaker change to the main process (already rate limited)."""
        self.emit(
            SpeakersEvent(
                room=room_id, dominant=speakers.dominant, speaking=list(speakers.speaking)
            )
        )

    def receive(self, line: bytes) -> None:
        """Start handling one request line; a line that is no request is answered at once."""
        try:
            request = parse_request(line)
        except WorkerMessageInvalid as error:
            logger.error("%s", error)
            failure = WorkerFailure(code=ErrorCode.SERVER_ERROR, message=str(error), fatal=True)
            self.emit(ResultReply(id=request_id_of(line), error=failure))
            return
        # Requests for different participants run side by side, as in the main process; each
        # participant's own messages are ordered by its connection, which awaits each result.
        spawn(self.handle(request), what="relay worker request")

    async def handle(self, request: WorkerRequest) -> None:
        error: WorkerFailure | None = None
        result: WorkerStats | None = None
        try:
            result = await self._dispatch(request)
        except ProtocolError as exc:
            error = WorkerFailure.of(exc)
        except Exception:
            logger.exception("relay worker request failed")
            error = FAILURE
        self.emit(ResultReply(id=request.id, error=error, result=result))

    async def _dispatch(self, request: WorkerRequest) -> WorkerStats | None:
        if isinstance(request, AddRequest):
            room, participant = request.room, request.participant

            async def send_offer(offer: OfferMessage) -> None:
                self.emit(OfferEvent(room=room, participant=participant, offer=offer))

            await self._relay.add_participant(
                room, participant, request.kinds, send_offer, request.screen
            )
        elif isinstance(request, ScreenShareRequest):
            await self._relay.set_screen_share(request.room, request.participant, request.sources)
        elif isinstance(request, AnswerRequest):
            await self._relay.apply_answer(
                request.room, request.participant, request.revision, request.sdp
            )
        elif isinstance(request, ForwardRequest):
            await self._relay.set_forwarding(
                request.room, request.participant, request.kind, request.enabled
            )
        elif isinstance(request, RemoveRequest):
            await self._relay.remove_participant(request.room, request.participant)
        elif isinstance(request, StatsRequest):
            return WorkerStats(
                pid=os.getpid(),
                peer_connections=self._relay.peer_connection_count(),
                forwarded_packets=FORWARDED.packets,
                forwarded_bytes=FORWARDED.bytes,
            )
        return None


async def serve(config: RelayConfig, host_addresses: list[str]) -> None:
    set_host_addresses(host_addresses)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, sys.stdout)
    worker: Worker | None = None

    def media_connected(seconds: float) -> None:
        if worker is not None:  # the main process keeps the histogram
            worker.emit(MediaConnectedEvent(seconds=seconds))

    relay = Relay(dataclasses.replace(config, on_media_connected=media_connected))
    worker = Worker(relay, transport)
    relay.set_speakers_listener(worker.speakers_changed)
    try:
        while line := await reader.readline():
            worker.receive(line)
    finally:
        await relay.close()


def main() -> int:
    spec = parse_spec(os.environ["MEETNOW_WORKER_CONFIG"])
    configure_logging(spec.log_format, text_format="%(asctime)s %(levelname)s worker: %(message)s")
    for noisy in ("aiortc", "aioice"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = RelayConfig(
        ice_servers=tuple(spec.ice_servers),
        public_address=spec.public_address,
        port_range=spec.port_range,
    )
    try:
        asyncio.run(serve(config, spec.host_addresses))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
