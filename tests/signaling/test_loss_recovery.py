"""Loss recovery that does not give up: NACKs repeated upstream, subscribers' NACKs passed on,
a keyframe asked for as soon as a packet is lost for good, Opus FEC asked for. Real server, real
aiortc peers, the load generator's impairment for the bad network."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from functools import cache
from typing import Any

import pytest
from aiortc import MediaStreamTrack

from signaling.aiortc_hooks import filter_datagrams, observe_nacks
from signaling.client import ParticipantClient
from signaling.loadtest import (
    EncodedMedia,
    EncodedVideoTrack,
    Impairment,
    encode_media,
    run_loadtest,
)
from signaling.loss_recovery import MissingPackets, NackPolicy, relay_nack_policy

from ..conftest import RunningServer

OLD_BEHAVIOUR = NackPolicy(retries=0, keyframe_on_loss=False, answer_subscribers=False)
"""What the relay did before: one NACK per lost packet, nothing more."""


@cache
def media() -> EncodedMedia:
    return encode_media(seconds=1.0)


@pytest.fixture
def relay_policy() -> Iterator[Callable[[NackPolicy], object]]:
    """Set the relay's NACK policy for the test; the default comes back after it."""
    default = relay_nack_policy()
    yield relay_nack_policy
    relay_nack_policy(default)


# ---------------------------------------------------------------- bookkeeping


def test_a_missing_packet_is_asked_for_again_each_interval_then_given_up() -> None:
    missing = MissingPackets(NackPolicy(retries=2, interval=0.25, deadline=2.0))
    assert missing.add(100, 0.0) == []
    assert missing.add(103, 0.0) == [101, 102]  # the gap: NACK now
    assert missing.due(0.125) == ([], [])
    assert missing.add(101, 0.125) == []  # retransmitted
    assert missing.due(0.25) == ([102], [])
    assert missing.due(0.5) == ([102], [])
    assert missing.due(0.75) == ([], [102])  # out of retries, no answer: a keyframe now
    assert missing.due(1.0) == ([], [])  # given up once only
    assert missing.missing == [102]  # still recognised until the deadline
    assert missing.due(2.0) == ([], [])
    assert missing.missing == []


def test_sequence_numbers_wrap_and_jumps_are_not_loss() -> None:
    missing = MissingPackets(NackPolicy())
    missing.add(65534, 0.0)
    assert missing.add(1, 0.0) == [65535, 0]
    assert missing.add(30_000, 0.0) == []  # a restart, not 30,000 lost packets
    assert missing.missing == []


def test_subscriber_requests_are_passed_on_at_most_every_half_interval() -> None:
    missing = MissingPackets(NackPolicy(interval=0.06))
    missing.add(1, 0.0)
    missing.add(3, 0.0)
    assert not missing.ask_now(2, 0.01)  # just asked at the gap
    assert missing.ask_now(2, 0.04)
    assert not missing.ask_now(2, 0.05)
    assert not missing.ask_now(7, 0.5)  # never missing here: the relay has it
    assert not MissingPackets(OLD_BEHAVIOUR).ask_now(2, 1.0)


# ---------------------------------------------------------------- Opus FEC


async def test_the_offer_asks_for_opus_in_band_fec_on_every_audio_m_line(
    server: RunningServer,
) -> None:
    room_id = server.new_room()
    first = ParticipantClient(server.base_url, room_id, audio=_silent_audio(), decode=False)
    second = ParticipantClient(server.base_url, room_id, audio=_silent_audio(), decode=False)
    try:
        await first.join()
        await second.join()
        offer = await first.next_message("offer", since=0)
        while len([s for s in _audio_sections(offer["sdp"])]) < 2:
            offer = await first.next_message("offer")
        sections = _audio_sections(offer["sdp"])
        assert len(sections) == 2  # publishing, and receiving the other
        for section in sections:
            payload_type = re.search(r"a=rtpmap:(\d+) opus/48000", section, re.I)
            assert payload_type is not None
            assert re.search(rf"a=fmtp:{payload_type.group(1)} .*useinbandfec=1", section)
    finally:
        await first.close()
        await second.close()


def _audio_sections(sdp: str) -> list[str]:
    return [s for s in sdp.split("\r\nm=")[1:] if s.startswith("audio")]


