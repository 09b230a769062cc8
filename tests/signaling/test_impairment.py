"""The load generator's network impairment: loss, delay with jitter, rate cap, and the hooks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aioice.ice import StunProtocol
from aiortc import RTCRtpSender

from meetnow.cli import main as cli_main
from signaling.impairment import BUCKET_BYTES, Impairment


def test_loss_rate_is_what_was_asked_and_repeats_with_the_seed() -> None:
    def dropped(seed: int) -> list[int]:
        link = Impairment(loss_percent=5, seed=seed).link(0)
        arrived: list[int] = []
        for index in range(20_000):
            link.send(
                index.to_bytes(4, "big"), None, lambda d, _a: arrived.append(int.from_bytes(d))
            )
        assert link.lost == 20_000 - len(arrived)
        return sorted(set(range(20_000)) - set(arrived))

    first = dropped(3)
    assert 0.043 < len(first) / 20_000 < 0.057
    assert dropped(3) == first  # same seed, same drops
    assert dropped(4) != first


def test_no_loss_delivers_everything() -> None:
    link = Impairment(loss_percent=0, rate_kbps=None).link(0)
    arrived: list[bytes] = []
    for _ in range(1000):
        link.send(b"x", None, lambda d, _a: arrived.append(d))
    assert len(arrived) == 1000 and link.lost == 0


async def _send_all(impairment: Impairment, count: int) -> tuple[list[int], list[float]]:
    """Send ``count`` numbered datagrams at once; their arrival order and delays (seconds)."""
    link = impairment.link(1)
    order: list[int] = []
    delays: list[float] = []
    done = asyncio.Event()
    started = time.monotonic()

    def deliver(data: bytes, _addr: Any) -> None:
        order.append(int.from_bytes(data))
        delays.append(time.monotonic() - started)
        if len(order) == count:
            done.set()

    for index in range(count):
        link.send(index.to_bytes(4, "big"), None, deliver)
    await asyncio.wait_for(done.wait(), 2.0)
    return order, delays


async def test_jitter_reorders_and_delays_within_its_bounds() -> None:
    order, delays = await _send_all(Impairment(delay_ms=30, jitter_ms=15, seed=2), 100)
    assert order != sorted(order)  # uniform jitter reorders, as netem does
    assert min(delays) >= 0.014 and max(delays) < 0.045 + 0.1  # 0.1: a busy machine's lateness


async def test_a_fixed_delay_keeps_the_order() -> None:
    """The test of the reorder check: without jitter, the same check sees no reordering."""
    order, delays = await _send_all(Impairment(delay_ms=30, seed=2), 100)
    assert order == sorted(order)
    assert min(delays) >= 0.029


async def test_rate_cap_passes_the_bucket_queues_a_little_and_drops_the_rest() -> None:
    # 80 kbit/s = 10,000 bytes/s: the queue holds 150 ms of it, 1,500 bytes.
    link = Impairment(rate_kbps=80).link(0)
    arrived: list[tuple[int, float]] = []
    one_more = asyncio.Event()
    started = time.monotonic()
    burst = BUCKET_BYTES // 1000

    def deliver(data: bytes, _addr: Any) -> None:
        arrived.append((int.from_bytes(data[:4]), time.monotonic() - started))
        if len(arrived) > burst:
            one_more.set()

    for index in range(burst + 4):
        link.send(index.to_bytes(4, "big") + bytes(996), None, deliver)
    assert [i for i, _ in arrived] == list(range(burst))  # the bucket's worth, at once
    assert link.overflowed == 3  # one queued, three beyond the queue
    await asyncio.wait_for(one_more.wait(), 1.0)
    index, at = arrived[-1]
    assert index == burst and at >= 0.09  # 1,000 bytes at 10,000 bytes/s
    assert len(arrived) == burst + 1


@pytest.mark.parametrize(
    "bad",
    [
        {"loss_percent": 101},
        {"delay_ms": 10, "jitter_ms": 11},
        {"rate_kbps": 0},
        {"rate_kbps": 300, "rate_direction": "sideways"},
    ],
)
def test_impossible_networks_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Impairment(**bad)


def test_the_rate_cap_applies_to_the_directions_asked_for() -> None:
    """(inbound, outbound) capped; the default stays both, as ``--rate`` always meant."""
    caps = {
        direction: (
            Impairment(rate_kbps=300, rate_direction=direction).caps(inbound=True),
            Impairment(rate_kbps=300, rate_direction=direction).caps(inbound=False),
        )
        for direction in ("both", "down", "up")
    }
    assert caps == {"both": (True, True), "down": (True, False), "up": (False, True)}
    assert Impairment(rate_kbps=300).rate_direction == "both"
    assert not Impairment().caps(inbound=True)  # no rate, no cap
    assert Impairment(rate_kbps=300).link(0, capped=False).rate_kbps is None


def test_cli_refuses_jitter_beyond_the_delay(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["loadtest", "http://127.0.0.1:9/r/x", "-n", "1", "--delay", "5", "--jitter", "9"]
    assert cli_main(argv) == 2
    assert "jitter" in capsys.readouterr().err


def test_aiortc_internals_the_impairment_and_observers_use_exist() -> None:
    """Contract: filter_datagrams wraps these aioice methods, observe_nacks this aiortc one."""
    for name in ("datagram_received", "send_data", "send_stun"):
        assert callable(getattr(StunProtocol, name, None)), name
    assert asyncio.iscoroutinefunction(StunProtocol.send_data)
    assert asyncio.iscoroutinefunction(RTCRtpSender._retransmit)


async def test_a_closed_link_delivers_nothing_more() -> None:
    # What is queued or on its way when the connection closes is lost with it: delivering it
    # later would write to a closed transport (it raised AttributeError in every impaired run).
    delivered: dict[str, list[bytes]] = {"open": [], "closed": []}
    links = {name: Impairment(delay_ms=60, rate_kbps=200).link(0) for name in delivered}
    for name, link in links.items():

        def deliver(data: bytes, _addr: Any, name: str = name) -> None:
            delivered[name].append(data)

        for index in range(30):  # 30 KB: past the bucket, so some wait in the rate queue too
            link.send(bytes([index]) * 1000, ("127.0.0.1", 9), deliver)
    links["closed"].close()
    links["closed"].send(b"late", ("127.0.0.1", 9), deliver)
    await asyncio.sleep(0.5)
    assert delivered["closed"] == []
    assert delivered["open"], "the open link delivered nothing: the check above proves nothing"
