"""The ICE candidate policy on its own: which candidates the relay may send to, the per-session
cap, and an answer screened the way aiortc will read it (aiortc's own SDP parser is the judge).

Through the real server and real peers: tests/security/test_hardening_ice.py.
"""

from __future__ import annotations

import ipaddress

import pytest
from aiortc.sdp import SessionDescription, candidate_from_sdp
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from signaling.errors import TooManyCandidates
from signaling.ice_policy import (
    DEFAULT_DENY_NETWORKS,
    CandidatePolicy,
    CandidateScreen,
    ParsedCandidate,
    Refusal,
    interface_addresses,
    parse_candidate,
    parse_networks,
    policy_from_settings,
)

from ..conftest import test_settings

ANSWER_HEAD = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "a=msid-semantic:WMS *\r\n"
)
FINGERPRINT = "a=fingerprint:sha-256 " + ":".join(["AB"] * 32)


def media_section(kind: str, mid: int, candidates: list[str]) -> str:
    """One m-line of an answer as aiortc writes it, with these ``a=candidate`` values."""
    codec = "96 opus/48000/2" if kind == "audio" else "97 VP8/90000"
    lines = [
        f"m={kind} 9 UDP/TLS/RTP/SAVPF {codec.split()[0]}",
        "c=IN IP4 0.0.0.0",
        "a=recvonly",
        f"a=mid:{mid}",
        "a=rtcp-mux",
        f"a=rtpmap:{codec}",
        *(f"a=candidate:{c}" for c in candidates),
        "a=end-of-candidates",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuv",
        FINGERPRINT,
        "a=setup:active",
    ]
    return "".join(line + "\r\n" for line in lines)


def answer(candidates: list[str], video_candidates: list[str] | None = None) -> str:
    """An answer with an audio and a video m-line; the video one repeats the audio one's
    candidates unless told otherwise (aiortc repeats them on every bundled m-line)."""
    video = candidates if video_candidates is None else video_candidates
    return ANSWER_HEAD + media_section("audio", 0, candidates) + media_section("video", 1, video)


def host(address: str, port: int = 40000, transport: str = "udp", priority: int = 100) -> str:
    """An ``a=candidate`` value."""
    return f"f{port} 1 {transport} {priority} {address} {port} typ host"


def aiortc_candidates(sdp: str) -> set[tuple[str, int]]:
    """(address, port) of every candidate aiortc reads from an SDP: what the relay would check."""
    parsed = SessionDescription.parse(sdp)
    return {(c.ip, c.port) for media in parsed.media for c in media.ice_candidates}


def refusal(
    address: str, policy: CandidatePolicy | None = None, port: int = 40000
) -> Refusal | None:
    return (policy or CandidatePolicy()).refusal(ParsedCandidate("udp", address, port))


# ------------------------------------------------------------------------ where it may send


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("169.254.169.254", Refusal.DENIED),  # cloud metadata
        ("169.254.0.1", Refusal.DENIED),
        ("224.0.0.1", Refusal.DENIED),  # multicast
        ("239.255.255.250", Refusal.DENIED),  # SSDP
        ("255.255.255.255", Refusal.DENIED),  # broadcast
        ("240.0.0.1", Refusal.DENIED),  # reserved
        ("0.0.0.0", Refusal.UNSPECIFIED),
        ("0.1.2.3", Refusal.DENIED),
        ("127.0.0.1", Refusal.LOOPBACK),
        ("127.8.9.10", Refusal.LOOPBACK),
        ("::1", Refusal.LOOPBACK),
        ("::", Refusal.UNSPECIFIED),
        ("fe80::1", Refusal.DENIED),  # link-local
        ("fe80::1%eth0", Refusal.DENIED),
        ("FE80::ABCD", Refusal.DENIED),
        ("ff02::1", Refusal.DENIED),  # multicast
        ("fec0::1", Refusal.DENIED),
        ("64:ff9b::a9fe:a9fe", Refusal.DENIED),  # NAT64 of 169.254.169.254
        ("::ffff:169.254.169.254", Refusal.DENIED),  # IPv4-mapped: judged as IPv4
        ("::ffff:127.0.0.1", Refusal.LOOPBACK),
        ("::ffff:0.0.0.0", Refusal.UNSPECIFIED),
        ("1f3b2c9a-7d1e-4c55-9a0e-2f6a.local", Refusal.MDNS),
        ("HOST.LOCAL", Refusal.MDNS),
        ("metadata.google.internal", Refusal.HOSTNAME),
        ("127.1", Refusal.HOSTNAME),  # not an address to Python, nor to aioice
        ("0x7f000001", Refusal.HOSTNAME),
    ],
)
def test_the_default_policy_refuses_what_the_relay_must_never_probe(
    address: str, why: Refusal
) -> None:
    assert refusal(address) == why


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "192.0.2.2", "8.8.8.8",
     "fd00::2", "2001:db8::1", "2a00:1450:4007:80e::200e", "::ffff:10.0.0.1"],
)  # fmt: skip
def test_private_public_and_global_ipv6_addresses_are_allowed_by_default(address: str) -> None:
    assert refusal(address) is None


