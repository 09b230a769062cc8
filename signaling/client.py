"""A meetnow participant in Python (aiortc), speaking the public protocol.

Used by the tests and by ``meetnow loadtest``: it joins a room like a browser does, publishes the
tracks it is given, answers every offer, and counts what it receives from each other participant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from .aiortc_hooks import (
    ReceiverFeedback,
    count_rtp_datagrams,
    route_keyframe_requests,
    tap_receiver,
)
from .aiortc_hooks.load_generator import use_packetizer
from .aiortc_hooks.routing import keep_streams_apart
from .impairment import ImpairedLink, Impairment, impair_peer_connection
from .protocol import JoinMessage
from .received_stream import FREEZE_SECONDS, ReceivedStream
from .synthetic_tracks import PatternVideoTrack, ToneAudioTrack
from .tasks import spawn

__all__ = [
    "FREEZE_SECONDS",
    "ParticipantClient",
    "PatternVideoTrack",
    "ReceivedStream",
    "ToneAudioTrack",
]


SRTP_AUTH_TAG_LENGTH = 10
"""Bytes of an SRTP packet's authentication tag (AES_CM_128_HMAC_SHA1_80)."""


def _ssrc_mids(sdp: str) -> dict[int, str]:
    """Which mid each SSRC announced in an SDP belongs to."""
    found: dict[int, str] = {}
    for section in sdp.split("\r\nm=")[1:]:
        mid = re.search(r"^a=mid:(\S+)", section, re.M)
        if mid is not None:
            for ssrc in re.findall(r"^a=ssrc:(\d+) ", section, re.M):
                found[int(ssrc)] = mid.group(1)
    return found


def _stream_key(track: dict[str, str]) -> str:
    """How :attr:`ParticipantClient.streams` names a received track (see there)."""
    source = track.get("source", "")
    return source if source.startswith("screen") else track["kind"]


