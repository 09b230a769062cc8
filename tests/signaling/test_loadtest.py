"""`meetnow loadtest` against a real server: small rooms, short runs (figures are for benchmarks/)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
)

from signaling.aiortc_hooks import IdleTrack
from signaling.loadtest import (
    EncodedAudioTrack,
    EncodedMedia,
    EncodedVideoTrack,
    encode_media,
    run_loadtest,
    split_room_url,
)
from signaling.relay import Relay

from ..conftest import RunningServer, ServerProcess
from ..signaling.test_loadtest_figures import failure_of

REQUIRED_KEYS = {
    "participants",
    "streams_expected",
    "streams_received",
    "video_fps_min",
    "video_fps_mean",
    "freezes",
    "join_ms_p50",
    "join_ms_p95",
}


def test_pre_encoded_media_is_vga_vp8_at_about_one_megabit() -> None:
    media = encode_media(seconds=1.0)
    assert len(media.video) == 30
    assert 600_000 < media.video_bitrate < 1_400_000
    assert len(media.audio) == 50
    # VP8 keyframe flag (bit 0 of the first byte clear) on the first frame only.
    assert not media.video[0][0] & 1
    assert all(frame[0] & 1 for frame in media.video[1:])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080/r/abc", ("http://127.0.0.1:8080", "abc")),
        ("https://meet.example.org/base/r/xyz/", ("https://meet.example.org/base", "xyz")),
    ],
)
def test_split_room_url(url: str, expected: tuple[str, str]) -> None:
    assert split_room_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://x/r/abc", "http://x/room/abc", "not a url"])
def test_split_room_url_refuses_other_links(url: str) -> None:
    with pytest.raises(ValueError, match="not a meetnow room link"):
        split_room_url(url)


async def test_three_synthetic_participants_receive_everything(
    server: RunningServer, relay_rtcp: RelayRtcp
) -> None:
    room_id = server.new_room()
    result = await run_loadtest(
        f"{server.base_url}/r/{room_id}",
        3,
        3.0,
        join_interval=0.05,
        progress=relay_rtcp.watch(server, room_id),
    )
    summary = result.summary
    assert REQUIRED_KEYS <= summary.keys()
    assert summary["participants"] == 3
    assert summary["streams_expected"] == 12
    assert summary["streams_received"] == 12
    assert summary["video_fps_mean"] > 20
    # A steady run: no freeze, trailing gaps included, and no stream above the rate it was sent.
    assert summary["freezes"] == 0
    assert summary["freeze_seconds"] == 0
    assert summary["video_fps_max"] <= 30.5
    assert summary["join_ms_p50"] is not None and summary["join_ms_p50"] > 0
    assert summary["video_first_frame_ms_p50"] is not None
    assert summary["video_first_frame_ms_p95"] >= summary["video_first_frame_ms_p50"] > 0
    assert summary["errors"] == 0
    # Every figure says which window it covers.
    window = summary["window"]
    assert window["seconds"] == summary["measured_window_s"] >= 3.0
    assert "video_fps_min" in window["covers"] and "loss_percent" in window["covers"]
    assert "video_first_frame_ms_p50" in window["from_each_join"]
    assert [row["video_streams"] for row in result.participants] == [2, 2, 2]
    assert all(row["video_fps_max"] <= 30.5 for row in result.participants)
    # Everyone left: the room is empty again.
    room = server.meetnow.rooms.get_room(room_id)
    assert room is not None and not room.participants
    # The receivers answered as browsers do, and the relay got it on its subscriber m-lines:
    # receiver reports on every one, REMB on every video one, and PLIs as video streams began.
    senders = relay_rtcp.relay_senders()
    assert len(senders) == 12  # 3 participants x 2 others x (audio + video)
    video = [sender for sender in senders if sender.kind == "video"]
    assert relay_rtcp.senders_with(is_receiver_report) == set(map(id, senders))
    assert relay_rtcp.senders_with(is_remb) >= set(map(id, video))
    assert relay_rtcp.senders_with(is_pli)


async def test_a_synthetic_screen_share_reaches_the_others(server: RunningServer) -> None:
    # `--screens 1` (the screen-share cost benchmark): the first participant also shares, so the
    # window starts only once each other participant receives its screen, frames advancing.
    room_id = server.new_room()
    result = await run_loadtest(
        f"{server.base_url}/r/{room_id}", 3, 2.0, join_interval=0.05, screens=1
    )
    assert result.summary["video_streams_received"] == 6
    assert result.summary["screen_streams_expected"] == 2
    assert result.summary["screen_streams_received"] == 2
    assert result.summary["screen_fps_min"] > 15


async def test_no_feedback_sends_no_rtcp_about_received_media(
    server: RunningServer, relay_rtcp: RelayRtcp
) -> None:
    room_id = server.new_room()
    result = await run_loadtest(
        f"{server.base_url}/r/{room_id}",
        3,
        3.0,
        join_interval=0.05,
        progress=relay_rtcp.watch(server, room_id),
        feedback=False,
    )
    assert result.summary["feedback"] is False
    assert result.summary["streams_received"] == 12
    assert len(relay_rtcp.relay_senders()) == 12
    # The barrier: RTCP from the same clients, on the same transports, reached the relay all
    # through the window (each publisher's sender reports, at least two per track) ...
    receivers = relay_rtcp.relay_receivers()
    assert len(receivers) == 6
    for receiver in receivers:
        assert relay_rtcp.count(receiver, is_sender_report) >= 2
    # ... and yet not one packet of feedback reached a subscriber m-line.
    assert relay_rtcp.to_senders() == []


async def test_a_publisher_that_stops_before_the_window_ends_is_a_freeze(
    server: RunningServer,
) -> None:
    """The test of the freeze check: the same loadtest, with one publisher whose camera hangs
    about one second into the four-second window, must report it frozen at each receiver."""
    stopped = StoppingVideoTrack.made
    stopped.clear()

    def tracks(index: int, media: EncodedMedia) -> tuple[MediaStreamTrack, MediaStreamTrack]:
        video = StoppingVideoTrack(media) if index == 0 else EncodedVideoTrack(media)
        return EncodedAudioTrack(media), video

    def progress(line: str) -> None:
        if "video streams" in line:  # the first line of the measured window, ~1 s in
            for track in stopped:
                track.stop_sending()

    room_id = server.new_room()
    result = await run_loadtest(
        f"{server.base_url}/r/{room_id}",
        3,
        4.0,
        join_interval=0.05,
        progress=progress,
        tracks=tracks,
    )
    rows = {row["name"]: row for row in result.participants}
    assert rows["load-1"]["freezes"] == 0  # load-1 still receives the others
    for name in ("load-2", "load-3"):
        assert rows[name]["freezes"] >= 1, rows[name]
        assert rows[name]["freeze_seconds"] >= 2.0
        assert rows[name]["video_fps_min"] < 20
    summary = result.summary
    assert summary["freezes"] >= 2
    assert summary["streams_received"] == summary["streams_expected"]  # it did arrive, then stop
    # ... and the benchmarks' rule calls the room not held, for the freeze.
    assert "freeze" in failure_of(summary)


async def test_cli_json_through_relay_workers(server_process_with_workers: ServerProcess) -> None:
    server = server_process_with_workers
    room_id = await server.create_room()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meetnow.cli", "loadtest", f"{server.base_url}/r/{room_id}",
        "--participants", "2", "--duration", "2", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    report = json.loads(stdout)
    assert REQUIRED_KEYS <= report.keys()
    assert report["streams_received"] == report["streams_expected"] == 4
    assert report["freezes"] == 0
    assert "joined 2/2" in stderr.decode()  # the progress lines


async def test_cli_refuses_a_link_that_is_not_a_room() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meetnow.cli", "loadtest", "http://127.0.0.1:1/nope",
        "--participants", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "not a meetnow room link" in stderr.decode()


# ---------------------------------------------------------------- the relay's side of the RTCP


def is_receiver_report(packet: object) -> bool:
    return isinstance(packet, RtcpRrPacket) and bool(packet.reports)


def is_sender_report(packet: object) -> bool:
    return isinstance(packet, RtcpSrPacket)


def is_remb(packet: object) -> bool:
    return isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP


def is_pli(packet: object) -> bool:
    return isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI


@dataclass
class RelayRtcp:
    """Every RTCP packet aiortc routed to a sender or receiver of this process, and which of
    those belong to the in-process relay's peer connections (read from the server each second
    of the loadtest, while they exist)."""

    to_sender: list[tuple[int, object]] = field(default_factory=list)
    to_receiver: list[tuple[int, object]] = field(default_factory=list)
    relay_side: dict[int, Any] = field(default_factory=dict)
    """Relay senders and receivers by id (held, so no id is reused while the test runs)."""
    subscriber_senders: dict[int, Any] = field(default_factory=dict)
    """Those of the senders that forwarded media to a subscriber."""
    publisher_receivers: dict[int, Any] = field(default_factory=dict)
    """The receivers of what participants publish."""

    def watch(self, server: RunningServer, room_id: str) -> Callable[[str], None]:
        relay = server.meetnow.relay
        assert isinstance(relay, Relay)

        def collect(_line: str) -> None:
            media = relay.rooms.get(room_id)
            for session in media.sessions.values() if media else []:
                for item in [*session.pc.getSenders(), *session.pc.getReceivers()]:
                    self.relay_side[id(item)] = item
                    if isinstance(item, RTCRtpSender) and isinstance(item.track, IdleTrack):
                        self.subscriber_senders[id(item)] = item
                for transceiver in session.pc.getTransceivers():
                    if transceiver.direction == "recvonly":  # an m-line the participant sends on
                        self.publisher_receivers[id(transceiver.receiver)] = transceiver.receiver

        return collect

    def relay_senders(self) -> list[Any]:
        """The relay's subscriber m-lines (its senders that forward media)."""
        return list(self.subscriber_senders.values())

    def relay_receivers(self) -> list[Any]:
        """The relay's receivers of published media."""
        return list(self.publisher_receivers.values())

    def senders_with(self, matches: Callable[[object], bool]) -> set[int]:
        return {key for key, packet in self.to_sender if key in self.relay_side and matches(packet)}

    def count(self, receiver: object, matches: Callable[[object], bool]) -> int:
        return sum(1 for key, p in self.to_receiver if key == id(receiver) and matches(p))

    def to_senders(self) -> list[object]:
        return [packet for key, packet in self.to_sender if key in self.relay_side]


