"""Bandwidth that follows each receiver (signaling/bandwidth.py): subscribers' REMB and loss in,
the relay's REMB to the publisher out, through the real server and real aiortc peers."""

from __future__ import annotations

from typing import Any

from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci

from signaling.aiortc_hooks import ReceiverFeedback
from signaling.bandwidth import (
    AUDIO_SHARE_BPS,
    LOSS_MIN_PACKETS,
    REMB_FLOOR_BPS,
    Downlink,
    LossBasedLimit,
    UpstreamBitrate,
)
from signaling.client import ParticipantClient, PatternVideoTrack, ToneAudioTrack, _ssrc_mids
from signaling.forwarding import Publication
from signaling.relay import Relay

from ..signaling.test_relay import wait_until
from ..support.security import meetnow


class Stream:
    """A stand-in for an Outbound in the split (the split itself is what is tested here)."""

    def __init__(self, kind: str, receiving: bool = True) -> None:
        self._kind, self._receiving = kind, receiving
        self.share: float | None = None

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def receiving(self) -> bool:
        return self._receiving

    def set_downlink_share(self, bitrate: float) -> None:
        self.share = bitrate


def test_a_downlink_serves_audio_first_and_splits_the_rest_among_videos() -> None:
    downlink = Downlink()
    videos = [Stream("video"), Stream("video"), Stream("video", receiving=False)]
    downlink.streams += [*videos, Stream("audio"), Stream("audio")]
    downlink.on_remb(1_000_000)
    assert videos[0].share == videos[1].share == (1_000_000 - 2 * AUDIO_SHARE_BPS) / 2
    assert videos[2].share is None


def test_the_upstream_ask_is_the_lowest_subscriber_above_the_floor_below_the_own_estimate() -> None:
    now = [0.0]
    upstream = UpstreamBitrate(clock=lambda: now[0])
    assert upstream.cap(900_000) == 900_000  # nobody limits yet
    a, b = object(), object()
    upstream.report(a, 600_000)
    assert upstream.report(b, 400_000)  # a new lowest: tell the publisher now
    assert upstream.cap(900_000) == 400_000
    assert upstream.cap(300_000) == 300_000  # never above the relay's own estimate
    upstream.report(b, 50_000)
    assert upstream.cap(900_000) == REMB_FLOOR_BPS
    upstream.forget(b)
    assert upstream.cap(900_000) == 600_000
    now[0] += 11  # a subscriber that went quiet stops limiting
    assert upstream.cap(900_000) == 900_000


def test_loss_cuts_a_stream_and_low_loss_lets_it_grow_back() -> None:
    limit = LossBasedLimit()
    assert limit.on_loss(0.05, 1_000_000) is None
    cut = limit.on_loss(0.30, 1_000_000)
    assert cut == 850_000
    assert limit.on_loss(0.0, 1_000_000) == cut * 1.08
    for _ in range(5):
        limit.on_loss(0.0, 1_000_000)
    assert limit.limit is None


