"""The pure parts of the network benchmark: freezes and frame rates from frame timestamps, the
issue's targets, and the NFQUEUE program's netlink parsing (benchmarks/network_figures.py,
benchmarks/nfqueue_delay.py)."""

from __future__ import annotations

import socket
import struct

import pytest

from benchmarks.network import CappedCheck
from benchmarks.network_figures import (
    MISSING,
    PathRun,
    VideoFigures,
    capped_target,
    freezes_target,
    guest_videos,
    video_figures,
)
from benchmarks.nfqueue_delay import (
    NFQA_PACKET_HDR,
    NFQNL_MSG_PACKET,
    NLMSG_ERROR,
    NLMSG_HEADER,
    attribute,
    message,
    packet_ids,
    verdict,
)


def steady(start: float, end: float, fps: float = 30.0) -> list[float]:
    step = 1000 / fps
    return [start + step * (i + 1) for i in range(int((end - start) / step))]


def test_a_steady_video_has_its_frame_rate_and_no_freeze() -> None:
    times = steady(0, 10_000)
    figures = video_figures("a", times, [1] * len(times), 0, 10_000)
    assert figures.fps == pytest.approx(30, abs=0.2)
    assert figures.freezes == 0
    assert figures.longest_gap_s < 0.05


def test_a_stall_in_the_middle_is_one_freeze() -> None:  # test of the test: it can fail
    times = [t for t in steady(0, 10_000) if not 4000 < t < 5200]
    figures = video_figures("a", times, [1] * len(times), 0, 10_000)
    assert figures.freezes == 1
    assert figures.frozen_s == pytest.approx(1.2, abs=0.05)


def test_a_video_that_stops_before_the_end_is_frozen_there_too() -> None:
    # Counting a freeze only when the next frame arrives would miss this stall.
    times = steady(0, 8000)
    figures = video_figures("a", times, [1] * len(times), 0, 10_000)
    assert figures.freezes == 1
    assert figures.longest_gap_s == pytest.approx(2.0, abs=0.05)


def test_a_frozen_video_is_one_long_freeze_at_zero_fps() -> None:
    figures = video_figures("a", [], [], 1000, 21_000)
    assert (figures.fps, figures.freezes, figures.longest_gap_s) == (0, 1, 20)


def test_frames_outside_the_window_do_not_count_and_counts_add_up() -> None:
    figures = video_figures("a", [-500, 100, 600, 1100, 1500], [9, 2, 2, 2, 9], 0, 1000)
    assert figures.fps == 4  # only the frames at 100 and 600
    assert figures.freezes == 0


def test_a_video_a_guest_never_got_counts_as_frozen_the_whole_window() -> None:
    steady = [float(t) for t in range(0, 20_000, 50)]
    tile = ("Ada", steady, [1] * len(steady))
    # Both remote videos there: measured as they are.
    both = guest_videos([tile, ("Bea", steady, [1] * len(steady))], 2, 0, 20_000)
    assert [(v.name, v.freezes) for v in both] == [("Ada", 0), ("Bea", 0)]
    # One never arrived (its sender never entered the call): frozen at 0 fps, never left out.
    one = guest_videos([tile], 2, 0, 20_000)
    assert [(v.name, v.fps, v.freezes, v.longest_gap_s) for v in one[1:]] == [(MISSING, 0, 1, 20)]
    run = PathRun("c", "meetnow", window_s=20.0, videos=one)
    assert run.fps_min == 0 and run.freezes_per_minute == 1.5


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        video_figures("a", [], [], 5, 5)


def run_with(freezes: int, fps: float, gap: float) -> PathRun:
    video = VideoFigures("v", fps=fps, freezes=freezes, frozen_s=freezes * gap, longest_gap_s=gap)
    return PathRun("c", "meetnow", window_s=60.0, videos=[video, video])


def test_the_loss_target_compares_with_peer_to_peer_plus_a_tenth() -> None:
    direct = run_with(0, 20, 0.1)
    assert freezes_target(run_with(0, 20, 0.1), direct) is True
    assert freezes_target(run_with(1, 20, 3.0), direct) is False
    assert freezes_target(PathRun("c", "meetnow"), direct) is None  # not measured is not met


def test_the_cap_target_wants_ten_fps_and_no_freeze_over_two_seconds() -> None:
    assert capped_target(run_with(0, 12, 0.3)) is True
    assert capped_target(run_with(0, 9, 0.3)) is False
    assert capped_target(run_with(1, 15, 2.5)) is False
    assert capped_target(PathRun("c", "meetnow")) is None


def test_the_capped_subscriber_check_fails_a_slow_room() -> None:
    def row(name: str, fps: float) -> dict[str, object]:
        return {"name": name, "video_fps_min": fps}

    good = CappedCheck(10, [row("1", 29), row("2", 30), row("3", 28.5), row("4", 11)])
    assert good.met() is True
    assert CappedCheck(10, [row("1", 20), row("2", 30), row("3", 30), row("4", 11)]).met() is False
    assert CappedCheck(10, [row("1", 30), row("2", 30), row("3", 30), row("4", 3)]).met() is False
    assert CappedCheck(10).met() is None


def test_packet_ids_are_read_from_nfqueue_packet_messages() -> None:
    header = struct.pack(">IHB", 4242, 0x0800, 0) + b"\0"
    packet = message(NFQNL_MSG_PACKET, 7, attribute(NFQA_PACKET_HDR, header), 0, 0)
    other = attribute(NFQA_PACKET_HDR, struct.pack(">IHB", 7, 0, 0) + b"\0")
    two = packet + message(NFQNL_MSG_PACKET, 7, other, 0, 0)
    assert list(packet_ids(two)) == [4242, 7]


def test_a_refusal_from_the_kernel_raises_and_an_acknowledgement_does_not() -> None:
    def error_message(code: int) -> bytes:
        body = struct.pack("=i", code) + bytes(16)
        return NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), NLMSG_ERROR, 0, 1, 0) + body

    assert list(packet_ids(error_message(0))) == []
    with pytest.raises(OSError, match="refused"):
        list(packet_ids(error_message(-1)))


def test_a_verdict_accepts_the_packet_it_names() -> None:
    data = verdict(7, 4242)
    length, kind, _, _, _ = NLMSG_HEADER.unpack_from(data)
    assert length == len(data) and kind == (3 << 8) | 1
    assert struct.unpack_from(">H", data, NLMSG_HEADER.size + 2)[0] == 7  # queue, network order
    assert struct.unpack(">II", data[-8:]) == (1, 4242)  # NF_ACCEPT, the id
    assert socket.htons(7) != 7  # the queue number really is byte-swapped on this machine
