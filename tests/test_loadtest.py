"""`meetnow loadtest` against a real server: small rooms, short runs (figures are for benchmarks/)."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from signaling.loadtest import encode_media, run_loadtest, split_room_url

from .conftest import RunningServer, ServerProcess

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


async def test_three_synthetic_participants_receive_everything(server: RunningServer) -> None:
    room_id = server.new_room()
    result = await run_loadtest(f"{server.base_url}/r/{room_id}", 3, 2.0, join_interval=0.05)
    summary = result.summary
    assert REQUIRED_KEYS <= summary.keys()
    assert summary["participants"] == 3
    assert summary["streams_expected"] == 12
    assert summary["streams_received"] == 12
    assert summary["video_fps_mean"] > 20
    assert summary["join_ms_p50"] is not None and summary["join_ms_p50"] > 0
    assert summary["errors"] == 0
    assert [row["video_streams"] for row in result.participants] == [2, 2, 2]
    # Everyone left: the room is empty again.
    room = server.meetnow.rooms.get_room(room_id)
    assert room is not None and not room.participants


async def test_cli_json_through_relay_workers(server_process_with_workers: ServerProcess) -> None:
    server = server_process_with_workers
    room_id = await server.create_room()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling.cli", "loadtest", f"{server.base_url}/r/{room_id}",
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
        sys.executable, "-m", "signaling.cli", "loadtest", "http://127.0.0.1:1/nope",
        "--participants", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "not a meetnow room link" in stderr.decode()
