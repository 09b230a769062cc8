"""Contract test of the routing hook (signaling/aiortc_hooks/routing.py) on aiortc's own router:
a stream the router was not told about is never taken for another receiver's."""

from __future__ import annotations

import aiortc.rtcdtlstransport as dtls
from aiortc.rtp import RtpPacket

from signaling.aiortc_hooks.routing import SignalledRtpRouter, keep_streams_apart

VP8 = 97
CAMERA_SSRC = 1111
SCREEN_SSRC = 2222


def packet(ssrc: int) -> RtpPacket:
    return RtpPacket(payload_type=VP8, ssrc=ssrc, sequence_number=1, timestamp=1)


def camera_only(router: dtls.RtpRouter) -> object:
    """A publisher's camera receiver, fed by its stream, before the screen's is registered."""
    camera = object()
    router.register_receiver(camera, ssrcs=[CAMERA_SSRC], payload_types=[VP8])  # type: ignore[arg-type]
    return camera


def test_aiortc_alone_takes_a_new_share_for_the_camera() -> None:
    """The test of the test: the plain router misroutes, so the check below can fail."""
    aiortc_router: type[dtls.RtpRouter] = SignalledRtpRouter.__mro__[1]  # aiortc's, if installed
    assert aiortc_router.__module__ == "aiortc.rtcdtlstransport"
    router = aiortc_router()
    camera = camera_only(router)
    assert router.route_rtp(packet(SCREEN_SSRC)) is camera


def test_a_new_stream_waits_for_its_own_receiver() -> None:
    router = SignalledRtpRouter()
    camera = camera_only(router)
    assert router.route_rtp(packet(CAMERA_SSRC)) is camera
    assert router.route_rtp(packet(SCREEN_SSRC)) is None  # dropped, not given to the camera
    screen = object()
    router.register_receiver(screen, ssrcs=[SCREEN_SSRC], payload_types=[VP8])  # type: ignore[arg-type]
    assert router.route_rtp(packet(SCREEN_SSRC)) is screen
    assert router.route_rtp(packet(CAMERA_SSRC)) is camera


def test_a_receiver_without_a_signalled_ssrc_still_learns_its_stream() -> None:
    """An answer without ``a=ssrc`` lines: the payload type finds the one receiver, once."""
    router = SignalledRtpRouter()
    only = object()
    router.register_receiver(only, ssrcs=[], payload_types=[VP8])  # type: ignore[arg-type]
    assert router.route_rtp(packet(CAMERA_SSRC)) is only
    assert router.route_rtp(packet(CAMERA_SSRC)) is only
    assert router.route_rtp(packet(SCREEN_SSRC)) is None


def test_peer_connections_are_made_with_the_guarded_router() -> None:
    keep_streams_apart()
    assert dtls.RtpRouter is SignalledRtpRouter
    keep_streams_apart()  # idempotent
    assert dtls.RtpRouter is SignalledRtpRouter
