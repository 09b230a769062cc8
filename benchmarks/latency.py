"""Relay-added latency per video packet, p50 and p99.

aiortc stamps every video packet it sends with the abs-send-time header extension (24 bits, 6.18
fixed-point seconds of NTP time) just before the socket write; the relay copies the publisher's
value onto each forwarded packet. A receiver compares it with its own NTP clock
(``aiortc.clock.current_ntp_time``) as each decrypted packet arrives. Every peer runs on this
machine, so both ends read the same clock.

Two runs in this process, one after the other, with the same pre-encoded media and the same
receive path (``tap_receiver``, no decoding, no feedback, as ``ParticipantClient(decode=False)``):

- through the relay: three ``ParticipantClient`` in one room of a fresh ``meetnow serve`` process,
  each receiving the other two;
- direct (the baseline): three aiortc peers in a full mesh of peer connections on loopback, each
  receiving the other two straight from the sender.

Relay-added latency is the relay distribution minus the direct one, percentile by percentile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.rtp import RtpPacket

from signaling.aiortc_hooks import (
    current_ntp_time,
    route_keyframe_requests,
    set_host_addresses,
    tap_receiver,
)
from signaling.client import ParticipantClient
from signaling.forwarding import is_vp8_keyframe_start
from signaling.loadtest import (
    EncodedAudioTrack,
    EncodedMedia,
    EncodedVideoTrack,
    encode_media,
    split_room_url,
)

from .common import fmt, percentile, running_server, say, table

PARTICIPANTS = 3
DURATION = 10.0
QUICK_DURATION = 4.0
WARMUP = 1.0
ROUNDS = 2
TARGET_P50_MS = 1.0
TARGET_P99_MS = 5.0

WRAP = 1 << 24
UNITS_PER_SECOND = 1 << 18


def one_way_ms(abs_send_time: int, ntp_now: int) -> float:
    """Milliseconds from the sender's abs-send-time stamp to ``ntp_now`` (64-s wraparound)."""
    arrival = (ntp_now >> 14) & (WRAP - 1)
    delta = (arrival - abs_send_time) % WRAP
    if delta >= WRAP // 2:  # arrival "before" sending: clock rounding, a small negative value
        delta -= WRAP
    return delta * 1000 / UNITS_PER_SECOND


@dataclass
class Recorder:
    """Collects one-way delays of the video packets it sees while ``recording``."""

    recording: bool = False
    samples: list[float] = field(default_factory=list)
    keyframe: list[bool] = field(default_factory=list)
    """Per sample: the packet belongs to a keyframe (the burst after a keyframe request, and the
    load media's loop restart every two seconds)."""
    unstamped: int = 0
    _keyframe_timestamps: dict[int, int] = field(default_factory=dict)
    first_packet_at: float | None = None

    def handler(self) -> Callable[[RtpPacket], Awaitable[None]]:
        async def on_packet(packet: RtpPacket) -> None:
            now = current_ntp_time()
            if self.first_packet_at is None:
                self.first_packet_at = time.monotonic()
            if not self.recording:
                return
            stamp = packet.extensions.abs_send_time
            if stamp is None:
                self.unstamped += 1
                return
            if is_vp8_keyframe_start(packet.payload):
                self._keyframe_timestamps[packet.ssrc] = packet.timestamp
            self.samples.append(one_way_ms(stamp, now))
            self.keyframe.append(self._keyframe_timestamps.get(packet.ssrc) == packet.timestamp)

        return on_packet


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
        return Distribution(f"{self.label}, delta frames only", kept, 0)

    @property
    def keyframe_share(self) -> float:
        return sum(self.keyframe) / len(self.keyframe) if self.keyframe else 0.0


@dataclass
class LatencyResult:
    direct: Distribution
    relay: Distribution
    direct_first_packet_ms: list[float]
    """Direct aiortc call: createOffer to the first video packet, per peer connection pair."""

    @property
    def added_p50(self) -> float:
        return self.relay.p(0.5) - self.direct.p(0.5)

    @property
    def added_p99(self) -> float:
        return self.relay.p(0.99) - self.direct.p(0.99)


# ------------------------------------------------------------------ through the relay


