"""RED (RFC 2198) on the relay: the primary block taken out of a RED payload for subscribers
that cannot take RED, RED listed first in offers, and RED known to aiortc only inside the relay's
own calls (a Python participant in the same process must never answer with it)."""

from __future__ import annotations

import asyncio

from aiortc import RTCRtpSender
from aiortc.rtp import RtpPacket

from signaling.aiortc_hooks.red import (
    OPUS_PAYLOAD_TYPE,
    RED_PAYLOAD_TYPE,
    primary_encoding,
    red_first,
    relay_codecs,
    unwrap_red,
)
from signaling.peer_session import PeerSession, RelayConfig
from signaling.protocol import OfferMessage

PRIMARY = b"\x78primary-opus-frame"
REDUNDANT = b"\x78older-frame"


def red_payload(redundant: list[bytes], primary: bytes) -> bytes:
    """RFC 2198: a 4-byte header per redundant block (F=1, PT, 14-bit timestamp offset, 10-bit
    length), a 1-byte header for the primary (F=0, PT), then the blocks, oldest first."""
    headers = b"".join(
        bytes([0x80 | OPUS_PAYLOAD_TYPE])
        + ((960 * (len(redundant) - i)) << 10 | len(block)).to_bytes(3, "big")
        for i, block in enumerate(redundant)
    )
    return headers + bytes([OPUS_PAYLOAD_TYPE]) + b"".join(redundant) + primary


def test_the_primary_block_comes_out_of_red() -> None:
    for redundant in ([], [REDUNDANT], [REDUNDANT, b"\x78x" * 40]):
        assert primary_encoding(red_payload(redundant, PRIMARY)) == (OPUS_PAYLOAD_TYPE, PRIMARY)


def test_malformed_red_is_refused() -> None:
    whole = red_payload([REDUNDANT], PRIMARY)
    assert primary_encoding(b"") is None
    assert primary_encoding(whole[:3]) is None  # a redundant block's header cut short
    assert primary_encoding(whole[:4]) is None  # no primary header
    assert primary_encoding(whole[:6]) is None  # the redundant block's data cut short


def test_an_unwrapped_packet_keeps_its_place_in_the_stream() -> None:
    packet = RtpPacket(
        payload_type=RED_PAYLOAD_TYPE,
        sequence_number=4242,
        timestamp=960_000,
        ssrc=1234,
        payload=red_payload([REDUNDANT], PRIMARY),
    )
    packet.extensions.audio_level = (True, 30)
    plain = unwrap_red(packet)
    assert plain is not None
    assert (plain.payload_type, plain.payload) == (OPUS_PAYLOAD_TYPE, PRIMARY)
    assert (plain.sequence_number, plain.timestamp, plain.ssrc) == (4242, 960_000, 1234)
    assert plain.extensions.audio_level == (True, 30)
    assert unwrap_red(RtpPacket(payload_type=RED_PAYLOAD_TYPE, payload=b"\x80")) is None


def test_offers_list_red_first_on_audio_m_lines_only() -> None:
    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96 63\r\na=rtpmap:96 opus/48000/2\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 97 63\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\n"
    )
    assert red_first(sdp) == sdp.replace(
        "m=audio 9 UDP/TLS/RTP/SAVPF 96 63", "m=audio 9 UDP/TLS/RTP/SAVPF 63 96"
    )


def audio_mime_types() -> list[str]:
    return [codec.mimeType for codec in RTCRtpSender.getCapabilities("audio").codecs]


async def test_red_exists_for_aiortc_only_inside_the_relays_own_calls() -> None:
    """A task of the same process (a Python participant) never sees RED, even while a relay call
    awaits inside :func:`relay_codecs`."""
    inside = asyncio.Event()
    release = asyncio.Event()

    async def relay_call() -> list[str]:
        with relay_codecs():
            inside.set()
            await release.wait()
            return audio_mime_types()

    relay = asyncio.ensure_future(relay_call())
    await inside.wait()
    seen_by_participant = audio_mime_types()
    release.set()
    assert "audio/red" in await relay
    assert "audio/red" not in seen_by_participant
    assert "audio/red" not in audio_mime_types()


def formats(sdp: str, kind: str) -> list[list[str]]:
    """The payload types of each ``kind`` m-line, in the offer's order."""
    return [line.split(" ")[3:] for line in sdp.splitlines() if line.startswith(f"m={kind} ")]


async def test_the_relays_offer_lists_red_and_opus_for_audio_and_only_vp8_for_video() -> None:
    """A real PeerSession's offer: RED before Opus on audio, VP8 alone on video (no RTX, no H264:
    retransmissions must come on the original SSRC)."""
    offers: list[OfferMessage] = []

    async def keep(offer: OfferMessage) -> None:
        offers.append(offer)

    session = PeerSession("p1", RelayConfig(), keep)
    try:
        session.add_publish_transceivers(["microphone", "camera"])
        await session.negotiate()
        assert len(offers) == 1
        assert formats(offers[0].sdp, "audio") == [[str(RED_PAYLOAD_TYPE), str(OPUS_PAYLOAD_TYPE)]]
        assert formats(offers[0].sdp, "video") == [["97"]]
        assert f"a=fmtp:{RED_PAYLOAD_TYPE} 96/96" in offers[0].sdp
    finally:
        await session.close()


def test_the_offer_check_catches_extra_video_codecs() -> None:
    """The test of the test above: an offer with RTX and H264 on video does not pass."""
    sdp = "m=audio 9 UDP/TLS/RTP/SAVPF 63 96\r\nm=video 9 UDP/TLS/RTP/SAVPF 97 98 99 100\r\n"
    assert formats(sdp, "video") != [["97"]]
    assert formats(sdp, "audio") == [["63", "96"]]
