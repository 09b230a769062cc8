"""One REMB for a publisher's whole uplink (signaling/bandwidth.py ``UplinkBudget``,
signaling/aiortc_hooks/feedback.py ``Uplink``): a browser applies every REMB it gets to its whole
send budget, whatever SSRCs it lists, so a publisher with a camera and a screen must hear one
figure for both, never one video's share.

Through the real server with real aiortc peers: a publisher sends a pre-encoded camera (about
1.2 Mbit/s) and shares a pre-encoded screen (about 400 kbit/s); every REMB the relay sends it is
captured off its transport, with the SSRCs listed. First nobody limits it (the relay's own
estimate must cover both videos), then its subscriber's REMB gives each video a share below what
it sends (the publisher must be asked for both shares together). The same run through a relay whose
publications each keep their own estimate and REMB, as before, is the test of the test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiortc import RTCRtpReceiver
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci

from signaling.aiortc_hooks import ReceiverFeedback
from signaling.aiortc_hooks.feedback import Uplink
from signaling.bandwidth import REMB_FLOOR_BPS, UplinkBudget, UpstreamBitrate
from signaling.client import ParticipantClient, _ssrc_mids
from signaling.forwarding import Kind, Publication
from signaling.relay import Relay, RoomMedia
from signaling.synthetic_media import EncodedMedia, EncodedVideoTrack, encode_media

from ..support.security import meetnow

SHARE_OF_SLOWER = 0.6
"""What the subscriber's REMB leaves each of the two videos it receives, as a fraction of the
slower one's bitrate: under 0.9 x what either video sends, so it is a limit (see
``bandwidth.plan_stream``), and above the floor."""

SPAN_SECONDS = 6.0
"""How long after the screen's first packet the relay's unlimited REMBs are watched: longer than
the 3 s aiortc's estimator takes to start (a new estimator's first figures come after it)."""

LEAST_OF_SENT = 0.5
"""An unlimited REMB below this fraction of what the publisher sends says the relay estimated on
part of the uplink: an estimate of the screen alone stays under 1.5 x its bitrate, about 0.4 of
the whole, while one of the whole uplink falls to 0.85 of it on a delay spike."""


@dataclass(frozen=True)
class Remb:
    at: float
    bitrate: int
    ssrcs: tuple[int, ...]


@dataclass
class Media:
    camera: EncodedMedia
    screen: EncodedMedia

    @property
    def sent_bps(self) -> float:
        return self.camera.video_bitrate + self.screen.video_bitrate

    @property
    def share_bps(self) -> int:
        return int(SHARE_OF_SLOWER * min(self.camera.video_bitrate, self.screen.video_bitrate))


@pytest.fixture(scope="module")
def media() -> Media:
    encoded = Media(
        camera=encode_media(width=640, height=480, seconds=1.0, bitrate=1_200_000),
        screen=encode_media(width=480, height=272, seconds=1.0, bitrate=400_000),
    )
    assert encoded.share_bps > REMB_FLOOR_BPS, encoded  # each share is a limit, not the floor
    assert encoded.camera.video_bitrate > 2 * encoded.screen.video_bitrate, encoded
    return encoded


class Stand:
    """A video in the budget (what a Publication is to it)."""

    def __init__(self, ssrc: int, subscribed: bool = True) -> None:
        self.upstream = UpstreamBitrate(clock=lambda: 0.0)
        self.subscribed = subscribed
        self.media_ssrc: int | None = ssrc


def test_the_budget_is_the_sum_of_each_videos_subscribers_above_the_floor() -> None:
    camera, screen, parked = Stand(1), Stand(2), Stand(3, subscribed=False)
    budget = UplinkBudget()
    for stream in (camera, screen, parked):
        budget.add(stream)
    assert budget.cap(2_000_000) == 2_000_000  # nobody limits yet
    camera.upstream.report(object(), 600_000)
    assert budget.total() is None  # the screen's subscribers have not said yet: no limit
    screen.upstream.report(object(), 50_000)
    assert budget.changed()  # from no limit to one: tell the publisher now
    assert budget.cap(2_000_000) == 600_000 + REMB_FLOOR_BPS
    assert budget.cap(500_000) == 500_000  # never above the estimate of the whole uplink
    parked.upstream.report(object(), 10_000)  # nobody receives it: it needs nothing
    assert budget.cap(2_000_000) == 600_000 + REMB_FLOOR_BPS
    assert not budget.changed()
    screen.upstream.report(object(), 400_000)
    assert budget.changed()
    budget.remove(screen)
    assert budget.cap(2_000_000) == 600_000
    assert budget.ssrcs() == [1, 3]


def capture_rembs(client: ParticipantClient) -> list[Remb]:
    """Every REMB that reaches the client's peer connection, as it arrives (before aiortc routes
    it to the senders whose SSRCs it lists)."""
    assert client.pc is not None
    transport: Any = client.pc.getTransceivers()[0].receiver.transport
    router = transport._rtp_router
    route = router.route_rtcp
    seen: list[Remb] = []

    def record(packet: Any) -> Any:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            bitrate, ssrcs = unpack_remb_fci(packet.fci)
            seen.append(Remb(time.monotonic(), bitrate, tuple(ssrcs)))
        return route(packet)

    router.route_rtcp = record
    return seen


def sender_ssrc(client: ParticipantClient, track: Any) -> int:
    assert client.pc is not None
    sender = next(t.sender for t in client.pc.getTransceivers() if t.sender.track is track)
    ssrc: int = getattr(sender, "_ssrc")  # noqa: B009 - private aiortc state
    return ssrc


def unlimited_failures(rembs: list[Remb], ssrcs: set[int], sent_bps: float) -> list[str]:
    """What is wrong with the REMBs a publisher of two videos got while nobody limited it: each
    must list both videos and cover what it sends (not one video's estimate)."""
    failures = [
        f"{r.bitrate} bit/s for {list(r.ssrcs)}"
        for r in rembs
        if not ssrcs <= set(r.ssrcs) or r.bitrate < LEAST_OF_SENT * sent_bps
    ]
    if not rembs:
        failures.append("no REMB")
    return failures


def limited_failures(rembs: list[Remb], ssrcs: set[int], total: float) -> list[str]:
    """What is wrong with the last REMBs a publisher got while its subscriber's REMB gave each
    of its videos a share: the three last must ask for the sum and list both videos."""
    last = rembs[-3:]
    failures = [
        f"{r.bitrate} bit/s for {list(r.ssrcs)}"
        for r in last
        if not ssrcs <= set(r.ssrcs) or abs(r.bitrate - total) > 0.01 * total
    ]
    if len(last) < 3:
        failures.append(f"{len(last)} REMBs")
    return failures


@dataclass
class Outcome:
    """What one run saw: the failures of each phase and every REMB captured."""

    unlimited: list[str] = field(default_factory=list)
    limited: list[str] = field(default_factory=list)
    rembs: list[Remb] = field(default_factory=list)


async def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()


def downlink_feedback(client: ParticipantClient, publisher: str) -> ReceiverFeedback:
    """What sends REMB from the client (any of its video receivers: a REMB covers them all)."""
    assert client.pc is not None
    mid = next(m for m, owner in client._mids.items() if owner == (publisher, "video"))
    receiver = next(t.receiver for t in client.pc.getTransceivers() if t.mid == mid)
    return ReceiverFeedback(receiver, "video")


def received_ssrcs(client: ParticipantClient, publisher: str) -> list[int]:
    """The SSRCs the relay sends the client the publisher's videos with."""
    assert client.pc is not None
    mids = {m for m, (who, what) in client._mids.items() if who == publisher and what != "audio"}
    return sorted(s for s, m in _ssrc_mids(client.pc.remoteDescription.sdp).items() if m in mids)


async def run_share(media: Media, relay_setup: Callable[[Relay], None]) -> Outcome:
    """A publisher with a camera starts sharing its screen with one subscriber; the REMBs the
    relay sends it are judged first unlimited, then limited by the subscriber."""
    outcome = Outcome()
    async with meetnow() as running:
        relay = running.meetnow.relay
        assert isinstance(relay, Relay)
        relay_setup(relay)
        room_id = running.new_room()
        camera = EncodedVideoTrack(media.camera)
        publisher = ParticipantClient(running.base_url, room_id, "pub", video=camera)
        publisher.screen = EncodedVideoTrack(media.screen)
        # Sends no REMB or receiver report of its own: only the REMB this test sends.
        subscriber = ParticipantClient(running.base_url, room_id, "sub", decode=False)
        feedback: list[Remb] = []
        try:
            await publisher.join()
            await subscriber.join()
            pid = publisher.participant_id
            assert pid is not None
            assert await wait_for(
                lambda: (s := subscriber.video_from(pid)) is not None and s.packets > 30, 20
            ), "the camera never reached the subscriber"
            rembs = outcome.rembs = capture_rembs(publisher)
            await publisher.share_screen()
            assert await wait_for(
                lambda: (s := subscriber.screen_from(pid)) is not None and s.packets > 10, 20
            ), "the screen never reached the subscriber"
            started = time.monotonic()
            both = {sender_ssrc(publisher, camera), sender_ssrc(publisher, publisher.screen)}
            await wait_for(lambda: any(r.at > started + SPAN_SECONDS for r in rembs), 30)
            unlimited = [r for r in rembs if started < r.at <= started + SPAN_SECONDS]
            outcome.unlimited = unlimited_failures(unlimited, both, media.sent_bps)

            sender = downlink_feedback(subscriber, pid)
            listed = received_ssrcs(subscriber, pid)
            assert len(listed) == 2, listed
            mark = len(rembs)

            sent = [0]

            def limited_seen() -> bool:
                # As a browser repeats its REMB, each a little different (the relay ignores a
                # repeat of the same figure, so the subscriber's estimate would go stale).
                sent[0] += 1
                sender.send_remb(2 * media.share_bps + sent[0] % 2, listed)
                del feedback[:]
                feedback.extend(rembs[mark:])
                return not limited_failures(feedback, both, 2 * media.share_bps)

            await wait_for(limited_seen, 20)
            outcome.limited = limited_failures(rembs[mark:], both, 2 * media.share_bps)
        finally:
            for client in (publisher, subscriber):
                await client.close()
    return outcome


async def test_a_publisher_sharing_its_screen_hears_one_remb_for_both_videos(media: Media) -> None:
    outcome = await run_share(media, lambda _relay: None)
    print("REMBs for the uplink:", [(round(r.at, 2), r.bitrate, r.ssrcs) for r in outcome.rembs])
    assert not outcome.unlimited, f"REMBs for part of the uplink: {outcome.unlimited}"
    assert not outcome.limited, f"not the sum of both videos' shares: {outcome.limited}"


class PerPublicationUplink(Publication):
    """The relay as it was: each publication its own estimator, fed only its own packets, and
    its own REMB with its own subscribers' figure."""

    def join_uplink(self, receiver: RTCRtpReceiver) -> Uplink:
        return Uplink()


class PerPublicationRoomMedia(RoomMedia):
    def publish(self, participant_id: str, kind: Kind, receiver: RTCRtpReceiver) -> Publication:
        return PerPublicationUplink(participant_id, kind, receiver)


def use_per_publication_uplinks(relay: Relay) -> None:
    relay.room_media_class = PerPublicationRoomMedia


async def test_the_checks_fail_for_a_remb_per_publication(media: Media) -> None:
    """The test of the test: the relay as it was fails both checks (REMBs that list one video
    each, with that video's estimate and then its share only)."""
    outcome = await run_share(media, use_per_publication_uplinks)
    print("REMBs per publication:", [(round(r.at, 2), r.bitrate, r.ssrcs) for r in outcome.rembs])
    assert outcome.unlimited, "the unlimited check passed REMBs that were per publication"
    assert outcome.limited, "the limited check passed REMBs that were per publication"
