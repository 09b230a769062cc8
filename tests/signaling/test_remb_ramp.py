"""A publisher's bitrate through the relay follows what its subscribers' links take, when the
subscribers are browsers whose REMB cannot exceed 1.5 x what they receive (signaling/bandwidth.py).

The subscriber here is a model of Chromium's receive-side rate control (AimdRateControl): on
overuse its REMB falls to 0.85 x the incoming bitrate, otherwise it grows 8% a second but never
above 1.5 x the incoming bitrate + 10 kbit/s. The publisher sends what the relay's REMB asks,
with L1T3 layers (40% / 20% / 40% of its bitrate, as libvpx splits them), and the relay's own
plan (:func:`plan_stream`, :class:`Downlink`, :class:`UpstreamBitrate`, :class:`LayerRates`)
runs unchanged. Measured before the fix, on links where peer to peer reached 600-1100 kbit/s per
video: 52-102 kbit/s per video, subscribers stuck on layer 0."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiortc.rate import AimdRateControl, BandwidthUsage

from signaling.bandwidth import (
    AUDIO_SHARE_BPS,
    REMB_FLOOR_BPS,
    Downlink,
    StreamPlan,
    UpstreamBitrate,
    plan_stream,
)
from signaling.vp8_layers import ALL_LAYERS, LayerRates

LAYER_SPLIT = (0.4, 0.2, 0.4)
"""Share of an L1T3 stream's bits in layers 0, 1 and 2."""
AUDIO_BPS = 35_000
ENCODER_MAX_BPS = 1_200_000
OWN_ESTIMATE_BPS = 2_500_000
"""The relay's own estimate of the publisher's uplink: ample, so only subscribers limit."""

Planner = Callable[[float | None, float | None, LayerRates, int], StreamPlan | None]


def remb_as_limit(
    remb_share: float | None, loss_limit: float | None, rates: LayerRates, current: int
) -> StreamPlan | None:
    """The relay before the fix: each subscriber's REMB share is its limit, as it stands."""
    limits = [b for b in (remb_share, loss_limit) if b is not None]
    if not limits:
        return None
    return StreamPlan(rates.highest_within(min(limits)), min(limits))


class ChromiumReceiver:
    """What a Chromium subscriber's REMB does, one report a second: aiortc's AimdRateControl,
    a port of Chromium's, fed the incoming bitrate; an overuse when it exceeds the link (and
    one at the start, as a keyframe burst gives), after which it grows additively, near what
    it last saw as the maximum."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.control = AimdRateControl()
        self.now_ms = 0

    def report(self, incoming: float) -> float:
        self.now_ms += 1000
        overuse = incoming > self.capacity or self.now_ms == 1000
        usage = BandwidthUsage.OVERUSING if overuse else BandwidthUsage.NORMAL
        estimate = self.control.update(usage, int(min(incoming, self.capacity)), self.now_ms)
        return float(estimate if estimate is not None else incoming)


@dataclass
class Subscriber:
    """One subscriber's m-line for the publisher's video, as an Outbound sees it."""

    receiver: ChromiumReceiver
    layers: int = 0
    """Layers forwarded to it; it starts on layer 0 (an early overuse put it there)."""
    share: float | None = None

    kind = "video"
    receiving = True

    def set_downlink_share(self, bitrate: float) -> None:
        self.share = bitrate


def receives(rates: LayerRates, layers: int) -> float:
    return rates.cumulative(layers)


def run_call(
    planner: Planner, capacities: list[float], seconds: int = 40
) -> tuple[float, list[int]]:
    """Publisher bitrate and each subscriber's layers after ``seconds`` of the loop."""
    now = [0.0]
    rates = LayerRates(clock=lambda: now[0])
    upstream = UpstreamBitrate(clock=lambda: now[0])
    subscribers = [Subscriber(ChromiumReceiver(capacity)) for capacity in capacities]
    downlinks = []
    for subscriber in subscribers:
        downlink = Downlink()
        downlink.streams.append(subscriber)
        downlinks.append(downlink)
    publisher = 300_000.0
    for _ in range(seconds):
        # One second of the publisher's stream, measured per layer by the relay.
        for tid in (1, 2):
            rates.add(tid, int(publisher * LAYER_SPLIT[tid] / 8))
        now[0] += 1.0
        rates.add(0, int(publisher * LAYER_SPLIT[0] / 8))
        for subscriber, downlink in zip(subscribers, downlinks, strict=True):
            incoming = receives(rates, subscriber.layers) + AUDIO_BPS
            # One video and one audio stream: the audio share comes off first.
            downlink.on_remb(
                int(subscriber.receiver.report(incoming) + AUDIO_SHARE_BPS - AUDIO_BPS)
            )
            plan = planner(subscriber.share, None, rates, subscriber.layers)
            assert plan is not None
            subscriber.layers = plan.layers
            upstream.report(subscriber, plan.upstream)
        publisher = min(float(upstream.cap(OWN_ESTIMATE_BPS)), ENCODER_MAX_BPS)
    return publisher, [subscriber.layers for subscriber in subscribers]