@dataclass
class ParticipantClient:
    """One participant: a websocket and a peer connection."""

    base_url: str
    """``http://host:port`` of the server."""
    room_id: str
    name: str = "tester"
    audio: MediaStreamTrack | None = None
    video: MediaStreamTrack | None = None
    session: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    origin: str | None = None
    """Origin header to send; None sends none (like any non-browser client)."""
    decode: bool = True
    """Decode what arrives (tests); False only counts RTP packets."""
    host_token: str | None = None
    """The host secret from a host link (``#host=...``), sent in ``join``."""
    count_encrypted: bool = False
    """With ``decode=False``: count SRTP datagrams off the socket without decrypting them, the
    cheapest way to receive (the load generator)."""
    feedback: bool = True
    """With ``count_encrypted``: answer what arrives as a browser does (receiver reports and
    REMB each second, NACK for sequence gaps, PLI when a video stream starts), so the relay
    carries its real feedback load. False sends no RTCP about received media at all."""
    impairment: Impairment | None = None
    """A bad network for this participant's datagrams, both directions (the load generator's
    ``--loss``, ``--delay``, ``--jitter``, ``--rate``)."""
    impairment_stream: int = 0
    """Tells this participant's random draws from the others' (its index in a load test)."""
    screen: MediaStreamTrack | None = None
    """A screen track to publish once sharing (:meth:`share_screen`, or from the join)."""
    screen_audio: MediaStreamTrack | None = None
    """The screen's tab audio, if any."""
    sharing: bool = False
    """Whether it shares its screen now (sent in ``join``: a reconnect keeps sharing)."""

    participant_id: str | None = None
    joined: dict[str, Any] | None = None
    """The server's ``joined`` message."""
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Everyone else in the room, as the server described them."""
    streams: dict[tuple[str, str], ReceivedStream] = field(default_factory=dict)
    """Received streams by (participant id, what): what is the kind (``audio``, ``video``) for a
    microphone or camera, the source (``screen``, ``screen_audio``) for a screen's streams."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    """``error`` messages received."""
    messages: list[dict[str, Any]] = field(default_factory=list)
    """Every message received, in order."""
    join_started_at: float = 0.0
    offers_answered: int = 0

    def __post_init__(self) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pc: RTCPeerConnection | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._consumers: dict[int, asyncio.Task[None]] = {}
        self._tapped: set[int] = set()
        self._ssrc_mids: dict[int, str] = {}
        self._receivers: dict[str, tuple[str, RTCRtpReceiver]] = {}
        """Receiving m-lines by mid: (kind, receiver), for the feedback of counted datagrams."""
        self._feedbacks: dict[str, ReceiverFeedback] = {}
        self._remb_bytes = 0
        self.links: tuple[ImpairedLink, ImpairedLink] | None = None
        """(outbound, inbound) impaired links, once installed: what they dropped."""
        self.connected_at: float | None = None
        """``time.monotonic()`` when the peer connection first reached "connected"."""
        self._mids: dict[str, tuple[str, str]] = {}
        self._joined_event = asyncio.Event()
        self._closed_event = asyncio.Event()
        self.close_code: int | None = None

    async def connect(self) -> None:
        """Open the websocket without joining."""
        self._http = aiohttp.ClientSession()
        headers = {"Origin": self.origin} if self.origin else {}
        ws_url = self.base_url.replace("http", "ws", 1) + f"/ws/{self.room_id}"
        self._ws = await self._http.ws_connect(ws_url, headers=headers, max_msg_size=0)
        self._tasks.append(asyncio.ensure_future(self._read()))

    async def join(self, timeout: float = 10.0, *, wait_for: str = "joined") -> dict[str, Any]:
        """Connect, send ``join`` and wait for ``joined`` (or ``waiting``, in a room with a
        lobby); returns that message."""
        self.join_started_at = time.monotonic()
        if self._ws is None:
            await self.connect()
        mark = len(self.messages)
        message = JoinMessage(
            name=self.name,
            session=self.session,
            audio=self.audio is not None,
            video=self.video is not None,
            host_token=self.host_token,
            screen=self.sharing,
            screen_audio=self.sharing and self.screen_audio is not None,
        )
        await self.send(message.model_dump(exclude_none=True))
        if wait_for == "joined":
            await asyncio.wait_for(self._joined_event.wait(), timeout)
        return await self.next_message(wait_for, timeout, since=mark)

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))

    async def send_raw(self, text: str) -> None:
        assert self._ws is not None
        await self._ws.send_str(text)

    async def next_message(
        self, type_: str, timeout: float = 5.0, *, since: int | None = None
    ) -> dict[str, Any]:
        """Wait for a message of this type received after index ``since`` of :attr:`messages`
        (default: after the call)."""
        start = len(self.messages) if since is None else since
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages[start:]:
                if message.get("type") == type_:
                    return message
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no {type_!r} message within {timeout} s")

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        await asyncio.wait_for(self._closed_event.wait(), timeout)
        return self.close_code

    async def share_screen(self, sharing: bool = True) -> None:
        """Start (with :attr:`screen`, and :attr:`screen_audio` if set) or stop sharing."""
        self.sharing = sharing
        audio = sharing and self.screen_audio is not None
        await self.send({"type": "screen_share", "sharing": sharing, "audio": audio})

    def screen_from(self, participant_id: str) -> ReceivedStream | None:
        return self.streams.get((participant_id, "screen"))

    @property
    def speakers(self) -> list[dict[str, Any]]:
        """The ``speakers`` messages received, in order."""
        return [m for m in self.messages if m.get("type") == "speakers"]

    def video_from(self, participant_id: str) -> ReceivedStream | None:
        return self.streams.get((participant_id, "video"))

    def audio_from(self, participant_id: str) -> ReceivedStream | None:
        return self.streams.get((participant_id, "audio"))

    @property
    def pc(self) -> RTCPeerConnection | None:
        return self._pc

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await self.send({"type": "leave"})
            await self._ws.close()
        for task in [*self._tasks, *self._consumers.values()]:
            task.cancel()
        for task in [*self._tasks, *self._consumers.values()]:
            with contextlib.suppress(BaseException):
                await task
        for feedback in self._feedbacks.values():
            feedback.close()
        if self._pc is not None:
            await self._pc.close()
        if self._http is not None:
            await self._http.close()

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                if raw.type != aiohttp.WSMsgType.TEXT:
                    continue
                message = json.loads(raw.data)
                self.messages.append(message)
                await self._handle(message)
        finally:
            self.close_code = self._ws.close_code
            self._closed_event.set()

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "joined":
            self.joined = message
            self.participant_id = message["participant_id"]
            self.participants = {p["id"]: p for p in message["participants"]}
            ice = [RTCIceServer(**s) for s in message["ice_servers"]]
            # Like a browser: "relay" means media only through the TURN servers given.
            policy = RTCIceTransportPolicy(message.get("ice_transport_policy", "all"))
            keep_streams_apart()  # a newly offered stream is never taken for another one's
            pc = self._pc = RTCPeerConnection(
                RTCConfiguration(
                    iceServers=ice,
                    iceTransportPolicy=policy,
                    bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
                )
            )

            @pc.on("connectionstatechange")
            def on_state() -> None:
                if pc.connectionState == "connected" and self.connected_at is None:
                    self.connected_at = time.monotonic()

            if self.count_encrypted and not self.decode and self.feedback:
                self._tasks.append(spawn(self._send_remb_every_second(), what="REMB loop"))
            self._joined_event.set()
        elif kind == "offer":
            await self._answer(message)
        elif kind in ("participant_joined", "participant_updated"):
            self.participants[message["participant"]["id"]] = message["participant"]
        elif kind == "participant_left":
            self.participants.pop(message["participant_id"], None)
        elif kind == "error":
            self.errors.append(message)

    async def _answer(self, offer: dict[str, Any]) -> None:
        pc = self._pc
        assert pc is not None
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        tracks: dict[str, dict[str, str]] = offer["tracks"]
        for transceiver in pc.getTransceivers():
            info = tracks.get(transceiver.mid or "")
            if info is None:
                transceiver.direction = "inactive"
                self._mids.pop(transceiver.mid or "", None)
            elif info["participant"] == self.participant_id:
                track = self._published_track(info["source"])
                if track is None:
                    transceiver.direction = "inactive"
                else:
                    transceiver.direction = "sendonly"
                    if transceiver.sender.track is None:
                        transceiver.sender.replaceTrack(track)
                        on_keyframe = getattr(track, "request_keyframe", None)
                        if on_keyframe is not None:
                            # A pre-encoded track answers PLIs itself (aiortc's would go nowhere).
                            route_keyframe_requests(transceiver.sender, on_keyframe)
                        packetizer = getattr(track, "packetizer", None)
                        if packetizer is not None:  # pre-encoded temporal layers: own descriptors
                            use_packetizer(transceiver.sender, packetizer)
            else:
                transceiver.direction = "recvonly"
                assert transceiver.mid is not None
                self._mids[transceiver.mid] = (info["participant"], _stream_key(info))
                self._receivers[transceiver.mid] = (info["kind"], transceiver.receiver)
                self._consume(transceiver)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        if self.count_encrypted and not self.decode:
            self._ssrc_mids.update(_ssrc_mids(offer["sdp"]))
            count_rtp_datagrams(pc, self._count_datagram)
        if self.impairment is not None and self.impairment.active and self.links is None:
            # Outermost, so that what it drops is never counted (the sockets exist by now).
            self.links = impair_peer_connection(pc, self.impairment, self.impairment_stream)
        await self.send(
            {"type": "answer", "revision": offer["revision"], "sdp": pc.localDescription.sdp}
        )
        self.offers_answered += 1

    def _published_track(self, source: str) -> MediaStreamTrack | None:
        tracks = {
            "microphone": self.audio,
            "camera": self.video,
            "screen": self.screen,
            "screen_audio": self.screen_audio,
        }
        return tracks.get(source)

    def _consume(self, transceiver: RTCRtpTransceiver) -> None:
        key = id(transceiver)
        if key in self._consumers or key in self._tapped or self.count_encrypted:
            return
        if self.decode:
            self._consumers[key] = asyncio.ensure_future(self._count_frames(transceiver))
            return
        self._tapped.add(key)

        async def count(packet: RtpPacket) -> None:
            owner = self._mids.get(transceiver.mid or "")
            if owner is not None:
                self._stream(owner).count_packet(packet, time.monotonic())

        tap_receiver(transceiver.receiver, count, keep_feedback=False)

    def _count_datagram(self, data: bytes) -> None:
        ssrc = int.from_bytes(data[8:12], "big")
        mid = self._ssrc_mids.get(ssrc)
        owner = self._mids.get(mid) if mid is not None else None
        if mid is None or owner is None:
            return
        seq = (data[2] << 8) | data[3]
        timestamp = int.from_bytes(data[4:8], "big")
        stream = self._stream(owner)
        starting = stream.first_frame_at is None
        stream.count_header(seq, timestamp, len(data) - 12 - SRTP_AUTH_TAG_LENGTH, time.monotonic())
        if self.feedback:
            feedback = self._feedback_for(mid)
            if feedback is not None:
                feedback.add(ssrc, data[1] & 0x7F, seq, timestamp)
                if starting and owner[1] in ("video", "screen"):
                    feedback.request_keyframe(ssrc)  # as a browser asks when a stream starts

    def _feedback_for(self, mid: str) -> ReceiverFeedback | None:
        feedback = self._feedbacks.get(mid)
        if feedback is None:
            entry = self._receivers.get(mid)
            if entry is None:
                return None
            feedback = self._feedbacks[mid] = ReceiverFeedback(entry[1], kind=entry[0])
        return feedback

    async def _send_remb_every_second(self) -> None:
        """One REMB a second for every video stream received, as a browser does. The estimate is
        what arrived over the last second plus half again: on a link with room to spare a
        browser's estimate stays above what it receives."""
        while True:
            await asyncio.sleep(1.0)
            received = sum(s.bytes for s in self.streams.values())
            bitrate = max(100_000, (received - self._remb_bytes) * 12)  # bytes * 8 * 1.5
            self._remb_bytes = received
            video = [f for f in self._feedbacks.values() if f.kind == "video"]
            ssrcs = sorted(ssrc for f in video for ssrc in f.ssrcs)
            if video and ssrcs:
                video[0].send_remb(bitrate, ssrcs)

    def _stream(self, owner: tuple[str, str]) -> ReceivedStream:
        stream = self.streams.get(owner)
        if stream is None:
            kind = "audio" if owner[1] in ("audio", "screen_audio") else "video"
            stream = self.streams[owner] = ReceivedStream(participant=owner[0], kind=kind)
        return stream

    async def _count_frames(self, transceiver: RTCRtpTransceiver) -> None:
        track = transceiver.receiver.track
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            owner = self._mids.get(transceiver.mid or "")
            if owner is None:
                continue
            stream = self._stream(owner)
            stream.count_frame(time.monotonic())
            if isinstance(frame, av.VideoFrame):
                stream.width, stream.height = frame.width, frame.height
