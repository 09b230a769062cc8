"""The two paths ``benchmarks/latency.py`` compares, built so the measuring process does the same
work on both: the same number of aiortc peer connections, sending the same streams, and the same
receive path (see that module's docstring for why and how).

Each path is an async context manager: on entry it sets the call up and waits until every video
stream flows; while it is open, every video packet received in this process reaches a
:class:`VideoTap`, which records its one-way delay into a shared :class:`Samples` while
``Samples.recording`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtp import RtpPacket

from signaling.aiortc_hooks import current_ntp_time, route_keyframe_requests, tap_receiver
from signaling.client import ParticipantClient
from signaling.forwarding import is_vp8_keyframe_start
from signaling.loadtest import split_room_url
from signaling.synthetic_media import EncodedAudioTrack, EncodedMedia, EncodedVideoTrack

from .common import REPO, running_server

SETUP_TIMEOUT = 30.0
"""Longest wait for a path's streams to start."""

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
class Samples:
    """One-way delays of the video packets received while ``recording``."""

    recording: bool = False
    delays_ms: list[float] = field(default_factory=list)
    keyframe: list[bool] = field(default_factory=list)
    """Per sample: the packet belongs to a keyframe."""
    delta_packets: int = 0
    """Samples of delta-frame packets (``keyframe`` False)."""
    unstamped: int = 0
    """Video packets without abs-send-time (none expected: aiortc stamps every one)."""


class VideoTap:
    """Receives one video stream's decrypted RTP packets (aiortc's jitter buffer and decoder are
    skipped, as in ``ParticipantClient(decode=False)``) and records their delay."""

    def __init__(self, samples: Samples) -> None:
        self.samples = samples
        self.first_packet_at: float | None = None
        """``time.monotonic()`` of the first packet."""
        self._keyframe_timestamp: int | None = None

    async def on_packet(self, packet: RtpPacket) -> None:
        now = current_ntp_time()
        if self.first_packet_at is None:
            self.first_packet_at = time.monotonic()
        samples = self.samples
        if not samples.recording:
            return
        stamp = packet.extensions.abs_send_time
        if stamp is None:
            samples.unstamped += 1
            return
        if is_vp8_keyframe_start(packet.payload):
            self._keyframe_timestamp = packet.timestamp
        keyframe = packet.timestamp == self._keyframe_timestamp
        samples.delays_ms.append(one_way_ms(stamp, now))
        samples.keyframe.append(keyframe)
        samples.delta_packets += not keyframe


async def _ignore(packet: RtpPacket) -> None:
    return None


def tap(receiver: RTCRtpReceiver, kind: str, samples: Samples) -> VideoTap | None:
    """The one receive path of both cases: video to a :class:`VideoTap`, audio dropped on arrival
    (decrypted, not decoded); no RTCP feedback about either."""
    if kind != "video":
        tap_receiver(receiver, _ignore, keep_feedback=False)
        return None
    video = VideoTap(samples)
    tap_receiver(receiver, video.on_packet, keep_feedback=False)
    return video


def _config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def _preferences(kind: str) -> list[RTCRtpCodecCapability]:
    wanted = "audio/opus" if kind == "audio" else "video/vp8"
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    return [codec for codec in codecs if codec.mimeType.lower() == wanted]


def _tracks(media: EncodedMedia) -> dict[str, MediaStreamTrack]:
    """A fresh pair of tracks: every sender in both cases plays its own."""
    return {"audio": EncodedAudioTrack(media), "video": EncodedVideoTrack(media)}


def _attach(sender: RTCRtpSender, track: MediaStreamTrack) -> None:
    sender.replaceTrack(track)
    route_keyframe_requests(sender, getattr(track, "request_keyframe", lambda: None))


async def _wait(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SETUP_TIMEOUT
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"latency: {what} did not start within {SETUP_TIMEOUT:.0f} s")
        await asyncio.sleep(0.05)


async def _close_all(connections: list[RTCPeerConnection]) -> None:
    for pc in connections:
        with contextlib.suppress(Exception):
            await pc.close()


# ------------------------------------------------------------------ direct: a full mesh


async def _direct_pair(
    media: EncodedMedia, samples: Samples, connections: list[RTCPeerConnection]
) -> tuple[list[VideoTap], float]:
    """Two aiortc peers, each sending audio and video to the other (offer to answer, as the
    relay's negotiation runs); returns both video taps and when the offer was started."""
    offerer, answerer = RTCPeerConnection(_config()), RTCPeerConnection(_config())
    connections += [offerer, answerer]
    taps: list[VideoTap] = []
    started = time.monotonic()
    for kind, track in _tracks(media).items():
        transceiver = offerer.addTransceiver(kind, direction="sendrecv")
        transceiver.setCodecPreferences(_preferences(kind))
        _attach(transceiver.sender, track)
        taps += filter(None, [tap(transceiver.receiver, kind, samples)])
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    tracks = _tracks(media)
    for transceiver in answerer.getTransceivers():
        transceiver.direction = "sendrecv"
        _attach(transceiver.sender, tracks[transceiver.kind])
        taps += filter(None, [tap(transceiver.receiver, transceiver.kind, samples)])
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    return taps, started