async def through_relay(media: EncodedMedia, duration: float) -> Distribution:
    recorder = Recorder()
    with running_server() as server:
        base_url, room_id = split_room_url(server.create_room("latency"))
        clients = [
            ParticipantClient(
                base_url,
                room_id,
                name=f"latency-{index}",
                audio=EncodedAudioTrack(media),
                video=EncodedVideoTrack(media),
                decode=False,
            )
            for index in range(PARTICIPANTS)
        ]
        try:
            for client in clients:
                await client.join()
            await _wait_streams(clients)
            tapped = 0
            for client in clients:
                assert client.pc is not None
                for transceiver in client.pc.getTransceivers():
                    if transceiver.kind == "video" and transceiver.direction == "recvonly":
                        # On top of the client's own tap, which then still counts the packet.
                        tap_receiver(transceiver.receiver, recorder.handler(), keep_feedback=True)
                        tapped += 1
            if tapped != PARTICIPANTS * (PARTICIPANTS - 1):
                say(f"  latency: {tapped} video streams tapped through the relay")
            await _record(recorder, duration)
        finally:
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.close()
    return Distribution(
        "through the relay", recorder.samples, recorder.unstamped, recorder.keyframe
    )


async def _wait_streams(clients: list[ParticipantClient], timeout: float = 15.0) -> None:
    ids = [c.participant_id for c in clients]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(
            (stream := client.video_from(other)) is not None and stream.frames > 0
            for client in clients
            for other in ids
            if other is not None and other != client.participant_id
        ):
            return
        await asyncio.sleep(0.05)
    say("  latency: not every video stream arrived through the relay")


async def _record(recorder: Recorder, duration: float) -> None:
    await asyncio.sleep(WARMUP)
    recorder.recording = True
    await asyncio.sleep(duration)
    recorder.recording = False


# ------------------------------------------------------------------ direct (baseline)


def _preferences(kind: str) -> list[RTCRtpCodecCapability]:
    wanted = "audio/opus" if kind == "audio" else "video/vp8"
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    return [codec for codec in codecs if codec.mimeType.lower() == wanted]


def _tracks(media: EncodedMedia) -> dict[str, MediaStreamTrack]:
    return {"audio": EncodedAudioTrack(media), "video": EncodedVideoTrack(media)}


def _attach(sender: RTCRtpSender, track: MediaStreamTrack) -> None:
    sender.replaceTrack(track)
    route_keyframe_requests(sender, getattr(track, "request_keyframe", lambda: None))


def _tap(receiver: RTCRtpReceiver, kind: str, recorder: Recorder, first: Recorder) -> None:
    if kind == "video":
        record = recorder.handler()
        mark = first.handler()

        async def on_packet(packet: RtpPacket) -> None:
            await mark(packet)
            await record(packet)

        tap_receiver(receiver, on_packet, keep_feedback=False)
    else:

        async def ignore(packet: RtpPacket) -> None:
            return None

        tap_receiver(receiver, ignore, keep_feedback=False)


async def _direct_pair(
    media: EncodedMedia, recorder: Recorder
) -> tuple[RTCPeerConnection, RTCPeerConnection, Recorder, float]:
    """Two aiortc peers, each sending audio and video to the other, as the relay would offer."""
    config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    offerer, answerer = RTCPeerConnection(config), RTCPeerConnection(config)
    first = Recorder()
    started = time.monotonic()
    for kind, track in _tracks(media).items():
        transceiver = offerer.addTransceiver(kind, direction="sendrecv")
        transceiver.setCodecPreferences(_preferences(kind))
        _attach(transceiver.sender, track)
        _tap(transceiver.receiver, kind, recorder, first)
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    tracks = _tracks(media)
    for transceiver in answerer.getTransceivers():
        transceiver.direction = "sendrecv"
        _attach(transceiver.sender, tracks[transceiver.kind])
        _tap(transceiver.receiver, transceiver.kind, recorder, first)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    return offerer, answerer, first, started


