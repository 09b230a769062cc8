"""Contract tests for every aiortc internal the relay uses (the signaling/aiortc_hooks package).

An aiortc upgrade that renames or changes one of them fails here, with the name of the hook, rather
than as a silent call with no media.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioice.ice
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from signaling import aiortc_hooks
from signaling.client import PatternVideoTrack
from signaling.relay import _codec_preferences

from ..signaling.test_relay import wait_until


@pytest.fixture(autouse=True)
def loopback_candidates() -> Iterator[None]:
    aiortc_hooks.set_host_addresses(["127.0.0.1"])
    yield
    aiortc_hooks.set_host_addresses([])


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RTCPeerConnection, RTCPeerConnection]]:
    a, b = RTCPeerConnection(), RTCPeerConnection()
    yield a, b
    await a.close()
    await b.close()


def test_private_names_exist_on_this_aiortc() -> None:
    for name in (
        "_handle_rtp_packet",
        "receive",
        "_send_rtcp_pli",
        "_RTCRtpReceiver__stop_decoder",
    ):
        assert hasattr(RTCRtpReceiver, name), f"RTCRtpReceiver.{name} is gone"
    for name in ("_send_keyframe", "_retransmit"):
        assert hasattr(RTCRtpSender, name), f"RTCRtpSender.{name} is gone"
    assert isinstance(aiortc_hooks.HISTORY_SIZE, int) and aiortc_hooks.HISTORY_SIZE >= 128
    assert callable(aioice.ice.get_host_addresses)


async def test_sender_private_state_is_where_the_hooks_expect_it(
    pair: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    sender = pair[0].addTransceiver("video", direction="sendonly").sender
    for name in (
        "rtp_history",
        "started",
        "mid",
        "rtp_header_extensions_map",
        "ntp_timestamp",
        "rtp_timestamp",
        "octet_count",
        "packet_count",
        "encoder",
    ):
        assert hasattr(sender, f"_RTCRtpSender__{name}"), f"RTCRtpSender.__{name} is gone"
    # The SSRC aiortc chose (an instance attribute, set in __init__): SenderState sends as it.
    assert isinstance(getattr(sender, "_ssrc", None), int), "RTCRtpSender._ssrc is gone"
    receiver = pair[1].addTransceiver("video", direction="recvonly").receiver
    for name in (
        "decoder_thread",
        "remote_bitrate_estimator",
        "rtcp_ssrc",
        "codecs",
        "remote_streams",
        "nack_generator",
    ):
        assert hasattr(receiver, f"_RTCRtpReceiver__{name}"), f"RTCRtpReceiver.__{name} is gone"
    assert hasattr(receiver, "_enabled")
    assert hasattr(receiver, "_send_rtcp") and hasattr(receiver, "_send_rtcp_nack")


def test_transport_internals_used_by_the_send_path_exist() -> None:
    import aioice.ice
    import pylibsrtp
    from aiortc.rtcdtlstransport import RTCDtlsTransport, State
    from pylibsrtp._binding import lib as srtp_lib  # what signaling.aiortc_hooks calls

    assert hasattr(State, "CONNECTED")
    assert callable(srtp_lib.srtp_protect)
    assert "_srtp" in pylibsrtp.Session.__init__.__code__.co_names
    assert callable(aioice.ice.StunProtocol.datagram_received)
    assert "_tx_srtp" in RTCDtlsTransport.__init__.__code__.co_names
    assert "_state" in RTCDtlsTransport.__init__.__code__.co_names
    init_names = aioice.ice.Connection.__init__.__code__.co_names
    assert "_nominated" in init_names and "_protocols" in init_names


def test_set_host_addresses_replaces_and_restores_aioice_gathering() -> None:
    aiortc_hooks.set_host_addresses(["127.0.0.1", "::1"])
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "::1"]
    aiortc_hooks.set_host_addresses([])
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


async def test_idle_track_waits_until_stopped() -> None:
    track = aiortc_hooks.IdleTrack("video")
    # Run recv() up to where it waits: what it waits on is what the event loop would wait on.
    receiving = track.recv()
    waited_on = receiving.send(None)
    assert isinstance(waited_on, asyncio.Future) and not waited_on.done()
    # It waits for the track's end and nothing else (no timer, no polling): stopping the track
    # resolves exactly that future, and recv() then ends as aiortc expects of a stopped track.
    track.stop()
    assert waited_on.done()
    with pytest.raises(MediaStreamError):
        receiving.send(None)


async def test_tapped_receiver_sees_packets_and_never_decodes(
    pair: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    publisher, relay = pair
    publisher.addTrack(PatternVideoTrack())
    await publisher.setLocalDescription(await publisher.createOffer())
    await relay.setRemoteDescription(publisher.localDescription)
    receiver = relay.getTransceivers()[0].receiver
    seen: list[RtpPacket] = []

    async def on_packet(packet: RtpPacket) -> None:
        seen.append(packet)

    aiortc_hooks.tap_receiver(receiver, on_packet)
    await relay.setLocalDescription(await relay.createAnswer())
    await publisher.setRemoteDescription(relay.localDescription)
    await wait_until(lambda: len(seen) > 20, 10, "tapped packets")
    assert not aiortc_hooks.decoder_running(receiver)
    # aiortc's receive statistics still see every packet: its receiver reports stay right.
    stats = await receiver.getStats()
    inbound = [s for s in stats.values() if s.type == "inbound-rtp"]
    assert inbound and inbound[0].packetsReceived >= 20
    assert all(packet.payload_type == seen[0].payload_type for packet in seen)
    # The PLI path to the publisher works through the hook.
    await aiortc_hooks.request_keyframe(receiver, seen[-1].ssrc)


async def test_forwarding_sender_sends_answers_nacks_and_routes_plis(
    pair: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    relay, subscriber = pair
    keyframe_requests: list[int] = []
    transceiver = relay.addTransceiver("video", direction="sendonly")
    # As the relay negotiates: VP8 only, no RTX, so retransmissions reuse the original SSRC.
    transceiver.setCodecPreferences(_codec_preferences("video"))
    state = aiortc_hooks.attach_forwarding_sender(
        transceiver.sender, "video", lambda: keyframe_requests.append(1)
    )
    await connect(relay, subscriber)
    received: list[RtpPacket] = []

    async def on_packet(packet: RtpPacket) -> None:
        received.append(packet)

    sub_receiver = subscriber.getTransceivers()[0].receiver
    aiortc_hooks.tap_receiver(sub_receiver, on_packet)
    await wait_until(state.ready, 10, "sender ready")
    assert state.mid == transceiver.mid
    match = re.search(r"a=rtpmap:(\d+) VP8/90000", relay.localDescription.sdp)
    assert match is not None
    payload_type = int(match.group(1))
    for seq in range(1000, 1005):
        packet = RtpPacket(
            payload_type=payload_type,
            sequence_number=seq,
            timestamp=seq * 3000,
            ssrc=state.ssrc,
            payload=b"\x10\x00" + bytes(50),
        )
        data = packet.serialize(state.extensions_map())
        if seq == 1002:
            state.remember(data, seq, packet.timestamp)  # "lost" on the way: kept, not delivered
        else:
            state.send(data, seq, packet.timestamp, len(packet.payload))
    await wait_until(lambda: len(received) >= 4, 5, "forwarded packets")
    assert [p.sequence_number for p in received[:4]] == [1000, 1001, 1003, 1004]
    assert received[0].ssrc == state.ssrc
    # The subscriber NACKs the gap by itself; aiortc answers from the history the hook fills.
    await wait_until(lambda: len(received) >= 5, 5, "retransmission")
    assert received[4].sequence_number == 1002
    # Sender reports carry what was sent: flush the counters and read them back from aiortc.
    state.flush_report()
    sender: Any = transceiver.sender  # aiortc's private counters
    assert sender._RTCRtpSender__packet_count == 4
    assert sender._RTCRtpSender__rtp_timestamp == 1004 * 3000
    # A PLI from the subscriber reaches our callback instead of a non-existent encoder.
    await sub_receiver._send_rtcp_pli(state.ssrc)
    await wait_until(lambda: keyframe_requests != [], 5, "keyframe request")
    assert sender._RTCRtpSender__encoder is None


async def test_feedback_for_datagrams_counted_encrypted_reaches_the_sender(
    pair: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    """The load generator's receive path (``count_rtp_datagrams`` + ``ReceiverFeedback``):
    packets counted still encrypted, and yet the RTCP a browser sends reaches the sender:
    receiver reports from aiortc's own loop, a NACK for a gap (answered), a PLI and a REMB."""

    from aiortc.rtp import (
        RTCP_PSFB_APP,
        RTCP_PSFB_PLI,
        RtcpPsfbPacket,
        RtcpRrPacket,
        RtcpRtpfbPacket,
        unpack_remb_fci,
    )

    relay, subscriber = pair
    keyframe_requests: list[int] = []
    transceiver = relay.addTransceiver("video", direction="sendonly")
    transceiver.setCodecPreferences(_codec_preferences("video"))
    state = aiortc_hooks.attach_forwarding_sender(
        transceiver.sender, "video", lambda: keyframe_requests.append(1)
    )
    rtcp: list[Any] = []
    sender: Any = transceiver.sender
    handle = sender._handle_rtcp_packet

    async def record(packet: Any) -> None:  # what aiortc routes to the sender, then as usual
        rtcp.append(packet)
        await handle(packet)

    sender._handle_rtcp_packet = record
    await connect(relay, subscriber)
    feedback = aiortc_hooks.ReceiverFeedback(subscriber.getTransceivers()[0].receiver, "video")
    counted: list[int] = []

    def on_rtp(data: bytes) -> None:
        sequence_number = int.from_bytes(data[2:4], "big")
        counted.append(sequence_number)
        ssrc, timestamp = int.from_bytes(data[8:12], "big"), int.from_bytes(data[4:8], "big")
        feedback.add(ssrc, data[1] & 0x7F, sequence_number, timestamp)

    aiortc_hooks.count_rtp_datagrams(subscriber, on_rtp)
    await wait_until(state.ready, 10, "sender ready")
    match = re.search(r"a=rtpmap:(\d+) VP8/90000", relay.localDescription.sdp)
    assert match is not None

    def packet(seq: int) -> bytes:
        header = RtpPacket(
            payload_type=int(match.group(1)),
            sequence_number=seq,
            timestamp=seq * 3000,
            ssrc=state.ssrc,
            payload=b"\x10\x00" + bytes(50),
        )
        return header.serialize(state.extensions_map())

    # Until the subscriber's receiver has started (codecs known), packets are not accounted.
    seq = 1000
    while state.ssrc not in feedback.ssrcs:
        assert seq < 1250, "the feedback never accounted a packet"
        state.send(packet(seq), seq, seq * 3000, 52)
        seq += 1
        await asyncio.sleep(0.02)
    lost = seq
    state.remember(packet(lost), lost, lost * 3000)  # "lost" on the way: kept, not delivered
    state.send(packet(lost + 1), lost + 1, (lost + 1) * 3000, 52)
    await wait_until(lambda: lost in counted, 5, "the NACKed packet, retransmitted")
    assert any(isinstance(p, RtcpRtpfbPacket) and lost in p.lost for p in rtcp)
    feedback.request_keyframe(state.ssrc)
    await wait_until(lambda: keyframe_requests != [], 5, "PLI")
    assert any(isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_PLI for p in rtcp)
    feedback.send_remb(750_000, [state.ssrc])

    def remb_arrived() -> bool:
        return any(
            isinstance(p, RtcpPsfbPacket)
            and p.fmt == RTCP_PSFB_APP
            and unpack_remb_fci(p.fci) == (750_000, [state.ssrc])
            for p in rtcp
        )

    await wait_until(remb_arrived, 5, "REMB")

    def reported() -> bool:  # aiortc's RTCP loop reports what the feedback accounted
        return any(
            report.ssrc == state.ssrc and report.highest_sequence >= lost + 1
            for p in rtcp
            if isinstance(p, RtcpRrPacket)
            for report in p.reports
        )

    await wait_until(reported, 5, "a receiver report about the counted packets")