def test_subscribers_on_ample_links_climb_back_to_every_layer_and_the_publisher_ramps_up() -> None:
    publisher, layers = run_call(plan_stream, [5_000_000, 5_000_000])
    assert layers == [ALL_LAYERS, ALL_LAYERS]
    assert publisher >= 0.9 * ENCODER_MAX_BPS


def test_a_capped_subscriber_gets_fewer_layers_and_the_publisher_keeps_the_floor() -> None:
    publisher, layers = run_call(plan_stream, [5_000_000, 200_000])
    assert layers[0] == ALL_LAYERS
    assert layers[1] < ALL_LAYERS  # fewer frames on the capped link, not its loss
    assert publisher >= REMB_FLOOR_BPS


def measured_rates() -> LayerRates:
    """Layer bitrates of a Chromium L1T3 publisher held at the floor, as the relay measured
    them on the 2% loss link: 49, 27 and 55 kbit/s."""
    now = [0.0]
    rates = LayerRates(clock=lambda: now[0])
    for tid, kbps in ((1, 27), (2, 55)):
        rates.add(tid, kbps * 1000 // 8)
    now[0] = 1.0
    rates.add(0, 49 * 1000 // 8)
    return rates


def test_a_remb_above_what_arrives_buys_the_next_layer_and_holds_nobody_back() -> None:
    """The state measured through meetnow on the 2% loss link (Chromium guests): a subscriber
    on layers 0-1 (76 kbit/s) whose share of its REMB was 109 kbit/s, unchanged for 20 s, as
    its REMB cannot grow past what it receives. It is not congested: it steps up, and does not
    hold the publisher under the full stream."""
    rates = measured_rates()
    plan = plan_stream(109_000, None, rates, current=1)
    assert plan is not None
    assert plan.layers == ALL_LAYERS
    assert plan.upstream >= rates.cumulative(ALL_LAYERS)


def test_a_remb_below_what_arrives_is_the_limit() -> None:
    """A subscriber whose REMB fell under what it receives (an overuse) gets fewer layers and
    asks the publisher for no more than its REMB."""
    rates = measured_rates()
    plan = plan_stream(60_000, None, rates, current=1)
    assert plan is not None
    assert plan.layers == 0
    assert plan.upstream == 60_000


def test_the_measured_state_stays_stuck_when_the_remb_is_read_as_the_limit() -> None:
    """The test of the test: the relay's plan before the fix, in the measured state, keeps the
    subscriber on layers 0-1 and asks the publisher for 109 kbit/s (under the floor), which the
    check above rejects."""
    plan = remb_as_limit(109_000, None, measured_rates(), 1)
    assert plan is not None
    assert plan.layers == 1
    assert plan.upstream < REMB_FLOOR_BPS