async def direct(media: EncodedMedia, duration: float) -> tuple[Distribution, list[float]]:
    recorder = Recorder()
    connections: list[RTCPeerConnection] = []
    firsts: list[tuple[Recorder, float]] = []
    try:
        # A full mesh of three: pairs (0,1), (0,2), (1,2); each peer receives the other two.
        for _ in range(PARTICIPANTS * (PARTICIPANTS - 1) // 2):
            offerer, answerer, first, started = await _direct_pair(media, recorder)
            connections += [offerer, answerer]
            firsts.append((first, started))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(f.first_packet_at is None for f, _ in firsts):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await _record(recorder, duration)
    finally:
        for pc in connections:
            with contextlib.suppress(Exception):
                await pc.close()
    first_ms = [
        (first.first_packet_at - started) * 1000
        for first, started in firsts
        if first.first_packet_at is not None
    ]
    distribution = Distribution(
        "direct aiortc to aiortc", recorder.samples, recorder.unstamped, recorder.keyframe
    )
    return distribution, first_ms


# ------------------------------------------------------------------ the section


async def measure_async(duration: float, rounds: int = ROUNDS) -> LatencyResult:
    """``rounds`` alternations of direct and relayed, ``duration / rounds`` seconds each, pooled:
    a passing burst of load elsewhere on the machine then weighs on both sides alike."""
    set_host_addresses(["127.0.0.1"])
    media = encode_media()
    baseline = Distribution("direct aiortc to aiortc", [], 0)
    relayed = Distribution("through the relay", [], 0)
    first_ms: list[float] = []
    for _ in range(rounds):
        part, first = await direct(media, duration / rounds)
        baseline.extend(part)
        first_ms += first
        relayed.extend(await through_relay(media, duration / rounds))
    say(describe(baseline))
    say(describe(relayed))
    result = LatencyResult(baseline, relayed, first_ms)
    direct_delta, relay_delta = baseline.delta_frames(), relayed.delta_frames()
    say(
        f"  keyframe packets: {relayed.keyframe_share:.0%} of the packets; delta frames only: "
        f"relay-added p50 {relay_delta.p(0.5) - direct_delta.p(0.5):+.2f} ms, "
        f"p99 {relay_delta.p(0.99) - direct_delta.p(0.99):+.2f} ms"
    )
    say(
        f"  relay-added latency: p50 {result.added_p50:+.2f} ms (target <= {TARGET_P50_MS} ms), "
        f"p99 {result.added_p99:+.2f} ms (target <= {TARGET_P99_MS} ms)"
    )
    return result


def measure(duration: float, rounds: int = ROUNDS) -> LatencyResult:
    return asyncio.run(measure_async(duration, rounds))


def describe(distribution: Distribution) -> str:
    return (
        f"  latency {distribution.label}: {len(distribution.samples)} video packets, "
        f"p50 {distribution.p(0.5):.2f} ms, p99 {distribution.p(0.99):.2f} ms, "
        f"max {max(distribution.samples, default=float('nan')):.2f} ms"
    )


def markdown(result: LatencyResult) -> str:
    rows = []
    direct_delta, relay_delta = result.direct.delta_frames(), result.relay.delta_frames()
    for distribution in (result.direct, result.relay, direct_delta, relay_delta):
        rows.append(
            [
                distribution.label,
                len(distribution.samples),
                fmt(distribution.p(0.5), 2),
                fmt(distribution.p(0.9), 2),
                fmt(distribution.p(0.99), 2),
                fmt(max(distribution.samples, default=float("nan")), 2),
            ]
        )
    rows.append(
        [
            "relay-added, delta frames only",
            "",
            f"{relay_delta.p(0.5) - direct_delta.p(0.5):+.2f}",
            f"{relay_delta.p(0.9) - direct_delta.p(0.9):+.2f}",
            f"{relay_delta.p(0.99) - direct_delta.p(0.99):+.2f}",
            "",
        ]
    )
    rows.append(
        [
            "**relay-added** (relay - direct, all packets)",
            "",
            f"**{result.added_p50:+.2f}**",
            f"{result.relay.p(0.9) - result.direct.p(0.9):+.2f}",
            f"**{result.added_p99:+.2f}**",
            "",
        ]
    )
    return table(
        [
            "path (3 participants, each receives 2 videos)",
            "packets",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
        ],
        rows,
    )