def _silent_audio() -> MediaStreamTrack:
    from signaling.loadtest import EncodedAudioTrack

    return EncodedAudioTrack(media())


# ---------------------------------------------------------------- loadtest under loss


async def _video_loss(server: RunningServer, loss: float, seconds: float) -> dict[str, Any]:
    result = await run_loadtest(
        f"{server.base_url}/r/{server.new_room()}",
        3,
        seconds,
        join_interval=0.05,
        media=media(),
        impairment=Impairment(loss_percent=loss, seed=11),
    )
    summary = result.summary
    assert summary["streams_received"] == summary["streams_expected"], summary
    assert summary["impairment"]["dropped_at_random"] > 0  # the network really was lossy
    return summary


async def test_two_percent_loss_is_recovered(server: RunningServer) -> None:
    summary = await _video_loss(server, 2.0, 5.0)
    assert summary["freezes"] == 0
    assert summary["video_loss_percent"] <= 0.05, summary


async def test_without_repeated_nacks_the_same_loss_is_not_recovered(
    server: RunningServer, relay_policy: Callable[[NackPolicy], object]
) -> None:
    """The test of the loss check: at 8% both ways the old one-NACK relay leaves packets lost
    (a lost NACK or retransmission is never repaired), the retrying one does not."""
    relay_policy(OLD_BEHAVIOUR)
    old = await _video_loss(server, 8.0, 8.0)
    relay_policy(NackPolicy())
    new = await _video_loss(server, 8.0, 8.0)
    print(
        f"\nvideo loss in the window at 8%: one NACK {old['video_loss_percent']}%, retrying {new['video_loss_percent']}%"
    )
    assert old["video_loss_percent"] >= 0.1, old
    # A packet lost in the last round trips of the window cannot be repaired before it closes,
    # whatever the policy: that edge is why the bound is half, not zero.
    assert new["video_loss_percent"] <= old["video_loss_percent"] / 2, (new, old)


# ---------------------------------------------------------------- one packet, watched


class RecordingVideoTrack(EncodedVideoTrack):
    """The pre-encoded loop, noting when the publisher is asked for a keyframe."""

    def __init__(self) -> None:
        super().__init__(media())
        self.keyframe_requests: list[float] = []

    def request_keyframe(self) -> None:
        self.keyframe_requests.append(time.monotonic())
        super().request_keyframe()


class DropOnWire:
    """Drops chosen RTP packets a publisher sends: the first one after :meth:`arm` and every
    copy of it (retransmissions too), and once only the one ``marker_after`` packets later."""

    def __init__(self, marker_after: int = 60) -> None:
        self.marker_after = marker_after
        self.armed = False
        self.target: int | None = None
        self.marker: int | None = None
        self.dropped_at: float | None = None
        self._marker_dropped = False

    def arm(self) -> None:
        self.armed = True

    def outbound(self, data: bytes, addr: Any, deliver: Callable[[bytes, Any], None]) -> None:
        if 127 < data[0] < 192 and not 191 < data[1] < 224:  # RTP, not RTCP
            seq = (data[2] << 8) | data[3]
            if self.armed and self.target is None:
                self.target, self.dropped_at = seq, time.monotonic()
                self.marker = (seq + self.marker_after) & 0xFFFF
            if seq == self.target:
                return
            if seq == self.marker and not self._marker_dropped:
                self._marker_dropped = True
                return
        deliver(data, addr)

    @staticmethod
    def inbound(data: bytes, addr: Any, deliver: Callable[[bytes, Any], None]) -> None:
        deliver(data, addr)