@pytest.fixture
def relay_rtcp(monkeypatch: pytest.MonkeyPatch) -> Iterator[RelayRtcp]:
    """Record what aiortc hands to ``_handle_rtcp_packet`` (then let it handle it as usual)."""
    seen = RelayRtcp()

    def spy(
        original: Callable[[Any, Any], Awaitable[None]], into: list[tuple[int, object]]
    ) -> Callable[[Any, Any], Awaitable[None]]:
        async def handle(self: Any, packet: Any) -> None:
            into.append((id(self), packet))
            await original(self, packet)

        return handle

    monkeypatch.setattr(
        RTCRtpSender,
        "_handle_rtcp_packet",
        spy(RTCRtpSender._handle_rtcp_packet, seen.to_sender),
    )
    monkeypatch.setattr(
        RTCRtpReceiver,
        "_handle_rtcp_packet",
        spy(RTCRtpReceiver._handle_rtcp_packet, seen.to_receiver),
    )
    yield seen


class StoppingVideoTrack(EncodedVideoTrack):
    """The pre-encoded loop, until :meth:`stop_sending`: then no frame ever again (a camera
    that hangs), while the participant stays in the room."""

    made: list[StoppingVideoTrack] = []

    def __init__(self, media: EncodedMedia) -> None:
        super().__init__(media)
        self._hung = asyncio.Event()
        StoppingVideoTrack.made.append(self)

    def stop_sending(self) -> None:
        self._hung.set()

    async def recv(self) -> Any:
        if self._hung.is_set():
            await asyncio.Future()  # never done; cancelled when the participant leaves
        return await super().recv()


def test_cli_no_feedback_flag_reaches_the_loadtest(
    server_process: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    from meetnow.cli import main

    room_id = asyncio.run(server_process.create_room())
    url = f"{server_process.base_url}/r/{room_id}"
    assert main(["loadtest", url, "-n", "2", "--duration", "1", "--no-feedback"]) == 0
    table = capsys.readouterr().out
    assert "receivers sent no RTCP feedback (--no-feedback)" in table
    assert "over the 1.0 s window" in table