@pytest.mark.parametrize(
    ("candidate", "why"),
    [
        (ParsedCandidate("tcp", "10.0.0.1", 9), Refusal.TRANSPORT),
        (ParsedCandidate("TCP", "10.0.0.1", 443), Refusal.TRANSPORT),
        (ParsedCandidate("udp", "10.0.0.1", 0), Refusal.PORT),
        (ParsedCandidate("udp", "10.0.0.1", 65536), Refusal.PORT),
        (ParsedCandidate("udp", "10.0.0.1", -5), Refusal.PORT),
        (ParsedCandidate("UDP", "10.0.0.1", 65535), None),
    ],
)
def test_only_udp_to_a_real_port(candidate: ParsedCandidate, why: Refusal | None) -> None:
    assert CandidatePolicy().refusal(candidate) == why


def test_loopback_and_the_hosts_own_addresses_follow_the_loopback_rule() -> None:
    own = frozenset({ipaddress.ip_address("192.0.2.2"), ipaddress.ip_address("fd00::2")})
    closed = CandidatePolicy(own_addresses=own)
    assert refusal("192.0.2.2", closed) == Refusal.LOOPBACK
    assert refusal("::ffff:192.0.2.2", closed) == Refusal.LOOPBACK
    assert refusal("fd00::2", closed) == Refusal.LOOPBACK
    assert refusal("192.0.2.3", closed) is None
    opened = CandidatePolicy(own_addresses=own, loopback_peers=True)
    for address in ("127.0.0.1", "::1", "192.0.2.2", "fd00::2"):
        assert refusal(address, opened) is None, address


def test_the_lists_never_open_unspecified_and_never_decide_loopback() -> None:
    nothing_denied = CandidatePolicy(deny=(), loopback_peers=True)
    assert refusal("0.0.0.0", nothing_denied) == Refusal.UNSPECIFIED
    assert refusal("::", nothing_denied) == Refusal.UNSPECIFIED
    assert refusal("169.254.169.254", nothing_denied) is None  # the operator's choice
    everything_denied = CandidatePolicy(deny=parse_networks(["0.0.0.0/0", "::/0"]))
    assert refusal("127.0.0.1", everything_denied) == Refusal.LOOPBACK
    assert refusal("127.0.0.1", CandidatePolicy(deny=(), loopback_peers=False)) == Refusal.LOOPBACK


def test_an_allow_list_narrows_and_the_deny_list_still_wins() -> None:
    policy = CandidatePolicy(
        deny=parse_networks(["default", "10.9.0.0/16"]),
        allow=parse_networks(["10.0.0.0/8", "2001:db8::/32", "169.254.0.0/16"], defaults=False),
    )
    assert refusal("10.1.2.3", policy) is None
    assert refusal("2001:db8::7", policy) is None
    assert refusal("10.9.1.1", policy) == Refusal.DENIED
    assert refusal("169.254.169.254", policy) == Refusal.DENIED
    assert refusal("192.168.1.1", policy) == Refusal.NOT_ALLOWED
    assert refusal("8.8.8.8", policy) == Refusal.NOT_ALLOWED
    assert refusal("fd00::1", policy) == Refusal.NOT_ALLOWED


def test_network_lists_expand_default_forgive_host_bits_and_refuse_nonsense() -> None:
    assert parse_networks(["default"]) == parse_networks(DEFAULT_DENY_NETWORKS)
    assert parse_networks([" Default ", "10.0.0.1/8", "10.0.0.0/8"])[-1] == ipaddress.ip_network(
        "10.0.0.0/8"
    )
    assert len(parse_networks(["default", "default"])) == len(DEFAULT_DENY_NETWORKS)
    for bad in ("10.0.0.0/33", "example.com", "", "fe80::/129"):
        with pytest.raises(ValueError):
            parse_networks([bad])
    with pytest.raises(ValueError):
        parse_networks(["default"], defaults=False)


