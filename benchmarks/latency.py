"""Relay-added latency per video packet, p50 and p99, at 3 and at 8 participants.

aiortc stamps every video packet it sends with the abs-send-time header extension (24 bits, 6.18
fixed-point seconds of NTP time) just before the socket write; the relay copies the publisher's
value onto each forwarded packet. A receiver compares it with its own NTP clock
(``aiortc.clock.current_ntp_time``) as each decrypted packet arrives. Every peer runs on this
machine, so both ends read the same clock.

Like for like. Each case runs in this (the measuring) process, and both give it the same work:

- the same senders: people * (people - 1) aiortc peer connections, each sending one pre-encoded
  audio and one video stream through aiortc's packetizer (``pack()``). In the direct full mesh
  each peer sends to each other peer. Through the relay each participant sends one stream into
  the room, and people * (people - 2) more peer connections send the copies a mesh peer would
  send and a relay participant does not, to a sink in another process that drops them
  (``benchmarks/latency_sink.py``): without them the direct case would carry people - 1 times
  the relay case's sending work (twice, at 3 people) and look slower than it is;
- the same receive path: every one of the people * (people - 1) video streams ends in the same
  tap (decrypted, neither depacketized nor decoded, no feedback, one handler per packet) and
  every audio stream is dropped on arrival the same way (``benchmarks/latency_paths.py``).

What differs is only the path: straight over loopback, or through a fresh ``meetnow serve``
(one relay process). Media: 320x240 VP8 at about 300 kbps (about one packet per frame, a
keyframe burst every two seconds as the loop restarts) and Opus, so that eight people's mesh
(56 streams each way in one Python process) stays within one core.

Each percentile rests on at least ``MIN_PACKETS`` video packets: every path records for its
share of the duration and longer if it must, until it has them (delta-frame packets counted);
:func:`measure` raises :class:`TooFewPackets` if a distribution still has fewer.
Relay-added latency is the relay distribution minus the direct one, percentile by percentile.

    .venv/bin/python -m benchmarks.latency --seconds 4 --rounds 1 --sizes 3,8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from signaling.aiortc_hooks import set_host_addresses
from signaling.synthetic_media import EncodedMedia, encode_media

from .common import fmt, percentile, say, table
from .latency_paths import Samples, direct_mesh, through_relay

SIZES = (3, 8)
"""Room sizes measured, in people."""
SMOKE_SIZES = (3,)
DURATION = 12.0
"""Seconds of recorded packets per path and room size, over all rounds (longer if needed to
reach ``MIN_PACKETS``)."""
QUICK_DURATION = 6.0
SMOKE_DURATION = 1.0
WARMUP = 1.0
"""Seconds each path runs before recording starts."""
ROUNDS = 2
MIN_PACKETS = 2000
"""Fewest video packets any reported percentile may rest on."""
MAX_EXTRA_SECONDS = 30.0
"""Longest a round records beyond its share of the duration to reach its share of packets."""
TARGET_P50_MS = 1.0
TARGET_P99_MS = 5.0


class TooFewPackets(RuntimeError):
    """A distribution has fewer packets than its percentiles need."""


def latency_media() -> EncodedMedia:
    return encode_media(width=320, height=240, seconds=2.0, bitrate=300_000)


@dataclass
class Distribution:
    label: str
    samples: list[float]
    unstamped: int
    keyframe: list[bool] = field(default_factory=list)

    def p(self, fraction: float) -> float:
        return percentile(self.samples, fraction) if self.samples else float("nan")

    def extend(self, other: Distribution) -> None:
        self.samples += other.samples
        self.keyframe += other.keyframe
        self.unstamped += other.unstamped

    def delta_frames(self) -> Distribution:
        """Only the packets of delta frames (keyframe bursts left out)."""
        kept = [v for v, key in zip(self.samples, self.keyframe, strict=True) if not key]
        return Distribution(f"{self.label}, delta frames only", kept, 0, [False] * len(kept))

    @property
    def keyframe_share(self) -> float:
        return sum(self.keyframe) / len(self.keyframe) if self.keyframe else 0.0

    @classmethod
    def of(cls, label: str, samples: Samples) -> Distribution:
        return cls(label, samples.delays_ms, samples.unstamped, samples.keyframe)


@dataclass
class SizeResult:
    """Both paths at one room size."""

    people: int
    direct: Distribution
    relay: Distribution
    direct_first_packet_ms: list[float]
    """Direct aiortc calls: createOffer to the first video packet, per peer-connection pair."""

    @property
    def added_p50(self) -> float:
        return self.relay.p(0.5) - self.direct.p(0.5)

    @property
    def added_p99(self) -> float:
        return self.relay.p(0.99) - self.direct.p(0.99)

    def distributions(self) -> list[Distribution]:
        """Every distribution a percentile is reported for."""
        return [self.direct, self.relay, self.direct.delta_frames(), self.relay.delta_frames()]


@dataclass
class LatencyResult:
    sizes: dict[int, SizeResult]
    """By room size (people), in the order measured."""
    min_packets: int
    """Fewest packets each distribution was required to hold."""

    @property
    def headline(self) -> SizeResult:
        """The largest room measured: the one ``direct``, ``relay`` and the added figures
        describe."""
        return self.sizes[max(self.sizes)]

    @property
    def direct(self) -> Distribution:
        return self.headline.direct

    @property
    def relay(self) -> Distribution:
        return self.headline.relay

    @property
    def added_p50(self) -> float:
        return self.headline.added_p50

    @property
    def added_p99(self) -> float:
        return self.headline.added_p99

    @property
    def direct_first_packet_ms(self) -> list[float]:
        """Offer -> first video packet of direct calls, in the smallest room (the least loaded)."""
        return self.sizes[min(self.sizes)].direct_first_packet_ms

    def too_small(self) -> list[str]:
        """Each distribution with fewer than ``min_packets`` packets."""
        return [
            f"{size.people} people, {d.label}: {len(d.samples)} packets < {self.min_packets}"
            for size in self.sizes.values()
            for d in size.distributions()
            if len(d.samples) < self.min_packets
        ]


# ------------------------------------------------------------------ measuring


Path = Callable[[Samples], AbstractAsyncContextManager[None]]


async def record(path: Path, seconds: float, delta_packets: int) -> Samples:
    """Open a path, let it warm up, and record for ``seconds`` and until at least
    ``delta_packets`` delta-frame packets are in (``MAX_EXTRA_SECONDS`` more at most)."""
    samples = Samples()
    async with path(samples):
        await asyncio.sleep(WARMUP)
        samples.recording = True
        started = time.monotonic()
        await asyncio.sleep(seconds)
        while samples.delta_packets < delta_packets:
            if time.monotonic() - started > seconds + MAX_EXTRA_SECONDS:
                break
            await asyncio.sleep(0.1)
        samples.recording = False
    return samples


async def measure_size(
    media: EncodedMedia, people: int, duration: float, rounds: int, min_packets: int
) -> SizeResult:
    """``rounds`` alternations of direct and relayed, ``duration / rounds`` seconds each, pooled:
    a passing burst of load elsewhere on the machine then weighs on both sides alike."""
    direct = Distribution("direct aiortc mesh", [], 0)
    relayed = Distribution("through the relay", [], 0)
    first_ms: list[float] = []
    share = math.ceil(min_packets / rounds)

    def mesh(samples: Samples) -> AbstractAsyncContextManager[None]:
        return direct_mesh(media, people, samples, first_ms)

    def relay(samples: Samples) -> AbstractAsyncContextManager[None]:
        return through_relay(media, people, samples)

    for _ in range(rounds):
        direct.extend(Distribution.of(direct.label, await record(mesh, duration / rounds, share)))
        relayed.extend(
            Distribution.of(relayed.label, await record(relay, duration / rounds, share))
        )
    result = SizeResult(people, direct, relayed, first_ms)
    for distribution in (direct, relayed):
        say(describe(people, distribution))
    direct_delta, relay_delta = direct.delta_frames(), relayed.delta_frames()
    say(
        f"  {people} people: keyframe packets {relayed.keyframe_share:.0%}; relay-added p50 "
        f"{result.added_p50:+.2f} ms, p99 {result.added_p99:+.2f} ms; delta frames only: p50 "
        f"{relay_delta.p(0.5) - direct_delta.p(0.5):+.2f} ms, "
        f"p99 {relay_delta.p(0.99) - direct_delta.p(0.99):+.2f} ms"
    )
    return result


async def measure_async(
    duration: float,
    rounds: int = ROUNDS,
    *,
    sizes: Sequence[int] = SIZES,
    min_packets: int = MIN_PACKETS,
) -> LatencyResult:
    set_host_addresses(["127.0.0.1"])
    media = latency_media()
    result = LatencyResult({}, min_packets)
    for people in sizes:
        result.sizes[people] = await measure_size(media, people, duration, rounds, min_packets)
    short = result.too_small()
    if short:
        raise TooFewPackets("; ".join(short))
    return result


def measure(
    duration: float,
    rounds: int = ROUNDS,
    *,
    sizes: Sequence[int] = SIZES,
    min_packets: int = MIN_PACKETS,
) -> LatencyResult:
    """Measure every size in ``sizes``; raises :class:`TooFewPackets` if any reported percentile
    would rest on fewer than ``min_packets`` packets (0: no minimum, for smoke runs)."""
    return asyncio.run(measure_async(duration, rounds, sizes=sizes, min_packets=min_packets))


# ------------------------------------------------------------------ reporting


def describe(people: int, distribution: Distribution) -> str:
    return (
        f"  latency, {people} people, {distribution.label}: {len(distribution.samples)} video "
        f"packets, p50 {distribution.p(0.5):.2f} ms, p99 {distribution.p(0.99):.2f} ms, "
        f"max {max(distribution.samples, default=float('nan')):.2f} ms"
    )


def _added_row(label: str, direct: Distribution, relay: Distribution) -> list[object]:
    return [
        label,
        "",
        f"{relay.p(0.5) - direct.p(0.5):+.2f}",
        f"{relay.p(0.9) - direct.p(0.9):+.2f}",
        f"{relay.p(0.99) - direct.p(0.99):+.2f}",
        "",
    ]


def markdown(result: LatencyResult) -> str:
    """The section's method in two sentences and one table, every size."""
    rows: list[list[object]] = []
    for size in result.sizes.values():
        direct_delta, relay_delta = size.direct.delta_frames(), size.relay.delta_frames()
        for d in (size.direct, size.relay, direct_delta, relay_delta):
            rows.append(
                [
                    f"{size.people} people: {d.label}",
                    len(d.samples),
                    fmt(d.p(0.5), 2),
                    fmt(d.p(0.9), 2),
                    fmt(d.p(0.99), 2),
                    fmt(max(d.samples, default=float("nan")), 2),
                ]
            )
        rows.append(
            _added_row(
                f"{size.people} people: relay-added, delta frames only", direct_delta, relay_delta
            )
        )
        rows.append(
            _added_row(
                f"**{size.people} people: relay-added, all packets**", size.direct, size.relay
            )
        )
    method = (
        "Like for like: in both cases the measuring process runs people x (people - 1) aiortc "
        "peer connections that each send one pre-encoded audio and video stream (through the "
        "relay, people x (people - 2) of them send to a sink process: the copies a mesh peer "
        "sends and a relay participant does not), and receives the people x (people - 1) video "
        "streams through the same tap. "
        + (
            f"Each percentile rests on at least {result.min_packets} video packets."
            if result.min_packets
            else "No minimum number of packets was required (smoke run): these figures are noise."
        )
    )
    header = [
        "path (each person receives everyone else)",
        "packets",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
    ]
    return method + "\n\n" + table(header, rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.latency", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=DURATION, help="per path and size")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="e.g. 3,8")
    parser.add_argument("--min-packets", type=int, default=MIN_PACKETS)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    with contextlib.suppress(KeyboardInterrupt):
        result = measure(args.seconds, args.rounds, sizes=sizes, min_packets=args.min_packets)
        say("")
        say(markdown(result))
        return 0
    return 130


if __name__ == "__main__":
    raise SystemExit(main())
