"""The relay: one aiortc peer connection per participant, media forwarded between them.

:class:`Relay` holds a :class:`RoomMedia` per active room. Each participant has a
:class:`PeerSession`: two m-lines it publishes on (audio, video) and one m-line per track of every
other participant, bound to :class:`~signaling.forwarding.Outbound` forwarders. The server is always
the offerer; joins and leaves renegotiate only the other participants' sessions, and never interrupt
media already flowing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from .aiortc_hooks import PortRange, ice_ports_in
from .bandwidth import Downlink
from .forwarding import Kind, Outbound, Publication
from .metrics import MediaConnected
from .protocol import ErrorCode, OfferMessage, ProtocolError, TrackInfo
from .settings import IceServer

__all__ = ["PeerSession", "Relay", "RelayBackend", "RelayConfig", "RoomMedia"]

logger = logging.getLogger(__name__)

KINDS: tuple[Kind, Kind] = ("audio", "video")
CODECS = {"audio": "audio/opus", "video": "video/VP8"}
"""One codec per kind, so a forwarded packet's payload type means the same on every m-line.
No RTX: retransmissions answer NACKs on the original SSRC."""

SendOffer = Callable[[OfferMessage], Awaitable[None]]


@dataclass(frozen=True)
class RelayConfig:
    """What the relay needs from the settings."""

    ice_servers: tuple[IceServer, ...] = ()
    """STUN/TURN servers for the relay's own ICE agent."""
    public_address: str | None = None
    """Announced in place of host candidate addresses (1:1 NAT)."""
    port_range: PortRange | None = None
    """UDP ports the ICE sockets are bound on (``MEETNOW_ICE_PORT_RANGE``); None: the OS's."""
    on_media_connected: MediaConnected | None = field(default=None, compare=False)
    """Told the seconds from each peer connection's creation to its first 'connected' (the
    ``meetnow_join_to_media_seconds`` histogram; a relay worker passes it to the main process)."""


def _codec_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    return [codec for codec in codecs if codec.mimeType.lower() == CODECS[kind].lower()]


def announce_public_address(sdp: str, public_address: str | None) -> str:
    """Replace the address of every host candidate (and the c= lines) with the public one."""
    if not public_address:
        return sdp
    sdp = re.sub(
        r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host)",
        lambda m: m.group(1) + public_address + m.group(3),
        sdp,
        flags=re.MULTILINE,
    )
    family = "IP6" if ":" in public_address else "IP4"
    return re.sub(r"^c=IN IP[46] \S+", f"c=IN {family} {public_address}", sdp, flags=re.MULTILINE)


def with_opus_fec(sdp: str) -> str:
    """Ask for Opus in-band FEC on every audio m-line (``useinbandfec=1`` in its fmtp).

    aiortc offers Opus without an fmtp line; a browser sends FEC only to a peer that asks for
    it, and then in proportion to the loss its receiver reports say. Payloads are forwarded
    unchanged, so the FEC a publisher sends reaches every subscriber, who asks for it too: the
    same offer carries it on the subscriber m-lines."""
    return "".join(_with_opus_fec(section) for section in re.split(r"(?=\r\nm=)", sdp))


def _with_opus_fec(section: str) -> str:
    rtpmap = re.search(r"^a=rtpmap:(\d+) opus/48000", section, re.MULTILINE | re.IGNORECASE)
    if rtpmap is None or "useinbandfec" in section:
        return section
    payload_type = rtpmap.group(1)
    fmtp = re.search(rf"^a=fmtp:{payload_type} [^\r\n]*", section, re.MULTILINE)
    if fmtp is not None:
        return f"{section[: fmtp.end()]};useinbandfec=1{section[fmtp.end() :]}"
    line_end = section.find("\r\n", rtpmap.end())
    line_end = len(section) if line_end < 0 else line_end
    return f"{section[:line_end]}\r\na=fmtp:{payload_type} useinbandfec=1{section[line_end:]}"


class RelayBackend(Protocol):
    """What the signaling side needs from the media side, wherever it runs: in this process
    (:class:`Relay`) or in relay worker processes (:class:`~signaling.workers.WorkerPool`)."""

    async def add_participant(
        self, room_id: str, participant_id: str, kinds: Iterable[Kind], send_offer: SendOffer
    ) -> None: ...

    async def apply_answer(
        self, room_id: str, participant_id: str, revision: int, sdp: str
    ) -> None: ...

    async def remove_participant(self, room_id: str, participant_id: str) -> None: ...

    async def set_forwarding(
        self, room_id: str, participant_id: str, kind: Kind, enabled: bool
    ) -> None: ...

    async def close(self) -> None: ...