def test_settings_read_the_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEETNOW_ICE_DENY_NETWORKS", "default, 10.0.0.0/8,fc00::/7")
    monkeypatch.setenv("MEETNOW_ICE_ALLOW_NETWORKS", "10.0.0.0/8,192.168.0.0/16")
    settings = test_settings()
    assert settings.ice_deny_networks == ["default", "10.0.0.0/8", "fc00::/7"]
    policy = policy_from_settings(settings)
    assert refusal("10.1.1.1", policy) == Refusal.DENIED
    assert refusal("192.168.1.1", policy) is None
    assert refusal("172.16.0.1", policy) == Refusal.NOT_ALLOWED
    monkeypatch.setenv("MEETNOW_ICE_DENY_NETWORKS", "10.0.0.0/33")
    with pytest.raises(ValidationError, match="ice_deny_networks"):
        test_settings()
    monkeypatch.setenv("MEETNOW_ICE_DENY_NETWORKS", "default")
    monkeypatch.setenv("MEETNOW_ICE_ALLOW_NETWORKS", "default")
    with pytest.raises(ValidationError, match="ice_allow_networks"):
        test_settings()


def test_the_policy_from_settings_offers_loopback_only_with_loopback_candidates() -> None:
    tests_relay = policy_from_settings(test_settings())  # offers 127.0.0.1
    assert tests_relay.loopback_peers and refusal("127.0.0.1", tests_relay) is None
    production = policy_from_settings(test_settings(ice_host_addresses=[]))
    assert refusal("127.0.0.1", production) == Refusal.LOOPBACK
    forced = policy_from_settings(test_settings(ice_loopback_peers=False))
    assert refusal("127.0.0.1", forced) == Refusal.LOOPBACK
    behind_nat = policy_from_settings(
        test_settings(ice_host_addresses=[], ice_public_address="203.0.113.10")
    )
    assert refusal("203.0.113.10", behind_nat) == Refusal.LOOPBACK
    assert refusal("203.0.113.11", behind_nat) is None
    # Every address of this host's interfaces counts as the host itself.
    assert interface_addresses() <= production.own_addresses
    assert production.max_candidates == 20


# ----------------------------------------------------------------------- parsing candidates


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1 1 udp 100 10.0.0.1 5000 typ",  # seven fields
        "1 x udp 100 10.0.0.1 5000 typ host",
        "1 1 udp high 10.0.0.1 5000 typ host",
        "1 1 udp 100 10.0.0.1 port typ host",
        "1 1 udp 100 10.0.0.1 5000 typ srflx raddr 0.0.0.0 rport none",
    ],
)
def test_malformed_candidates_parse_to_nothing(value: str) -> None:
    assert parse_candidate(value) is None


tokens = st.one_of(
    st.sampled_from(["1", "udp", "tcp", "typ", "host", "raddr", "rport", "10.0.0.1", "x", "-3"]),
    st.integers(-(2**40), 2**40).map(str),
    st.text(alphabet="0123456789abc_+-.:", min_size=1, max_size=6),
)


numberish = st.one_of(st.integers(-(2**40), 2**40).map(str), tokens)
shaped = st.tuples(
    tokens, numberish, tokens, numberish, tokens, numberish, tokens, tokens,
    st.lists(st.sampled_from(["raddr", "rport", "generation", "tcptype"]) | numberish, max_size=6),
).map(lambda t: [*t[:8], *t[8]])  # fmt: skip
"""Candidate-shaped token lists: eight fields, numbers where aiortc wants them (mostly)."""


@given(st.one_of(st.lists(tokens, max_size=14), shaped))
def test_our_candidate_parser_agrees_with_aiortcs(bits: list[str]) -> None:
    """Whatever aiortc can read as a candidate, we read the same way, and what it cannot, we
    drop: nothing reaches aiortc that the screen has not judged."""
    value = " ".join(bits)
    ours = parse_candidate(value)
    try:
        theirs = candidate_from_sdp(value)
    except (AssertionError, ValueError):
        assert ours is None
        return
    assert ours == ParsedCandidate(theirs.protocol, theirs.ip, theirs.port)


# ---------------------------------------------------------------------------- the screen


def test_the_screen_drops_refused_candidates_and_keeps_every_other_line() -> None:
    sdp = answer(
        [
            host("127.0.0.1", 5000),
            host("169.254.169.254", 80),
            host("10.0.0.7", 5001),
            host("abc.local", 5002),
            host("10.0.0.7", 9, transport="tcp"),
            "garbage",
        ]
    )
    screened = CandidateScreen(CandidatePolicy()).screen_answer(sdp)
    assert aiortc_candidates(screened) == {("10.0.0.7", 5001)}
    kept = [
        line for line in sdp.splitlines() if "candidate:" not in line or "10.0.0.7 5001" in line
    ]
    assert screened.splitlines() == kept
    assert screened.endswith("\r\n")


