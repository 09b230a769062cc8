"""A relay worker process: one asyncio loop, one core, the media of the rooms pinned to it.

Started by :class:`~signaling.workers.WorkerPool` as ``python -m signaling.relay_worker``. It speaks
JSON lines: requests on stdin, offers and results on stdout (logs go to stderr). Every request
carries an ``id``; the worker answers each with ``{"op": "result", "id": ..., "error": ...}``.

Requests: ``add`` (room, participant, kinds), ``answer`` (room, participant, revision, sdp),
``forward`` (room, participant, kind, enabled), ``remove`` (room, participant), ``stats`` (also the
forwarded packet and byte totals, for the metrics). Events: ``offer`` (room, participant, offer),
``media_connected`` (seconds from a peer connection's creation to its first 'connected').
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import sys
from typing import Any

from .aiortc_hooks import set_host_addresses
from .forwarding import Kind
from .logging_setup import configure_logging
from .metrics import FORWARDED
from .protocol import OfferMessage, ProtocolError
from .relay import Relay, RelayConfig
from .settings import IceServer
from .tasks import spawn

__all__ = ["main"]

logger = logging.getLogger("signaling.relay_worker")


class Worker:
    def __init__(self, relay: Relay, writer: asyncio.WriteTransport) -> None:
        self._relay = relay
        self._out = writer

    def emit(self, message: dict[str, Any]) -> None:
        self._out.write((json.dumps(message, separators=(",", ":")) + "\n").encode())

    async def handle(self, request: dict[str, Any]) -> None:
        error: dict[str, Any] | None = None
        result: Any = None
        try:
            result = await self._dispatch(request)
        except ProtocolError as exc:
            error = {"code": exc.code.value, "message": exc.message, "fatal": exc.fatal}
        except Exception:
            logger.exception("relay worker request failed")
            error = {"code": "server_error", "message": "relay worker failure", "fatal": True}
        self.emit({"op": "result", "id": request.get("id"), "error": error, "result": result})

    async def _dispatch(self, request: dict[str, Any]) -> Any:
        op = request["op"]
        room, participant = request.get("room", ""), request.get("participant", "")
        if op == "add":
            kinds: list[Kind] = request["kinds"]

            async def send_offer(offer: OfferMessage) -> None:
                self.emit(
                    {
                        "op": "offer",
                        "room": room,
                        "participant": participant,
                        "offer": offer.model_dump(mode="json"),
                    }
                )

            await self._relay.add_participant(room, participant, kinds, send_offer)
        elif op == "answer":
            await self._relay.apply_answer(room, participant, request["revision"], request["sdp"])
        elif op == "forward":
            await self._relay.set_forwarding(room, participant, request["kind"], request["enabled"])
        elif op == "remove":
            await self._relay.remove_participant(room, participant)
        elif op == "stats":
            return {
                "pid": os.getpid(),
                "peer_connections": self._relay.peer_connection_count(),
                "forwarded_packets": FORWARDED.packets,
                "forwarded_bytes": FORWARDED.bytes,
            }
        else:
            raise ValueError(f"unknown op {op!r}")
        return None

    def spawn(self, request: dict[str, Any]) -> None:
        # Requests for different participants run side by side, as in the main process; each
        # participant's own messages are ordered by its connection, which awaits each result.
        spawn(self.handle(request), what="relay worker request")


async def serve(config: RelayConfig, host_addresses: list[str]) -> None:
    set_host_addresses(host_addresses)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, sys.stdout)
    worker: Worker | None = None

    def media_connected(seconds: float) -> None:
        if worker is not None:  # the main process keeps the histogram
            worker.emit({"op": "media_connected", "seconds": seconds})

    relay = Relay(dataclasses.replace(config, on_media_connected=media_connected))
    worker = Worker(relay, transport)
    try:
        while line := await reader.readline():
            worker.spawn(json.loads(line))
    finally:
        await relay.close()


def main() -> int:
    spec = json.loads(os.environ["MEETNOW_WORKER_CONFIG"])
    configure_logging(
        spec.get("log_format", "text"), text_format="%(asctime)s %(levelname)s worker: %(message)s"
    )
    for noisy in ("aiortc", "aioice"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = RelayConfig(
        ice_servers=tuple(IceServer(**s) for s in spec["ice_servers"]),
        public_address=spec["public_address"],
        port_range=tuple(spec["port_range"]) if spec.get("port_range") else None,
    )
    try:
        asyncio.run(serve(config, spec["host_addresses"]))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
