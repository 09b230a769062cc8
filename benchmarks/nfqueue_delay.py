"""Delay with jitter where the kernel has no ``netem``: hold each packet of an NFQUEUE queue for
``delay ± jitter`` ms (uniform, so packets reorder as they do under netem), then accept it.

Pure Python over a netlink socket (``NETLINK_NETFILTER``, the nfnetlink_queue protocol), so it
needs neither libnetfilter-queue nor a compiled binding: it binds one queue, asks for packet
metadata only (``NFQNL_COPY_META``: the id is all a verdict needs) and answers each packet with
``NF_ACCEPT`` when its time is due. Run as root inside the network namespace whose iptables rules
send packets to the queue (``-j NFQUEUE --queue-num N --queue-bypass``: with this program gone,
packets pass undelayed rather than being dropped)::

    ip netns exec NS python -m benchmarks.nfqueue_delay --queue 7 --delay 40 --jitter 10

It prints ``ready`` once bound, and stops on SIGTERM/SIGINT or after ``--seconds`` (bounded, so a
benchmark that dies cannot leave it running for ever), releasing every held packet first.
"""

from __future__ import annotations

import argparse
import heapq
import random
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 2
NLA_TYPE_MASK = 0x3FFF
QUEUE_MAXLEN = 8192
"""Packets the kernel may hold for us at once (40 ms of a few thousand packets/s fits easily)."""

NLMSG_HEADER = struct.Struct("=IHHII")
NFGEN_HEADER = struct.Struct("=BBH")  # family, version, res_id (already big-endian below)
ATTR_HEADER = struct.Struct("=HH")


def _align(length: int) -> int:
    return (length + 3) & ~3


def attribute(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = ATTR_HEADER.size + len(payload)
    return ATTR_HEADER.pack(length, kind) + payload + bytes(_align(length) - length)


def message(kind: int, queue: int, attributes: bytes, sequence: int, flags: int) -> bytes:
    """An nfnetlink_queue message: netlink header, nfgenmsg (AF_UNSPEC, version 0, the queue
    number in network order), then ``attributes``."""
    subsystem_type = (NFNL_SUBSYS_QUEUE << 8) | kind
    body = NFGEN_HEADER.pack(socket.AF_UNSPEC, 0, socket.htons(queue)) + attributes
    length = NLMSG_HEADER.size + len(body)
    return NLMSG_HEADER.pack(length, subsystem_type, NLM_F_REQUEST | flags, sequence, 0) + body


def verdict(queue: int, packet_id: int) -> bytes:
    return message(
        NFQNL_MSG_VERDICT,
        queue,
        attribute(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, packet_id)),
        0,
        0,
    )


def packet_ids(datagram: bytes) -> Iterator[int]:
    """The packet id of every NFQNL_MSG_PACKET message in one netlink read; raises on an error
    message that is not an acknowledgement."""
    offset = 0
    while offset + NLMSG_HEADER.size <= len(datagram):
        length, kind, _, _, _ = NLMSG_HEADER.unpack_from(datagram, offset)
        if length < NLMSG_HEADER.size:
            return
        end = offset + length
        if kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", datagram, offset + NLMSG_HEADER.size)
            if error != 0:
                raise OSError(-error, "nfnetlink_queue refused a request")
        elif kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            position = offset + NLMSG_HEADER.size + NFGEN_HEADER.size
            while position + ATTR_HEADER.size <= end:
                attr_length, attr_kind = ATTR_HEADER.unpack_from(datagram, position)
                if attr_length < ATTR_HEADER.size:
                    break
                if attr_kind & NLA_TYPE_MASK == NFQA_PACKET_HDR:
                    yield struct.unpack_from(">I", datagram, position + ATTR_HEADER.size)[0]
                    break
                position += _align(attr_length)
        offset += _align(length)


def bind(queue: int) -> socket.socket:
    """A netlink socket bound to ``queue``, copying metadata only."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((0, 0))
    command = struct.pack("=BBH", NFQNL_CFG_CMD_BIND, 0, socket.htons(socket.AF_INET))
    requests = [
        attribute(NFQA_CFG_CMD, command),
        attribute(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META)),
        attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", QUEUE_MAXLEN)),
    ]
    for sequence, request in enumerate(requests, start=1):
        sock.send(message(NFQNL_MSG_CONFIG, queue, request, sequence, NLM_F_ACK))
        for _ in packet_ids(sock.recv(65536)):  # the acknowledgement: raises if refused
            pass
    return sock


def hold_time(rng: random.Random, delay_ms: float, jitter_ms: float) -> float:
    """Seconds one packet is held: ``delay_ms`` plus uniform noise within ± ``jitter_ms``."""
    return max(0.0, delay_ms + rng.uniform(-jitter_ms, jitter_ms)) / 1000


def serve(queue: int, delay_ms: float, jitter_ms: float, seconds: float, seed: int) -> int:
    """Hold and release packets until SIGTERM/SIGINT or ``seconds``; returns packets handled."""
    stopping = False

    def stop(_signal: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    rng = random.Random(seed)
    sock = bind(queue)
    sock.setblocking(False)
    held: list[tuple[float, int]] = []
    handled = 0
    deadline = time.monotonic() + seconds
    print("ready", flush=True)
    try:
        while not stopping and time.monotonic() < deadline:
            now = time.monotonic()
            while held and held[0][0] <= now:
                sock.send(verdict(queue, heapq.heappop(held)[1]))
                handled += 1
            wait = min(0.2, max(0.0, held[0][0] - now)) if held else 0.2
            readable, _, _ = select.select([sock], [], [], wait)
            if not readable:
                continue
            try:
                datagram = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:  # ENOBUFS: the kernel dropped messages; carry on with the next
                continue
            arrived = time.monotonic()
            for packet_id in packet_ids(datagram):
                heapq.heappush(held, (arrived + hold_time(rng, delay_ms, jitter_ms), packet_id))
    finally:
        for _, packet_id in held:  # never strand a packet in the kernel's queue
            sock.send(verdict(queue, packet_id))
        unbind = struct.pack("=BBH", NFQNL_CFG_CMD_UNBIND, 0, socket.htons(socket.AF_INET))
        sock.send(message(NFQNL_MSG_CONFIG, queue, attribute(NFQA_CFG_CMD, unbind), 99, 0))
        sock.close()
    return handled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nfqueue_delay")
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay", type=float, required=True, help="ms")
    parser.add_argument("--jitter", type=float, default=0.0, help="± ms, uniform")
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    handled = serve(args.queue, args.delay, args.jitter, args.seconds, args.seed)
    print(f"released {handled} packets", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
