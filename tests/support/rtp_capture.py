"""What each peer connection of this process sent and received, RTP packet by RTP packet, in clear.

:class:`RtpCapture` wraps two methods of aiortc's DTLS transport for the duration of a ``with``
block: ``_send_rtp`` (every RTP packet a sender hands to SRTP, retransmissions included) and
``_handle_rtp_data`` (every RTP packet right after SRTP decryption, before any receiver, tap or
jitter buffer sees it). Both call the original unchanged; nothing of meetnow is replaced.

:func:`compare_forwarded` checks one forwarded stream against what its publisher sent, by the rule
``signaling/forwarding.py`` documents: the relay rewrites only the header's SSRC, sequence number
and timestamp (both shifted by one offset per binding) and drops the MID extension; payload,
payload type, marker bit, padding and the abs-send-time and audio-level extensions are forwarded
unchanged.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import RtpPacket, is_rtcp

__all__ = [
    "RtpCapture",
    "SeenPacket",
    "announced_ssrcs",
    "compare_forwarded",
    "packets_of",
    "streams_by_ssrc",
]


@dataclass(frozen=True)
class SeenPacket:
    """One RTP packet as it was in clear (before SRTP on the way out, after it on the way in)."""

    ssrc: int
    sequence_number: int
    timestamp: int
    payload_type: int
    marker: int
    padding_size: int
    payload: bytes
    abs_send_time: int | None
    audio_level: Any

    @classmethod
    def parse(cls, data: bytes, extensions_map: Any) -> SeenPacket:
        packet = RtpPacket.parse(data, extensions_map)
        return cls(
            packet.ssrc,
            packet.sequence_number,
            packet.timestamp,
            packet.payload_type,
            packet.marker,
            packet.padding_size,
            packet.payload,
            packet.extensions.abs_send_time,
            packet.extensions.audio_level,
        )


@dataclass
class RtpCapture:
    """Records, per DTLS transport of this process, the RTP it sends and receives."""

    sent: dict[int, list[SeenPacket]] = field(default_factory=lambda: collections.defaultdict(list))
    """By ``id()`` of the transport: packets handed to SRTP, in order."""
    received: dict[int, list[SeenPacket]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    """By ``id()`` of the transport: packets after SRTP decryption, in order of arrival."""
    _originals: dict[str, Any] = field(default_factory=dict)

    def __enter__(self) -> RtpCapture:
        send_rtp = RTCDtlsTransport._send_rtp
        handle_rtp_data = RTCDtlsTransport._handle_rtp_data
        self._originals = {"_send_rtp": send_rtp, "_handle_rtp_data": handle_rtp_data}
        sent, received = self.sent, self.received

        async def recording_send_rtp(transport: Any, data: bytes) -> None:
            if not is_rtcp(data):  # the same method sends RTCP too
                sent[id(transport)].append(
                    SeenPacket.parse(data, transport._rtp_header_extensions_map)
                )
            await send_rtp(transport, data)

        async def recording_handle_rtp_data(
            transport: Any, data: bytes, arrival_time_ms: int
        ) -> None:
            received[id(transport)].append(
                SeenPacket.parse(data, transport._rtp_header_extensions_map)
            )
            await handle_rtp_data(transport, data, arrival_time_ms)

        patched: Any = RTCDtlsTransport
        patched._send_rtp = recording_send_rtp
        patched._handle_rtp_data = recording_handle_rtp_data
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for name, original in self._originals.items():
            setattr(RTCDtlsTransport, name, original)

    @staticmethod
    def transport_id(pc: RTCPeerConnection) -> int:
        """The key of a peer connection's (bundled) DTLS transport."""
        transports = {id(t.sender.transport) for t in pc.getTransceivers()}
        assert len(transports) == 1, "expected one bundled transport"
        return transports.pop()


def streams_by_ssrc(packets: Sequence[SeenPacket]) -> dict[int, list[SeenPacket]]:
    streams: dict[int, list[SeenPacket]] = collections.defaultdict(list)
    for packet in packets:
        streams[packet.ssrc].append(packet)
    return streams


def _offsets(sent: Sequence[SeenPacket], received: Sequence[SeenPacket]) -> tuple[int, int] | None:
    """The (sequence number, timestamp) offsets most received packets agree on, found by matching
    payloads; None if no received payload was sent at all."""
    by_payload: dict[bytes, list[SeenPacket]] = collections.defaultdict(list)
    for packet in sent:
        by_payload[packet.payload].append(packet)
    votes: collections.Counter[tuple[int, int]] = collections.Counter()
    for packet in received:
        for candidate in by_payload.get(packet.payload, [])[:16]:
            votes[
                (
                    (packet.sequence_number - candidate.sequence_number) & 0xFFFF,
                    (packet.timestamp - candidate.timestamp) & 0xFFFFFFFF,
                )
            ] += 1
    if not votes:
        return None
    return votes.most_common(1)[0][0]


def _first_difference(a: bytes, b: bytes) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def compare_forwarded(sent: Sequence[SeenPacket], received: Sequence[SeenPacket]) -> list[str]:
    """Every way ``received`` (one forwarded stream) differs from a forwarding of ``sent`` (the
    publisher's stream): each received packet must be the sent packet its sequence number maps
    to, byte for byte in its payload, with the same payload type, marker, padding and
    extensions, and a timestamp shifted by the same offset as all the others. Empty: none."""
    if not received:
        return ["nothing was received"]
    offsets = _offsets(sent, received)
    if offsets is None:
        return ["no received payload equals any sent payload"]
    seq_offset, ts_offset = offsets
    by_seq = {packet.sequence_number: packet for packet in sent}
    problems = []
    for packet in received:
        original = by_seq.get((packet.sequence_number - seq_offset) & 0xFFFF)
        where = f"received sequence number {packet.sequence_number}"
        if original is None:
            problems.append(f"{where}: the publisher sent no packet it maps to")
            continue
        if packet.payload != original.payload:
            problems.append(
                f"{where}: payload differs from the one sent (from byte "
                f"{_first_difference(packet.payload, original.payload)}; "
                f"{len(packet.payload)} bytes received, {len(original.payload)} sent)"
            )
        if (packet.timestamp - original.timestamp) & 0xFFFFFFFF != ts_offset:
            problems.append(f"{where}: timestamp not shifted by the stream's offset")
        for name in ("payload_type", "marker", "padding_size", "abs_send_time", "audio_level"):
            if getattr(packet, name) != getattr(original, name):
                problems.append(f"{where}: {name} changed")
    return problems


def packets_of(capture: dict[int, list[SeenPacket]], pc: RTCPeerConnection) -> Iterator[SeenPacket]:
    yield from capture.get(RtpCapture.transport_id(pc), [])


def announced_ssrcs(offer: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """From a meetnow ``offer`` message: each SSRC the relay announced, with the (participant,
    kind) whose media it carries (``tracks`` names each m-line's owner by mid)."""
    owners: dict[int, tuple[str, str]] = {}
    for section in offer["sdp"].split("\r\nm=")[1:]:
        lines = section.split("\r\n")
        mids = [line.removeprefix("a=mid:") for line in lines if line.startswith("a=mid:")]
        track = offer["tracks"].get(mids[0]) if mids else None
        if track is None:
            continue
        for line in lines:
            if line.startswith("a=ssrc:"):
                ssrc = int(line.removeprefix("a=ssrc:").split(" ", 1)[0])
                owners[ssrc] = (track["participant"], track["kind"])
    return owners