class Call:
    """A publisher of video only and one subscriber counting what arrives."""

    def __init__(self, server: RunningServer, *, subscriber_feedback: bool) -> None:
        room_id = server.new_room()
        self.track = RecordingVideoTrack()
        self.publisher = ParticipantClient(server.base_url, room_id, video=self.track, decode=False)
        self.subscriber = ParticipantClient(
            server.base_url,
            room_id,
            decode=False,
            count_encrypted=True,
            feedback=subscriber_feedback,
        )
        self.wire = DropOnWire()
        self.nacks: list[tuple[int, float]] = []

    async def start(self) -> None:
        await self.publisher.join()
        await self.subscriber.join()
        while self.publisher.offers_answered < 1:
            await asyncio.sleep(0.02)
        pc = self.publisher.pc
        assert pc is not None
        filter_datagrams(pc, outbound=self.wire.outbound, inbound=self.wire.inbound)
        sender = next(t.sender for t in pc.getTransceivers() if t.sender.track is self.track)
        observe_nacks(sender, lambda seq: self.nacks.append((seq, time.monotonic())))
        # Video flowing steadily to the subscriber, its start-up keyframe requests over.
        await self.until(lambda: self._frames() >= 30, "video at the subscriber")

    def _frames(self) -> int:
        assert self.publisher.participant_id is not None
        stream = self.subscriber.video_from(self.publisher.participant_id)
        return stream.frames if stream is not None else 0

    def nacks_for(self, seq: int | None) -> int:
        return sum(1 for nacked, _ in self.nacks if nacked == seq)

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self.subscriber.close()
        await self.publisher.close()


@pytest.fixture
async def calls() -> AsyncIterator[list[Call]]:
    made: list[Call] = []
    yield made
    for call in made:
        await call.close()


async def _call(server: RunningServer, calls: list[Call], *, subscriber_feedback: bool) -> Call:
    call = Call(server, subscriber_feedback=subscriber_feedback)
    calls.append(call)
    await call.start()
    return call


@pytest.mark.parametrize("subscriber_nacks", [True, False])
async def test_a_subscriber_nack_for_a_packet_the_relay_never_got_goes_upstream(
    server: RunningServer,
    calls: list[Call],
    relay_policy: Callable[[NackPolicy], object],
    subscriber_nacks: bool,
) -> None:
    """The relay itself asks once only here (no repeats of its own), so every further NACK the
    publisher gets for the packet came from the subscriber's. Without subscriber NACKs (the
    test of the test) the publisher hears of it once: checked after the relay's NACK for a
    packet dropped later reached the publisher on the same path."""
    relay_policy(NackPolicy(retries=0, keyframe_on_loss=False, deadline=3.0))
    call = await _call(server, calls, subscriber_feedback=subscriber_nacks)
    call.wire.arm()
    await call.until(lambda: call.nacks_for(call.wire.marker) >= 1, "the marker's NACK")
    if subscriber_nacks:
        await call.until(lambda: call.nacks_for(call.wire.target) >= 2, "a subscriber's NACK")
    else:
        assert call.nacks_for(call.wire.target) == 1


@pytest.mark.parametrize("keyframe_on_loss", [True, False])
async def test_a_packet_lost_for_good_brings_a_keyframe_request_at_once(
    server: RunningServer,
    calls: list[Call],
    relay_policy: Callable[[NackPolicy], object],
    keyframe_on_loss: bool,
) -> None:
    """The publisher never delivers one packet, however often asked: the relay asks for a
    keyframe as soon as its NACKs run out (~0.7 s), not the subscribers' 3 s. The test of the
    test: with ``keyframe_on_loss=False`` no request comes, checked once all eleven NACKs and
    the later marker's NACK reached the publisher (the request would have come before them)."""
    policy = NackPolicy(keyframe_on_loss=keyframe_on_loss)
    relay_policy(policy)
    call = await _call(server, calls, subscriber_feedback=False)
    call.wire.marker_after = 150  # ~1.5 s later: after the give-up
    call.wire.arm()
    await call.until(lambda: call.wire.dropped_at is not None, "the drop")
    dropped_at = call.wire.dropped_at
    assert dropped_at is not None

    def requested() -> list[float]:
        return [at for at in call.track.keyframe_requests if at > dropped_at]

    if keyframe_on_loss:
        await call.until(lambda: bool(requested()), "a keyframe request")
        delay = requested()[0] - dropped_at
        give_up = (policy.retries + 1) * policy.interval
        assert give_up <= delay < give_up + 0.5, delay
        assert call.nacks_for(call.wire.target) == policy.retries + 1
    else:
        await call.until(lambda: call.nacks_for(call.wire.marker) >= 1, "the marker's NACK")
        assert call.nacks_for(call.wire.target) == policy.retries + 1
        assert requested() == []