class PeerSession:
    """One participant's peer connection and its negotiation state."""

    def __init__(self, participant_id: str, config: RelayConfig, send_offer: SendOffer) -> None:
        self.participant_id = participant_id
        ice = [RTCIceServer(s.urls, s.username, s.credential) for s in config.ice_servers]
        # Always our own ICE list (possibly empty): given none, aiortc would add a public server.
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=ice, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self._config = config
        self._send_offer = send_offer
        self._publish: dict[Kind, RTCRtpTransceiver] = {}
        self._outbounds: list[tuple[RTCRtpTransceiver, Outbound]] = []
        self.downlink = Downlink()
        """What this participant can receive: its REMB, split among its m-lines."""
        self._revision = 0
        self._answered = 0
        self._pending: int | None = None
        self._dirty = False
        self._closed = False
        self._lock = asyncio.Lock()
        self._created = time.monotonic()
        self._connected_once = False
        self.pc.on("connectionstatechange", self._on_connection_state)

    def _on_connection_state(self) -> None:
        callback = self._config.on_media_connected
        if self.pc.connectionState != "connected" or self._connected_once or callback is None:
            return
        self._connected_once = True
        callback(time.monotonic() - self._created)

    def add_publish_transceivers(self, kinds: Iterable[Kind]) -> dict[Kind, RTCRtpReceiver]:
        """The m-lines this participant sends on."""
        receivers: dict[Kind, RTCRtpReceiver] = {}
        for kind in kinds:
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            transceiver.setCodecPreferences(_codec_preferences(kind))
            self._publish[kind] = transceiver
            receivers[kind] = transceiver.receiver
        return receivers

    def subscribe(self, publication: Publication) -> Outbound:
        """Forward ``publication`` to this participant, on an idle m-line or a new one."""
        for transceiver, outbound in self._outbounds:
            # Reuse only an m-line the client has already seen go idle, so it never shows one
            # person's media in another's tile.
            idle_since = outbound.idle_since
            if (
                outbound.kind == publication.kind
                and idle_since is not None
                and idle_since < self._answered
            ):
                outbound.idle_since = None
                transceiver.direction = "sendonly"
                outbound.bind(publication)
                return outbound
        transceiver = self.pc.addTransceiver(publication.kind, direction="sendonly")
        transceiver.setCodecPreferences(_codec_preferences(publication.kind))
        outbound = self.new_outbound(publication.kind, transceiver)
        outbound.bind(publication)
        self._outbounds.append((transceiver, outbound))
        return outbound

    def new_outbound(self, kind: Kind, transceiver: RTCRtpTransceiver) -> Outbound:
        """What a new subscriber m-line forwards through (a benchmark baseline swaps it)."""
        return Outbound(kind, transceiver.sender, self.downlink)

    def release(self, publications: Iterable[Publication]) -> None:
        """Stop receiving these publications; their m-lines go idle."""
        gone = list(publications)
        for transceiver, outbound in self._outbounds:
            if outbound.publication is not None and outbound.publication in gone:
                outbound.unbind()
            if outbound.publication is None and outbound.idle_since is None:
                transceiver.direction = "inactive"
                outbound.idle_since = self._revision

    async def negotiate(self) -> None:
        """Send a new offer now, or right after the pending one is answered."""
        async with self._lock:
            if self._closed:
                return
            if self._pending is not None:
                self._dirty = True
                return
            await self._offer_locked()

    async def apply_answer(self, revision: int, sdp: str) -> None:
        """Apply the client's answer to offer ``revision``."""
        async with self._lock:
            if self._pending is None or revision != self._pending:
                raise ProtocolError(
                    ErrorCode.OUT_OF_ORDER,
                    f"No offer with revision {revision} is waiting for an answer.",
                )
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as exc:  # aiortc raises many types for a bad SDP
                logger.info("participant answer rejected: %s", type(exc).__name__)
                raise ProtocolError(
                    ErrorCode.NEGOTIATION_FAILED,
                    "The SDP answer could not be applied; please rejoin.",
                    fatal=True,
                ) from None
            self._answered = self._pending
            self._pending = None
            if self._dirty and not self._closed:
                self._dirty = False
                await self._offer_locked()

    async def close(self) -> None:
        self._closed = True
        for _, outbound in self._outbounds:
            outbound.unbind()
        await self.pc.close()

    async def _offer_locked(self) -> None:
        self._revision += 1
        offer = await self.pc.createOffer()
        # The first local description gathers: the ICE sockets are bound here.
        with ice_ports_in(self._config.port_range) as ports:
            await self.pc.setLocalDescription(offer)
        if ports.exhausted:
            raise ProtocolError(
                ErrorCode.NO_PORTS,
                "The meeting server has no free media port for you right now; try again later.",
                fatal=True,
            )
        tracks: dict[str, TrackInfo] = {}
        for kind, transceiver in self._publish.items():
            if transceiver.mid is not None:
                tracks[transceiver.mid] = TrackInfo(participant=self.participant_id, kind=kind)
        for transceiver, outbound in self._outbounds:
            if outbound.publication is not None and transceiver.mid is not None:
                tracks[transceiver.mid] = TrackInfo(
                    participant=outbound.publication.participant_id, kind=outbound.kind
                )
        self._pending = self._revision
        sdp = with_opus_fec(
            announce_public_address(self.pc.localDescription.sdp, self._config.public_address)
        )
        await self._send_offer(OfferMessage(revision=self._revision, sdp=sdp, tracks=tracks))