def test_an_answer_with_nothing_to_drop_is_passed_on_untouched() -> None:
    sdp = answer([host("10.0.0.7", 5001), host("2001:db8::1", 5002)])
    assert CandidateScreen(CandidatePolicy()).screen_answer(sdp) is sdp


@pytest.mark.parametrize(
    "separator", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\r"]
)
def test_candidates_hidden_behind_odd_line_breaks_are_screened_too(separator: str) -> None:
    """aiortc splits SDP with ``str.splitlines``, which breaks at more than CR and LF."""
    sneaky = "a=rtcp-mux" + separator + "a=candidate:" + host("169.254.169.254", 80)
    sdp = answer([host("10.0.0.7", 5001)]).replace("a=rtcp-mux", sneaky, 1)
    # The test of the test: aiortc does read the hidden candidate from the raw answer.
    assert ("169.254.169.254", 80) in aiortc_candidates(sdp)
    screened = CandidateScreen(CandidatePolicy()).screen_answer(sdp)
    assert aiortc_candidates(screened) == {("10.0.0.7", 5001)}


def test_the_cap_counts_distinct_udp_candidates_over_the_whole_session() -> None:
    screen = CandidateScreen(CandidatePolicy(max_candidates=5))
    first = [host("10.0.0.1", 5000 + i) for i in range(3)]
    # The same candidates on every m-line, and again in the next answer, count once.
    screen.screen_answer(answer(first))
    screen.screen_answer(answer(first))
    assert screen.given == 3
    # Dropped UDP candidates count too: the participant gave them. TCP twins and lines that
    # are no candidate at all do not: the relay never uses them, whatever their number.
    junk = [host(f"10.0.1.{i}", 9, transport="tcp") for i in range(10)] + ["x", "1 2 3"]
    screen.screen_answer(answer([*first, host("169.254.169.254", 80), *junk]))
    assert screen.given == 4
    too_many = answer([*first, host("10.0.0.2", 6000), host("10.0.0.3", 6000)])
    with pytest.raises(TooManyCandidates, match="past 5 ICE candidates"):
        screen.screen_answer(too_many)
    assert screen.given == 4, "a refused answer is not remembered"
    screen.screen_answer(answer([*first, host("10.0.0.2", 6000)]))
    assert screen.given == 5
    with pytest.raises(TooManyCandidates):
        screen.screen_answer(answer(first, video_candidates=[host("10.0.0.4", 1)]))


def test_3000_candidates_in_one_answer_are_refused() -> None:
    stuffed = answer([host(f"10.{i // 250}.{i % 250}.1", 5000 + i) for i in range(3000)])
    with pytest.raises(TooManyCandidates, match="past 20 ICE candidates"):
        CandidateScreen(CandidatePolicy()).screen_answer(stuffed)


def test_an_answer_stuffed_with_lines_that_never_count_is_refused_too() -> None:
    """The screen runs on every answer: its work is bounded even by lines that do not count."""
    policy = CandidatePolicy(max_candidates=20)
    twins = [host(f"10.0.{i // 250}.{i % 250}", 9, transport="tcp") for i in range(80)]
    CandidateScreen(policy).screen_answer(answer(twins))  # 4 lines per candidate of the cap
    with pytest.raises(TooManyCandidates):
        CandidateScreen(policy).screen_answer(answer([*twins, "x"]))
    # Repeats cost little but are bounded too; a full room's repeats (102 m-lines) are fine.
    full_room = ANSWER_HEAD + "".join(
        media_section("audio", mid, [host(f"10.0.0.{i}", 5000) for i in range(20)])
        for mid in range(102)
    )
    assert aiortc_candidates(CandidateScreen(policy).screen_answer(full_room))
    with pytest.raises(TooManyCandidates):
        CandidateScreen(policy).screen_answer(answer([], video_candidates=["x"] * 4097))


def test_the_same_address_written_differently_is_one_candidate() -> None:
    screen = CandidateScreen(CandidatePolicy(max_candidates=2))
    screen.screen_answer(
        answer([host("2001:db8::1", 5000), host("2001:DB8:0::1", 5000), host("10.0.0.1", 5000)])
    )
    assert screen.given == 2
