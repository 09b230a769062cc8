"""The latency benchmark's own checks: a percentile on too few packets is refused, and the
abs-send-time arithmetic survives its 64-second wraparound. (The benchmark itself runs in
``tests/project/test_benchmarks_smoke.py``; its figures are measured, never asserted.)"""

from __future__ import annotations

import pytest

from benchmarks.latency import MIN_PACKETS, Distribution, LatencyResult, SizeResult
from benchmarks.latency_paths import UNITS_PER_SECOND, WRAP, one_way_ms


def size_result(people: int, direct: int, relay: int, relay_keyframes: int = 0) -> SizeResult:
    """Distributions of the given packet counts, ``relay_keyframes`` of the relay's in keyframes."""
    return SizeResult(
        people,
        Distribution("direct", [0.2] * direct, 0, [False] * direct),
        Distribution(
            "relay",
            [1.0] * relay,
            0,
            [True] * relay_keyframes + [False] * (relay - relay_keyframes),
        ),
        [],
    )


def test_enough_packets_everywhere_passes() -> None:
    result = LatencyResult({3: size_result(3, MIN_PACKETS, MIN_PACKETS)}, MIN_PACKETS)
    assert result.too_small() == []


@pytest.mark.parametrize(
    ("direct", "relay", "keyframes", "short"),
    [
        (MIN_PACKETS - 1, MIN_PACKETS, 0, ["direct", "direct, delta frames only"]),
        (MIN_PACKETS, MIN_PACKETS + 5, 6, ["relay, delta frames only"]),
    ],
)
def test_a_distribution_with_too_few_packets_is_reported(
    direct: int, relay: int, keyframes: int, short: list[str]
) -> None:
    result = LatencyResult(
        {3: size_result(3, MIN_PACKETS, MIN_PACKETS), 8: size_result(8, direct, relay, keyframes)},
        MIN_PACKETS,
    )
    reported = result.too_small()
    assert [line.split(": ")[0] for line in reported] == [f"8 people, {name}" for name in short]
    assert result.headline.people == 8 and result.direct is result.sizes[8].direct


def test_one_way_delay_across_the_wraparound() -> None:
    sent = WRAP - UNITS_PER_SECOND // 1000  # 1 ms before the 24-bit clock wraps
    arrival_units = UNITS_PER_SECOND // 1000  # 1 ms after it
    ntp_now = arrival_units << 14
    assert one_way_ms(sent, ntp_now) == pytest.approx(2.0, abs=0.01)
    # Arrival stamped a hair "before" sending (clock rounding) is a small negative delay.
    assert one_way_ms(arrival_units + 1, ntp_now) < 0
