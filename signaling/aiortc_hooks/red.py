"""Redundant audio (RFC 2198 RED, ``audio/red``) on the relay's audio m-lines, and nowhere else.

A browser sends each Opus frame again inside the next packet when the m-line lists ``red``
*before* ``opus`` (Chromium's own offers list it after, so peer to peer it sends plain Opus): one
lost packet then costs nothing, where in-band FEC recovers only part of it. The relay never
decodes, so RED packets are forwarded as they are; a subscriber whose answer dropped ``red``
gets the primary block only (:func:`primary_encoding`, removing headers, not decoding).

aiortc has no RED codec. Its codec list (``aiortc.codecs.CODECS``) is one global, read by every
peer connection of the process, so adding RED to it would make the Python participants (the load
generator, ``meetnow check``, the tests' clients, sometimes in the relay's own process) answer
with a codec they cannot play. :func:`install` replaces the audio list by one that lists RED
only inside :func:`relay_codecs` (a context variable: per asyncio task, so a client's task in the
same process never sees it, even while a relay call awaits inside the block).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator
from typing import Any, SupportsIndex, overload

from aiortc import RTCRtpTransceiver
from aiortc.codecs import CODECS
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

__all__ = [
    "OPUS_PAYLOAD_TYPE",
    "RED_CODEC",
    "RED_PAYLOAD_TYPE",
    "install",
    "primary_encoding",
    "red_first",
    "relay_codecs",
    "takes_red",
    "unwrap_red",
]

OPUS_PAYLOAD_TYPE = 96
"""aiortc's Opus payload type, the one every m-line of the relay's offers carries."""
RED_PAYLOAD_TYPE = 63
"""The payload type the relay offers RED on (Chromium's own choice), the same on every m-line."""
RED_CODEC = RTCRtpCodecParameters(
    mimeType="audio/red",
    clockRate=48000,
    channels=2,
    payloadType=RED_PAYLOAD_TYPE,
    parameters={f"{OPUS_PAYLOAD_TYPE}/{OPUS_PAYLOAD_TYPE}": None},  # fmtp "96/96"
)

_with_red: contextvars.ContextVar[bool] = contextvars.ContextVar("meetnow_red", default=False)


class _AudioCodecs(list[RTCRtpCodecParameters]):
    """aiortc's audio codecs, plus RED while :func:`relay_codecs` is active in this task."""

    def _current(self) -> list[RTCRtpCodecParameters]:
        base = list(super().__iter__())
        return [*base, RED_CODEC] if _with_red.get() else base

    def __iter__(self) -> Iterator[RTCRtpCodecParameters]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    @overload
    def __getitem__(self, index: SupportsIndex) -> RTCRtpCodecParameters: ...
    @overload
    def __getitem__(self, index: slice) -> list[RTCRtpCodecParameters]: ...
    def __getitem__(self, index: Any) -> Any:
        return self._current()[index]


def install() -> None:
    """Make aiortc's audio codec list context-aware (idempotent)."""
    if not isinstance(CODECS["audio"], _AudioCodecs):
        CODECS["audio"] = _AudioCodecs(CODECS["audio"])


@contextlib.contextmanager
def relay_codecs() -> Iterator[None]:
    """aiortc lists RED among the audio codecs inside this block, for this task only: wrap the
    relay's codec preferences, offers and answers."""
    install()
    token = _with_red.set(True)
    try:
        yield
    finally:
        _with_red.reset(token)


def primary_encoding(payload: bytes) -> tuple[int, bytes] | None:
    """The primary block of a RED payload and its payload type (RFC 2198: 4-byte headers of the
    redundant blocks, each with F set and a 10-bit length, then a 1-byte header of the primary
    block, then the redundant blocks' data, then the primary's). None if it is malformed."""
    offset = 0
    redundant_bytes = 0
    while offset < len(payload) and payload[offset] & 0x80:
        if offset + 4 > len(payload):
            return None
        redundant_bytes += ((payload[offset + 2] & 0x03) << 8) | payload[offset + 3]
        offset += 4
    if offset >= len(payload):
        return None
    payload_type = payload[offset] & 0x7F
    start = offset + 1 + redundant_bytes
    if start > len(payload):
        return None
    return payload_type, payload[start:]


def takes_red(transceiver: RTCRtpTransceiver) -> bool:
    """Whether the answer applied last kept RED on this m-line (aiortc's negotiated codecs)."""
    codecs: list[RTCRtpCodecParameters] = getattr(transceiver, "_codecs", [])
    return any(codec.mimeType.lower() == RED_CODEC.mimeType for codec in codecs)


def unwrap_red(packet: RtpPacket) -> RtpPacket | None:
    """The same RTP packet carrying only RED's primary block (plain Opus), for a subscriber
    that did not take RED; None if the payload is not valid RED."""
    primary = primary_encoding(packet.payload)
    if primary is None:
        return None
    payload_type, payload = primary
    plain = RtpPacket(
        payload_type=payload_type,
        marker=packet.marker,
        sequence_number=packet.sequence_number,
        timestamp=packet.timestamp,
        ssrc=packet.ssrc,
        payload=payload,
    )
    plain.extensions = packet.extensions
    return plain


def red_first(sdp: str) -> str:
    """List RED's payload type first on every audio m-line that offers it, as browsers need to
    send RED. The relay's own transceivers prefer Opus first: aiortc starts a sender with its
    first codec, and it resets every m-line's codecs to the preferences at each offer, so a
    sender started before the answer came would otherwise start as RED (the MediaRelay baseline,
    which really encodes, then sends no audio at all)."""
    red = str(RED_PAYLOAD_TYPE)

    def reorder(match: re.Match[str]) -> str:
        formats = match.group(2).split(" ")
        if red not in formats:
            return match.group(0)
        return match.group(1) + " ".join([red, *(f for f in formats if f != red)])

    return re.sub(r"^(m=audio \S+ \S+ )([^\r\n]+)", reorder, sdp, flags=re.MULTILINE)
