"""The loadtest's figures without a server: windows, freezes, fps that a burst cannot inflate, the
pacing of synthetic publishers, and the one rule that calls a room "held" (benchmarks/common.py).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from benchmarks import density
from benchmarks.common import LoadRun
from benchmarks.density import DensityRow
from signaling.received_stream import ReceivedStream
from signaling.synthetic_media import VIDEO_CLOCK, VIDEO_FPS, EncodedVideoTrack, encode_media

# ---------------------------------------------------------------- windows, freezes, fps (units)


def frames_at(stream: ReceivedStream, times: list[float], first_seq: int = 0) -> None:
    """One single-packet frame at each time, 1/30 s apart on the sender's RTP clock."""
    for index, at in enumerate(times):
        seq = first_seq + index
        stream.count_header(seq & 0xFFFF, seq * (VIDEO_CLOCK // VIDEO_FPS), 1000, at)


def steady(start: float, end: float) -> list[float]:
    count = round((end - start) * VIDEO_FPS)
    return [start + index / VIDEO_FPS for index in range(count)]


def test_a_stream_that_stops_before_the_end_of_the_window_is_one_freeze() -> None:
    stream = ReceivedStream("p", "video")
    stream.mark(0.0)
    frames_at(stream, steady(0.0, 2.0))
    # A gap is counted only when the next frame ends it: none came, so none is counted yet ...
    assert stream.freezes == 0
    # ... but read at the end of a 5 s window, the 3 s without frames are a freeze.
    freezes, frozen = stream.window_freezes(0.0, 5.0)
    assert freezes == 1
    assert frozen == pytest.approx(3.0 + 1 / VIDEO_FPS, abs=0.01)


def test_a_stream_that_runs_to_the_end_of_the_window_has_no_freeze() -> None:
    stream = ReceivedStream("p", "video")
    stream.mark(0.0)
    frames_at(stream, steady(0.0, 5.0))
    assert stream.window_freezes(0.0, 5.0) == (0, 0.0)
    assert stream.window_fps(5.0) == pytest.approx(30.0, abs=0.2)


def test_a_stream_without_a_frame_in_the_window_is_frozen_all_window() -> None:
    stream = ReceivedStream("p", "video")
    frames_at(stream, steady(0.0, 1.0))  # before the window only
    stream.mark(2.0)
    assert stream.window_freezes(2.0, 6.0) == (1, 4.0)
    assert stream.window_fps(4.0) == 0.0


def test_audio_silences_are_not_freezes() -> None:
    stream = ReceivedStream("p", "audio")
    stream.mark(0.0)
    assert stream.window_freezes(0.0, 5.0) == (0, 0.0)


def test_a_burst_of_late_frames_does_not_read_above_the_rate_they_were_sent_at() -> None:
    stream = ReceivedStream("p", "video")
    stream.mark(0.0)
    frames_at(stream, steady(0.0, 1.0))
    # 15 more frames (half a second of sending) arrive at once: a backlog draining.
    frames_at(stream, [1.0] * 15, first_seq=30)
    counted = stream.frames - stream.marked_frames
    assert counted / 1.0 == 45  # frames per wall-clock second of the window
    assert stream.window_fps(1.0) <= 30.5  # frames per second of the sender's clock


def test_mark_restarts_every_window_counter() -> None:
    stream = ReceivedStream("p", "video")
    frames_at(stream, steady(0.0, 1.0))
    stream.count_header(100, 100 * 3000, 1000, 1.5)  # a gap of 70 packets, and of 0.5+ s
    assert stream.lost == 70 and stream.freezes == 1
    stream.mark(2.0)
    assert (stream.lost, stream.packets, stream.freezes, stream.freeze_seconds) == (0, 0, 0, 0.0)
    assert (stream.marked_frames, stream.marked_bytes) == (stream.frames, stream.bytes)
    assert stream.window_fps(1.0) == 0.0
    stream.count_header(101, 101 * 3000, 500, 2.01)
    assert stream.packets == 1 and stream.bytes - stream.marked_bytes == 500


# ---------------------------------------------------------------- pacing of the publishers


async def test_a_blocked_track_skips_the_frames_it_missed_instead_of_bursting() -> None:
    track = EncodedVideoTrack(encode_media(width=64, height=48, seconds=0.5))
    before = [(await track.recv()).pts for _ in range(3)]
    time.sleep(0.5)  # the event loop is blocked: nobody reads the track for half a second
    resumed = time.monotonic()
    after: list[int] = []
    delays: list[float] = []
    for _ in range(6):
        after.append((await track.recv()).pts)
        delays.append(time.monotonic() - resumed)
    # One frame at once, then one per interval: never the ~15 missed frames back to back.
    assert delays[5] >= 4 / VIDEO_FPS
    # Timestamps follow the wall clock: the first frame after the block is ~0.5 s later.
    assert (after[0] - before[-1]) / VIDEO_CLOCK >= 0.45
    assert all(b - a == VIDEO_CLOCK // VIDEO_FPS for a, b in itertools.pairwise(after))


# ---------------------------------------------------------------- "held" (benchmarks/common.py)


def held_summary(**changes: object) -> dict[str, Any]:
    """A loadtest summary of a 4-person room that held."""
    summary: dict[str, Any] = {
        "participants": 4,
        "streams_expected": 24,
        "streams_received": 24,
        "video_streams_expected": 12,
        "video_streams_received": 12,
        "video_fps_min": 29.6,
        "video_fps_mean": 29.9,
        "video_fps_max": 30.0,
        "freezes": 0,
        "freeze_seconds": 0.0,
        "loss_percent": 0.0,
        "errors": 0,
    }
    summary.update(changes)
    return summary


def load_run(summary: dict[str, Any]) -> LoadRun:
    return LoadRun(
        participants=summary["participants"],
        summary=summary,
        window_s=10.0,
        server_cpu_percent=50.0,
        generator_cpu_percent=50.0,
        server_rss_before_mib=50.0,
        server_rss_during_mib=60.0,
        server_processes=1,
        server_udp_drops=0,
        generator_udp_drops=0,
        machine_udp_drops=0,
        other_cpu_percent=0.0,
        steal_percent=0.0,
        returncode=0,
        wall_s=20.0,
        stderr_tail=[],
    )


def failure_of(summary: dict[str, Any]) -> str:
    run = load_run({**held_summary(), **summary})
    assert run.held() == (run.failure() == "")
    return run.failure()


def test_a_room_that_holds_is_held() -> None:
    run = load_run(held_summary())
    assert run.held() and run.failure() == ""


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"video_fps_mean": 30.0, "video_fps_min": 20.0}, "fps min 20.0"),
        ({"freezes": 1, "freeze_seconds": 2.5}, "1 freezes"),
        ({"loss_percent": 1.5}, "loss 1.5%"),
        ({"video_streams_received": 11, "streams_received": 23}, "streams 23/24"),
        ({"errors": 2}, "2 errors"),
    ],
)
def test_a_room_that_does_not_hold_says_why(changes: dict[str, object], reason: str) -> None:
    run = load_run(held_summary(**changes))
    assert not run.held()
    assert reason in run.failure()


def test_a_run_without_a_summary_is_not_held() -> None:
    run = load_run(held_summary())
    run.summary = None
    assert not run.held() and "no result" in run.failure()


def test_density_states_capacity_only_for_sizes_that_held() -> None:
    held = DensityRow(load_run(held_summary()))
    failed = DensityRow(load_run(held_summary(video_fps_min=20.0, video_fps_mean=30.0)))
    assert held.capacity is not None and held.capacity == held.streams_per_core > 0
    assert failed.capacity is None
    held_row, failed_row = density.markdown([held, failed]).splitlines()[2:]
    capacity_column = 5  # "| " + participants, streams, relay CPU, CPU per stream, capacity
    assert held_row.split("|")[capacity_column].strip() == f"{held.streams_per_core:.0f}"
    assert failed_row.split("|")[capacity_column].strip() == "-"
    assert "**no**: fps min 20.0" in failed_row
    assert density.largest_held([held, failed]) is held