# ------------------------------------------------------------------ ICE port range (ice_ports_in)


def _free_loopback_range(size: int) -> tuple[int, int]:
    """``size`` free UDP ports on loopback, below the OS's ephemeral range."""
    import contextlib
    import secrets
    import socket

    for _ in range(50):
        first = 20000 + secrets.randbelow(10000)
        with contextlib.ExitStack() as stack:
            try:
                for port in range(first, first + size):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return first, first + size - 1
    raise AssertionError("no free port range found")


def _host_ports(connection: aioice.ice.Connection) -> list[int]:
    return [c.port for c in connection.local_candidates if c.type == "host"]


async def test_aioice_binds_host_sockets_in_the_range_and_still_connects() -> None:
    """aioice binds each host candidate through its module's ``asyncio.get_running_loop()``
    (``create_datagram_endpoint(..., local_addr=(address, 0))``): inside ``ice_ports_in`` every
    socket lies in the range, and the two agents still connect and exchange data."""
    first, last = _free_loopback_range(2)
    a = aioice.ice.Connection(ice_controlling=True)
    b = aioice.ice.Connection(ice_controlling=False)
    try:
        with aiortc_hooks.ice_ports_in((first, last)) as binding:
            await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        assert not binding.exhausted
        ports = _host_ports(a) + _host_ports(b)
        assert sorted(ports) == [first, last], ports
        for port, sock_port in zip(
            ports,
            [p.transport.get_extra_info("sockname")[1] for c in (a, b) for p in c._protocols],
            strict=True,
        ):
            assert port == sock_port
        for x, y in ((a, b), (b, a)):
            for candidate in x.local_candidates:
                await y.add_remote_candidate(candidate)
            await y.add_remote_candidate(None)
            y.remote_username, y.remote_password = x.local_username, x.local_password
        await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 10)
        await a.send(b"through the range")
        assert await asyncio.wait_for(b.recv(), 5) == b"through the range"
    finally:
        await a.close()
        await b.close()


