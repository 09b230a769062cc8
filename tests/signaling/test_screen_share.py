"""Screen sharing through the real server with real aiortc peers: the screen is one more forwarded
video, marked ``source: "screen"``, next to cameras that keep flowing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from signaling.client import FREEZE_SECONDS, ParticipantClient, PatternVideoTrack
from signaling.received_stream import ReceivedStream
from signaling.synthetic_media import EncodedMedia, EncodedVideoTrack, encode_media

from ..conftest import RunningServer, start_server, test_settings


@pytest.fixture(scope="module")
def screen_media() -> EncodedMedia:
    """A pre-encoded VP8 loop for screens (another resolution than the cameras')."""
    return encode_media(width=480, height=272, seconds=1.0, bitrate=300_000)


@pytest.fixture(params=[0, 1], ids=["in-process", "worker"])
async def any_server(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    running, runner = await start_server(
        test_settings(relay_workers=request.param, room_max_screen_shares=2)
    )
    yield running
    await runner.cleanup()


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def advances(
    stream: Callable[[], ReceivedStream | None], frames: int, timeout: float
) -> None:
    """Frames of ``stream`` keep arriving: ``frames`` more than now, within ``timeout``."""
    start = stream()
    before = start.frames if start is not None else 0

    def grown() -> bool:
        now = stream()
        return now is not None and now.frames >= before + frames

    await wait_until(grown, timeout, f"{frames} more frames")


def tracks_of(client: ParticipantClient, source: str) -> list[dict[str, Any]]:
    offers = [m for m in client.messages if m["type"] == "offer"]
    return [t for t in offers[-1]["tracks"].values() if t["source"] == source] if offers else []


async def round_trip(client: ParticipantClient) -> None:
    """A ping and its pong: the server has handled all this client sent before."""
    mark = len(client.messages)
    await client.send({"type": "ping"})
    await client.next_message("pong", 10, since=mark)


def camera(base_url: str, room_id: str, name: str) -> ParticipantClient:
    return ParticipantClient(base_url, room_id, name=name, video=PatternVideoTrack(160, 120, 15))


CAMERA_TICKS_PER_SECOND = 90_000
"""RTP clock of video: a stream's own timestamps cannot run ahead of wall time by much."""


def continuity_failures(stream: ReceivedStream, start: float, end: float) -> list[str]:
    """What broke one stream's continuity between ``start`` and ``end`` (packet-counting mode,
    :meth:`ReceivedStream.mark` called at ``start``): a gap of more than ``FREEZE_SECONDS``
    between two frames (or at the window's edges), a packet missing from the sequence, or
    timestamps that ran ahead of the window (another stream's packets on its m-line)."""
    failures: list[str] = []
    freezes, frozen = stream.window_freezes(start, end)
    if freezes:
        failures.append(f"{freezes} gaps over {FREEZE_SECONDS} s ({frozen:.2f} s in all)")
    if stream.lost:
        failures.append(f"{stream.lost} packets missing")
    sent_seconds = stream.sent_ticks / CAMERA_TICKS_PER_SECOND
    if sent_seconds > end - start + 1.0:
        failures.append(f"timestamps advanced {sent_seconds:.1f} s in {end - start:.1f} s")
    if stream.frames == stream.marked_frames:
        failures.append("no frames")
    return failures


async def test_a_shared_screen_reaches_the_others_and_stops_everywhere(
    any_server: RunningServer, screen_media: EncodedMedia
) -> None:
    room_id = any_server.new_room()
    sharer = camera(any_server.base_url, room_id, "sharer")
    sharer.screen = EncodedVideoTrack(screen_media)
    viewer = camera(any_server.base_url, room_id, "viewer")
    # Counts packets as they arrive (no decoder on this loaded machine to delay them): what
    # the relay forwards, exactly.
    watcher = ParticipantClient(any_server.base_url, room_id, name="watcher", decode=False)
    try:
        for client in (sharer, viewer, watcher):
            await client.join()
        sid = sharer.participant_id
        assert sid is not None and viewer.participant_id is not None
        await advances(lambda: viewer.video_from(sid), 5, 20)
        await advances(lambda: watcher.video_from(sid), 5, 20)
        watched = watcher.video_from(sid)
        assert watched is not None
        start = time.monotonic()
        watched.mark(start)
        mark = len(viewer.messages)
        await sharer.share_screen()
        updated = await viewer.next_message("participant_updated", 10, since=mark)
        assert updated["participant"]["id"] == sid and updated["participant"]["media"]["screen"]
        await wait_until(lambda: bool(tracks_of(viewer, "screen")), 10, "the screen's m-line")
        assert tracks_of(viewer, "screen") == [
            {"participant": sid, "kind": "video", "source": "screen"}
        ]
        assert tracks_of(sharer, "screen")[0]["participant"] == sid  # its own: to publish on
        # Both advance: the screen, and the camera beside it.
        await advances(lambda: viewer.screen_from(sid), 10, 20)
        await advances(lambda: watcher.screen_from(sid), 10, 20)
        await advances(lambda: viewer.video_from(sid), 10, 20)
        # The share's renegotiation never interrupted the camera: every packet, no gap.
        assert continuity_failures(watched, start, time.monotonic()) == []
        screen = viewer.screen_from(sid)
        assert screen is not None and (screen.width, screen.height) == (480, 272)

        mark = len(viewer.messages)
        await sharer.share_screen(False)
        updated = await viewer.next_message("participant_updated", 10, since=mark)
        assert updated["participant"]["media"]["screen"] is False
        await wait_until(lambda: not tracks_of(viewer, "screen"), 10, "the m-line going idle")
        assert not tracks_of(sharer, "screen")
        with pytest.raises(AssertionError, match="more frames"):
            # The test of the test: a stopped screen does not "advance".
            await advances(lambda: viewer.screen_from(sid), 5, 2)
        await advances(lambda: viewer.video_from(sid), 10, 10)  # the camera goes on
    finally:
        for client in (sharer, viewer, watcher):
            await client.close()


def test_the_continuity_check_sees_a_gap_a_loss_and_a_foreign_stream() -> None:
    """The test of the test for :func:`continuity_failures`, on packets made up here."""

    def stream_of(packets: list[tuple[int, int, float]], end: float) -> list[str]:
        stream = ReceivedStream(participant="p", kind="video")
        stream.mark(0.0)
        for seq, timestamp, at in packets:
            stream.count_header(seq, timestamp, 100, at)
        return continuity_failures(stream, 0.0, end)

    steady = [(i, i * 6000, i / 15) for i in range(30)]
    assert stream_of(steady, 2.0) == []
    gap = [(i, i * 6000, i / 15 + (0.6 if i >= 15 else 0.0)) for i in range(30)]
    assert any("gaps over" in f for f in stream_of(gap, 2.6))
    lost = [p for p in steady if p[0] != 10]
    assert any("missing" in f for f in stream_of(lost, 2.0))
    foreign = [*steady[:15], *((i, 1_000_000_000 + i * 3000, i / 15) for i in range(15, 30))]
    assert any("timestamps advanced" in f for f in stream_of(foreign, 2.0))
    assert any("stopped" in f or "gaps over" in f for f in stream_of(steady[:10], 2.0))


def m_lines(client: ParticipantClient) -> int:
    """How many m-lines the client's latest offer has."""
    offers = [m for m in client.messages if m["type"] == "offer"]
    return str(offers[-1]["sdp"]).count("\r\nm=")


async def settled(client: ParticipantClient) -> None:
    """The client has answered every offer it got, and the server has applied the answers."""
    await wait_until(
        lambda: client.offers_answered == sum(m["type"] == "offer" for m in client.messages),
        20,
        "every offer answered",
    )
    await round_trip(client)


async def test_sharing_again_and_again_reuses_the_same_m_lines(
    any_server: RunningServer, screen_media: EncodedMedia
) -> None:
    room_id = any_server.new_room()
    sharer = camera(any_server.base_url, room_id, "sharer")
    sharer.screen = EncodedVideoTrack(screen_media)
    viewer = camera(any_server.base_url, room_id, "viewer")
    try:
        await sharer.join()
        await viewer.join()
        sid = sharer.participant_id or ""
        counts: list[tuple[int, int]] = []
        for _ in range(5):
            for sharing in (True, False):
                await sharer.share_screen(sharing)
                await round_trip(sharer)
                await wait_until(
                    lambda sharing=sharing: bool(tracks_of(viewer, "screen")) == sharing,  # type: ignore[misc]
                    20,
                    "the viewer's offer for the share",
                )
                await settled(sharer)
                await settled(viewer)
            counts.append((m_lines(sharer), m_lines(viewer)))
        # Own camera, the other's camera, one screen m-line: on both sides, every time.
        assert counts == [(3, 3)] * 5
        await sharer.share_screen()
        await advances(lambda: viewer.screen_from(sid), 10, 20)  # the reused m-line plays
    finally:
        await sharer.close()
        await viewer.close()


async def test_two_sharers_the_cap_and_a_late_joiner(
    any_server: RunningServer, screen_media: EncodedMedia
) -> None:
    room_id = any_server.new_room()
    clients = [camera(any_server.base_url, room_id, f"p{i}") for i in range(3)]
    for client in clients:
        client.screen = EncodedVideoTrack(screen_media)
    late = camera(any_server.base_url, room_id, "late")
    try:
        for client in clients:
            await client.join()
        first, second, third = clients
        await first.share_screen()
        await second.share_screen()
        await round_trip(first)
        await round_trip(second)
        await first.share_screen()  # the same state again: a no-op, no error
        await round_trip(first)
        assert first.errors == []
        await third.share_screen()  # the cap here is 2
        error = await third.next_message("error", 10)
        assert error["code"] == "too_many_screen_shares" and error["fatal"] is False
        assert "2 shared screens" in error["message"]
        for sharer in (first, second):
            assert sharer.participant_id is not None
            sid = sharer.participant_id
            await advances(lambda sid=sid: third.screen_from(sid), 5, 20)  # type: ignore[misc]
        await late.join()
        for sharer in (first, second):
            sid = sharer.participant_id or ""
            await advances(lambda sid=sid: late.screen_from(sid), 5, 20)  # type: ignore[misc]
        assert third.participant_id is not None
        assert late.screen_from(third.participant_id) is None
    finally:
        for client in [*clients, late]:
            await client.close()


async def test_a_page_that_reconnects_while_sharing_publishes_its_screen_at_once(
    any_server: RunningServer, screen_media: EncodedMedia
) -> None:
    room_id = any_server.new_room()
    viewer = camera(any_server.base_url, room_id, "viewer")
    returning = camera(any_server.base_url, room_id, "returning")
    returning.screen = EncodedVideoTrack(screen_media)
    returning.sharing = True  # its join says screen: true
    try:
        await viewer.join()
        await returning.join()
        first_offer = await returning.next_message("offer", 10, since=0)
        rid = returning.participant_id or ""
        own = [t["source"] for t in first_offer["tracks"].values() if t["participant"] == rid]
        assert own == ["camera", "screen"]
        joined = await viewer.next_message("participant_joined", 10, since=0)
        assert joined["participant"]["media"]["screen"] is True
        await advances(lambda: viewer.screen_from(rid), 5, 20)
    finally:
        await viewer.close()
        await returning.close()


async def test_a_join_with_a_screen_into_a_full_room_is_told_after_joined(
    any_server: RunningServer, screen_media: EncodedMedia
) -> None:
    room_id = any_server.new_room()
    sharers = [camera(any_server.base_url, room_id, f"s{i}") for i in range(2)]
    for sharer in sharers:
        sharer.screen = EncodedVideoTrack(screen_media)
        sharer.sharing = True  # both join sharing: the cap (2) is full
    late = camera(any_server.base_url, room_id, "late")
    late.screen = EncodedVideoTrack(screen_media)
    late.sharing = True
    back: ParticipantClient | None = None
    try:
        for sharer in sharers:
            await sharer.join()
        await late.join()
        error = await late.next_message("error", 10, since=0)
        assert error["code"] == "too_many_screen_shares" and error["fatal"] is False
        assert "2 shared screens" in error["message"]
        types = [m["type"] for m in late.messages]
        assert types.index("joined") < types.index("error")  # after joined: the page can say it
        offer = await late.next_message("offer", 10, since=0)
        lid = late.participant_id or ""
        assert [t["source"] for t in offer["tracks"].values() if t["participant"] == lid] == [
            "camera"
        ]
        # A sharer's own reconnect (same session, still sharing) is not refused by its own share.
        first = sharers[0]
        back = camera(any_server.base_url, room_id, "s0")
        back.session, back.screen, back.sharing = first.session, first.screen, True
        await back.join()
        await round_trip(back)
        assert back.errors == []
        bid = back.participant_id or ""
        offer = await back.next_message("offer", 10, since=0)
        own = [t["source"] for t in offer["tracks"].values() if t["participant"] == bid]
        assert own == ["camera", "screen"]
    finally:
        for client in [*sharers, late, *([back] if back else [])]:
            await client.close()