@contextlib.asynccontextmanager
async def direct_mesh(
    media: EncodedMedia, people: int, samples: Samples, first_packet_ms: list[float]
) -> AsyncIterator[None]:
    """``people`` aiortc peers, every pair connected directly: people * (people - 1) peer
    connections, each sending one audio and one video stream and receiving one of each.
    Appends each pair's createOffer -> first video packet time to ``first_packet_ms``."""
    connections: list[RTCPeerConnection] = []
    try:
        pairs = [
            await _direct_pair(media, samples, connections)
            for _ in range(people * (people - 1) // 2)
        ]
        taps = [video for pair_taps, _ in pairs for video in pair_taps]
        await _wait(lambda: all(t.first_packet_at is not None for t in taps), "direct video")
        for pair_taps, started in pairs:
            first = min(t.first_packet_at or 0.0 for t in pair_taps)
            first_packet_ms.append((first - started) * 1000)
        yield
    finally:
        await _close_all(connections)


# ------------------------------------------------------------------ through the relay


@contextlib.asynccontextmanager
async def through_relay(media: EncodedMedia, people: int, samples: Samples) -> AsyncIterator[None]:
    """``people`` participants in one room of a fresh ``meetnow serve`` (people peer
    connections, each sending one audio and one video stream into the room and receiving the
    others'), plus people * (people - 2) peer connections that each send one more audio and
    video stream to a sink process: the copies a mesh peer sends that a relay participant
    does not, so this process sends exactly what it sends in :func:`direct_mesh`."""
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
            for index in range(people)
        ]
        try:
            for client in clients:
                await client.join()
            await _wait(lambda: _everyone_receives_video(clients), "video through the relay")
            taps = _retap(clients, samples)
            if len(taps) != people * (people - 1):
                raise RuntimeError(f"latency: {len(taps)} video streams through the relay")
            async with _sink_senders(media, people * (people - 2)):
                await _wait(lambda: all(t.first_packet_at is not None for t in taps), "taps")
                yield
        finally:
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.close()


def _everyone_receives_video(clients: list[ParticipantClient]) -> bool:
    ids = [client.participant_id for client in clients]
    return all(
        (stream := client.video_from(other)) is not None and stream.packets > 0
        for client in clients
        for other in ids
        if other is not None and other != client.participant_id
    )


def _retap(clients: list[ParticipantClient], samples: Samples) -> list[VideoTap]:
    """Put every receiving m-line of the clients on the receive path of the direct mesh (this
    replaces the client's own packet-counting tap: one handler per packet, as there)."""
    taps: list[VideoTap] = []
    for client in clients:
        assert client.pc is not None
        for transceiver in client.pc.getTransceivers():
            if transceiver.direction == "recvonly":
                video = tap(transceiver.receiver, transceiver.kind, samples)
                taps += [video] if video is not None else []
    return taps


@contextlib.asynccontextmanager
async def _sink_senders(media: EncodedMedia, count: int) -> AsyncIterator[None]:
    """``count`` peer connections, each sending audio and video to ``benchmarks.latency_sink``
    in its own process (which drops every packet unread), connected before this yields."""
    if count == 0:
        yield
        return
    sink = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.latency_sink",
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 22,
    )
    assert sink.stdin is not None and sink.stdout is not None
    connections: list[RTCPeerConnection] = []
    try:
        for _ in range(count):
            pc = RTCPeerConnection(_config())
            connections.append(pc)
            for kind, track in _tracks(media).items():
                transceiver = pc.addTransceiver(kind, direction="sendonly")
                transceiver.setCodecPreferences(_preferences(kind))
                _attach(transceiver.sender, track)
            await pc.setLocalDescription(await pc.createOffer())
            sink.stdin.write(json.dumps({"sdp": pc.localDescription.sdp}).encode() + b"\n")
            await sink.stdin.drain()
            answer = json.loads(await sink.stdout.readline())
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        await _wait(
            lambda: all(pc.connectionState == "connected" for pc in connections), "sink senders"
        )
        yield
    finally:
        await _close_all(connections)
        sink.stdin.close()
        try:
            await asyncio.wait_for(sink.wait(), 10)
        except TimeoutError:
            sink.kill()
            await sink.wait()