class RoomMedia:
    """The media side of one room: who publishes what, and who receives it."""

    session_class: type[PeerSession] = PeerSession
    """Made once per participant (a benchmark baseline swaps in another forwarding design)."""

    def __init__(self, config: RelayConfig) -> None:
        self._config = config
        self.sessions: dict[str, PeerSession] = {}
        """Peer sessions by participant id."""
        self.publications: dict[str, list[Publication]] = {}
        """Published tracks by participant id."""

    async def add_participant(
        self, participant_id: str, kinds: Iterable[Kind], send_offer: SendOffer
    ) -> PeerSession:
        """Create the participant's session, subscribe it to everyone, and everyone to it."""
        session = self.session_class(participant_id, self._config, send_offer)
        receivers = session.add_publish_transceivers(kinds)
        for publications in self.publications.values():
            for publication in publications:
                session.subscribe(publication)
        mine = [
            self.publish(participant_id, kind, receiver) for kind, receiver in receivers.items()
        ]
        others = list(self.sessions.values())
        self.sessions[participant_id] = session
        self.publications[participant_id] = mine
        # The newcomer's offer first: it binds its ICE socket, and if the port range is full it
        # is refused before anyone else is told to receive it.
        try:
            await session.negotiate()
        except ProtocolError:
            del self.sessions[participant_id], self.publications[participant_id]
            for publication in mine:
                publication.close()
            await session.close()
            raise
        except Exception as error:  # as for the others': logged, the call goes on
            logger.warning("negotiation failed: %s", type(error).__name__)
        for other in others:
            for publication in mine:
                other.subscribe(publication)
        await _all(*(other.negotiate() for other in others))
        return session

    def publish(self, participant_id: str, kind: Kind, receiver: RTCRtpReceiver) -> Publication:
        """Start forwarding what arrives on ``receiver``."""
        return Publication(participant_id, kind, receiver)

    async def remove_participant(self, participant_id: str) -> None:
        """Close the participant's session; the others' m-lines for it go idle."""
        session = self.sessions.pop(participant_id, None)
        publications = self.publications.pop(participant_id, [])
        if session is None and not publications:
            return  # never added, or refused at its first offer: nobody to tell
        for publication in publications:
            publication.close()
        others = list(self.sessions.values())
        for other in others:
            other.release(publications)
        if session is not None:
            await session.close()
        await _all(*(other.negotiate() for other in others))

    async def close(self) -> None:
        for participant_id in list(self.sessions):
            await self.remove_participant(participant_id)


class Relay:
    """All rooms' media in this process."""

    room_media_class: type[RoomMedia] = RoomMedia
    """Made once per active room."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.rooms: dict[str, RoomMedia] = {}
        """Room media by room id, while anyone is connected."""

    def room(self, room_id: str) -> RoomMedia:
        media = self.rooms.get(room_id)
        if media is None:
            media = self.rooms[room_id] = self.room_media_class(self.config)
        return media

    async def add_participant(
        self, room_id: str, participant_id: str, kinds: Iterable[Kind], send_offer: SendOffer
    ) -> None:
        """Give a participant its peer connection; its offers go to ``send_offer``."""
        await self.room(room_id).add_participant(participant_id, kinds, send_offer)

    async def apply_answer(
        self, room_id: str, participant_id: str, revision: int, sdp: str
    ) -> None:
        """Apply a participant's SDP answer; raises :class:`ProtocolError` if it cannot."""
        media = self.rooms.get(room_id)
        session = media.sessions.get(participant_id) if media else None
        if session is None:
            raise ProtocolError(ErrorCode.OUT_OF_ORDER, "No offer is waiting for an answer.")
        await session.apply_answer(revision, sdp)

    async def set_forwarding(
        self, room_id: str, participant_id: str, kind: Kind, enabled: bool
    ) -> None:
        """Stop or resume forwarding one participant's track (a host's mute)."""
        media = self.rooms.get(room_id)
        for publication in media.publications.get(participant_id, []) if media else []:
            if publication.kind == kind:
                publication.paused = not enabled

    async def remove_participant(self, room_id: str, participant_id: str) -> None:
        media = self.rooms.get(room_id)
        if media is None:
            return
        await media.remove_participant(participant_id)
        if not media.sessions:
            self.rooms.pop(room_id, None)

    def peer_connection_count(self) -> int:
        return sum(len(media.sessions) for media in self.rooms.values())

    async def close(self) -> None:
        """Close every peer connection (server shutdown)."""
        for media in list(self.rooms.values()):
            await media.close()
        self.rooms.clear()


async def _all(*coroutines: Awaitable[None]) -> None:
    """Run negotiations side by side; one participant's failure never stops the others'."""
    results = await asyncio.gather(*coroutines, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            logger.warning("negotiation failed: %s", type(result).__name__)
