"""One participant's peer connection: the m-lines it publishes on, the m-lines it receives the
others on, and the offer/answer exchange (the server always offers).

Each published track has a *source*: ``camera`` and ``microphone`` from the join, ``screen`` and
``screen_audio`` while the participant shares a screen. A stopped share's m-lines go inactive and
are parked: the next share publishes on them again once the client has answered the offer that
made them inactive (so repeated sharing never grows the SDP); the m-lines others receive it on go
idle and are reused like a leaver's.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

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
from .aiortc_hooks.red import red_first, relay_codecs, takes_red
from .aiortc_hooks.routing import keep_streams_apart
from .bandwidth import Downlink
from .forwarding import Kind, Outbound, Publication, kind_of
from .metrics import MediaConnected
from .protocol import ErrorCode, OfferMessage, ProtocolError, Source, TrackInfo
from .settings import IceServer

__all__ = [
    "CODECS",
    "KINDS",
    "PeerSession",
    "RelayConfig",
    "SendOffer",
    "announce_public_address",
    "with_opus_fec",
]

logger = logging.getLogger(__name__)

KINDS: tuple[Kind, Kind] = ("audio", "video")
CODECS = {"audio": "audio/opus", "video": "video/VP8"}
"""One codec per kind, so a forwarded packet's payload type means the same on every m-line.
No RTX: retransmissions answer NACKs on the original SSRC. Audio m-lines also offer RED around
that Opus, listed first so browsers send it (:mod:`.aiortc_hooks.red`), on the same payload types
everywhere."""
REDUNDANT_AUDIO = "audio/red"

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
    """Opus and RED for audio (the offer lists RED first: :func:`red_first`), VP8 for video.
    Call inside :func:`relay_codecs` (aiortc knows RED only there)."""
    wanted = [CODECS[kind], REDUNDANT_AUDIO] if kind == "audio" else [CODECS[kind]]
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    return [c for mime in wanted for c in codecs if c.mimeType.lower() == mime.lower()]


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


class PeerSession:
    """One participant's peer connection and its negotiation state."""

    def __init__(self, participant_id: str, config: RelayConfig, send_offer: SendOffer) -> None:
        self.participant_id = participant_id
        ice = [RTCIceServer(s.urls, s.username, s.credential) for s in config.ice_servers]
        # A new share's first packets must never be taken for the camera's (see the module).
        keep_streams_apart()
        # Always our own ICE list (possibly empty): given none, aiortc would add a public server.
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=ice, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self._config = config
        self._send_offer = send_offer
        self._publish: list[tuple[Source, RTCRtpTransceiver]] = []
        """The m-lines it publishes on now, with what each carries."""
        self._parked: list[tuple[Source, RTCRtpTransceiver, int]] = []
        """Inactive m-lines it published on (a stopped share), with the offer revision at which
        they went inactive."""
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

    def add_publish_transceivers(
        self, sources: Iterable[Source]
    ) -> list[tuple[Source, RTCRtpReceiver]]:
        """The m-lines this participant sends on, one per source: a parked one of that source
        (its receiver comes back, see :meth:`stop_publishing`), else a new one."""
        receivers: list[tuple[Source, RTCRtpReceiver]] = []
        for source in sources:
            transceiver = self._unpark(source)
            if transceiver is None:
                kind = kind_of(source)
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                with relay_codecs():
                    transceiver.setCodecPreferences(_codec_preferences(kind))
            self._publish.append((source, transceiver))
            receivers.append((source, transceiver.receiver))
        return receivers

    def _unpark(self, source: Source) -> RTCRtpTransceiver | None:
        for parked in self._parked:
            parked_source, transceiver, since = parked
            # Only once the client has seen it go inactive: its answer to that offer has
            # stopped the old track there before a new one starts.
            if parked_source == source and since < self._answered:
                self._parked.remove(parked)
                transceiver.direction = "recvonly"
                return transceiver
        return None

    def stop_publishing(self, sources: Iterable[Source]) -> None:
        """The m-lines of these sources go inactive and are parked (a stopped screen share)."""
        stopping = set(sources)
        for source, transceiver in self._publish:
            if source in stopping:
                transceiver.direction = "inactive"
                self._parked.append((source, transceiver, self._revision))
        self._publish = [(s, t) for s, t in self._publish if s not in stopping]

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
        with relay_codecs():
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
                with relay_codecs():
                    await self.pc.setRemoteDescription(
                        RTCSessionDescription(sdp=sdp, type="answer")
                    )
            except Exception as exc:  # aiortc raises many types for a bad SDP
                logger.info("participant answer rejected: %s", type(exc).__name__)
                raise ProtocolError(
                    ErrorCode.NEGOTIATION_FAILED,
                    "The SDP answer could not be applied; please rejoin.",
                    fatal=True,
                ) from None
            self._answered = self._pending
            self._pending = None
            for transceiver, outbound in self._outbounds:
                # A subscriber whose answer dropped RED (aiortc) gets plain Opus.
                outbound.takes_red = takes_red(transceiver)
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
        with relay_codecs():
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
        for source, transceiver in self._publish:
            if transceiver.mid is not None:
                tracks[transceiver.mid] = TrackInfo(
                    participant=self.participant_id, kind=kind_of(source), source=source
                )
        for transceiver, outbound in self._outbounds:
            publication = outbound.publication
            if publication is not None and transceiver.mid is not None:
                tracks[transceiver.mid] = TrackInfo(
                    participant=publication.participant_id,
                    kind=outbound.kind,
                    source=publication.source,
                )
        self._pending = self._revision
        sdp = red_first(
            with_opus_fec(
                announce_public_address(self.pc.localDescription.sdp, self._config.public_address)
            )
        )
        await self._send_offer(OfferMessage(revision=self._revision, sdp=sdp, tracks=tracks))