def test_loss_is_read_over_enough_packets_not_per_report() -> None:
    """A browser's receiver report rides on each NACK, so the packets since the last one can be
    three: one of them lost is 33%, which 2% random loss makes often. Counted over at least
    ``LOSS_MIN_PACKETS`` packets, 2% loss cuts nothing and a congested link still does."""
    limit = LossBasedLimit()
    limit.on_report(0, 1000, 1_000_000)  # the first report sets where counting starts
    lost, highest = 0, 1000
    for _ in range(40):  # reports every 3 packets, one of 50 lost: 2%
        highest += 3
        lost += 1 if highest % 150 < 3 else 0
        assert limit.on_report(lost, highest, 1_000_000) is None
    assert lost > 0
    # A full downlink: 30% of the next LOSS_MIN_PACKETS lost.
    cut = limit.on_report(lost + 3 * LOSS_MIN_PACKETS // 10, highest + LOSS_MIN_PACKETS, 1_000_000)
    assert cut is not None and cut < 900_000


def test_the_per_report_fraction_would_cut_on_one_packet_of_three() -> None:
    """The test of the test: the same one lost of three, taken as the report's own fraction,
    cuts the stream; counted over a window (above), it does not."""
    assert LossBasedLimit().on_loss(1 / 3, 1_000_000) is not None


def publisher_rembs(client: ParticipantClient) -> list[int]:
    """Every REMB bitrate the client's video sender receives (aiortc hands REMB to the sender's
    ``_handle_rtcp_packet``, which a browser's encoder would follow)."""
    assert client.pc is not None
    sender: Any = next(
        t.sender
        for t in client.pc.getTransceivers()
        if t.sender.track is not None and t.sender.track.kind == "video"
    )
    handle = sender._handle_rtcp_packet
    seen: list[int] = []

    async def record(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            seen.append(unpack_remb_fci(packet.fci)[0])
        await handle(packet)

    sender._handle_rtcp_packet = record
    return seen


def remb_sender(client: ParticipantClient, publisher: str) -> tuple[ReceiverFeedback, int]:
    """What sends REMB from the client's receiver of ``publisher``'s video, and the SSRC the
    relay sends that video with."""
    assert client.pc is not None
    mid = next(m for m, owner in client._mids.items() if owner == (publisher, "video"))
    ssrc = next(s for s, m in _ssrc_mids(client.pc.remoteDescription.sdp).items() if m == mid)
    receiver = next(t.receiver for t in client.pc.getTransceivers() if t.mid == mid)
    return ReceiverFeedback(receiver, "video"), ssrc


async def test_the_publisher_hears_the_lowest_subscriber_estimate_above_the_floor() -> None:
    async with meetnow() as running:
        room_id = running.new_room()
        publisher = ParticipantClient(
            running.base_url, room_id, "pub", audio=ToneAudioTrack(), video=PatternVideoTrack()
        )
        # Subscribers that send no REMB of their own: only what the test sends.
        subscribers = [
            ParticipantClient(running.base_url, room_id, f"s{i}", decode=False) for i in range(2)
        ]
        try:
            await publisher.join()
            for subscriber in subscribers:
                await subscriber.join()
            assert publisher.participant_id is not None
            relay = running.meetnow.relay
            assert isinstance(relay, Relay)
            video: Publication = next(
                p
                for p in relay.rooms[room_id].publications[publisher.participant_id]
                if p.kind == "video"
            )
            await wait_until(
                lambda: (
                    publisher.pc is not None
                    and any(t.sender.track is not None for t in publisher.pc.getTransceivers())
                ),
                10,
                "the publisher sending",
            )
            heard = publisher_rembs(publisher)
            # The relay's own estimate reaches the publisher unchanged while nobody limits it
            # (and shows this check reads real values: they are not the ones asked for below).
            await wait_until(
                lambda: len(heard) >= 2 and (video._remb.own_estimate or 0) > 400_000,
                20,
                "the relay's own upstream estimate",
            )
            assert heard[-1] > 400_000
            feedback = [remb_sender(s, publisher.participant_id) for s in subscribers]
            asked = {0: 2_000_000, 1: 300_000}

            def send_all() -> None:
                for index, (sender, ssrc) in enumerate(feedback):
                    sender.send_remb(asked[index], [ssrc])

            # Each subscriber also receives the publisher's audio: its share comes first.
            expected = 300_000 - AUDIO_SHARE_BPS

            def arrived(value: int) -> bool:
                send_all()  # as a browser repeats its REMB
                return bool(heard) and heard[-1] == value

            await wait_until(lambda: arrived(expected), 10, "the lowest subscriber's REMB")
            asked[1] = 60_000  # far below the floor: the publisher keeps the floor
            await wait_until(lambda: arrived(REMB_FLOOR_BPS), 10, "the floor")
        finally:
            for client in [publisher, *subscribers]:
                await client.close()
