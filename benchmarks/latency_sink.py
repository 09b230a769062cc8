"""The far end of the latency benchmark's extra senders: answers each offer and drops the media.

Run by ``benchmarks/latency_paths.py`` as ``python -m benchmarks.latency_sink``: each line on stdin
is ``{"sdp": OFFER}``, each answer goes out as one line ``{"sdp": ANSWER}``, in order. Every RTP
datagram is dropped as it comes off the socket (``count_rtp_datagrams`` with a handler that does
nothing): nothing is decrypted, decoded or answered, so the sink costs the machine as little as
possible. It runs until stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from signaling.aiortc_hooks import count_rtp_datagrams, set_host_addresses


def _drop(data: bytes) -> None:
    return None


async def answer(offer_sdp: str) -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
    for transceiver in pc.getTransceivers():
        transceiver.direction = "recvonly"
    await pc.setLocalDescription(await pc.createAnswer())
    count_rtp_datagrams(pc, _drop)
    return pc


async def serve() -> None:
    set_host_addresses(["127.0.0.1"])
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    connections: list[RTCPeerConnection] = []
    try:
        while line := await reader.readline():
            pc = await answer(json.loads(line)["sdp"])
            connections.append(pc)
            sys.stdout.write(json.dumps({"sdp": pc.localDescription.sdp}) + "\n")
            sys.stdout.flush()
    finally:
        for pc in connections:
            with contextlib.suppress(Exception):
                await pc.close()


if __name__ == "__main__":
    asyncio.run(serve())