async def test_a_full_range_is_reported_and_outside_the_context_the_os_picks() -> None:
    import socket

    first, last = _free_loopback_range(1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", first))
        full = aioice.ice.Connection(ice_controlling=True)
        with aiortc_hooks.ice_ports_in((first, last)) as binding:
            await full.gather_candidates()
        # Read before close(): aioice forgets its candidates when the connection closes.
        exhausted_ports = _host_ports(full)
        await full.close()
    assert binding.exhausted
    assert exhausted_ports == []
    # Outside the context (and with None), aioice binds where the OS says: not in the range.
    for ports in (None, "outside"):
        free = aioice.ice.Connection(ice_controlling=True)
        if ports is None:
            with aiortc_hooks.ice_ports_in(None) as unset:
                await free.gather_candidates()
            assert not unset.exhausted
        else:
            await free.gather_candidates()
        gathered = _host_ports(free)
        await free.close()
        assert gathered, "no host candidate gathered"
        assert not any(first <= port <= last for port in gathered), gathered


async def test_upstream_remb_is_capped_and_sender_feedback_is_observed(
    pair: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    """``UpstreamRemb`` rewrites the REMB a receiver sends (whoever builds it) and
    ``observe_sender_feedback`` shows the sender's side the REMB that lists its SSRC."""
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

    assert hasattr(RTCRtpSender, "_handle_rtcp_packet"), "RTCRtpSender._handle_rtcp_packet is gone"
    publisher, relay = pair
    publisher.addTrack(PatternVideoTrack())
    await connect(publisher, relay)
    sender = publisher.getTransceivers()[0].sender
    receiver = relay.getTransceivers()[0].receiver
    seen: list[int] = []
    aiortc_hooks.observe_sender_feedback(sender, seen.append, lambda _lost, _highest: None)
    remb = aiortc_hooks.UpstreamRemb(receiver, lambda own: own // 2)
    internals: Any = receiver
    await wait_until(lambda: internals._RTCRtpReceiver__rtcp_ssrc is not None, 10, "rtcp ssrc")
    ssrc: int = getattr(sender, "_ssrc")  # noqa: B009 - private aiortc state
    await wait_until(lambda: sender.transport.state == "connected", 10, "DTLS")
    packet = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP,
        ssrc=internals._RTCRtpReceiver__rtcp_ssrc,
        media_ssrc=0,
        fci=pack_remb_fci(800_000, [ssrc]),
    )
    await internals._send_rtcp(packet)  # what aiortc's estimator path calls
    await wait_until(lambda: 400_000 in seen, 5, "the capped REMB")
    # aiortc's own estimate may have gone out meanwhile: always halved, as the cap says.
    assert remb.own_estimate is not None and remb.sent == remb.own_estimate // 2
    remb.resend()
    await wait_until(lambda: seen.count(400_000) >= 2, 5, "the resent REMB")
