"""Which ICE candidates a participant may make the relay send to, and how many.

The relay's ICE agent (aioice) sends connectivity checks, about 7 STUN datagrams each, to every
remote candidate an answer names. Left alone, that lets anyone with a meeting link make the relay
probe its own network (cloud metadata at ``169.254.169.254``, services on loopback) or reflect
traffic at a third party. So, like a TURN server's peer filter (coturn's ``denied-peer-ip``), every
answer's candidates are screened *before* aiortc sees the SDP:

- a participant may give at most ``max_candidates`` distinct UDP candidates per session (over all
  its answers; the protocol has no trickle message, so later answers are the only later
  candidates); an answer that would go past it, or that is stuffed with candidate lines, is
  refused as a whole;
- a candidate is kept only if it names an IP address (mDNS ``.local`` names are dropped: resolving
  one makes the relay multicast on a participant's say, and browsers give real addresses once the
  page has camera permission), over UDP, on a real port, that is neither unspecified nor loopback
  nor one of the host's own addresses (unless the relay itself offers loopback candidates), not
  in a denied network, and in an allowed one when an allow list is set.

Candidates are parsed the way aiortc parses them (``str.splitlines``, ``a=`` attributes split at
the first colon, fields split on whitespace), so nothing aiortc would read as a candidate slips
past the screen.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

import ifaddr

from .errors import TooManyCandidates

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "DEFAULT_DENY_NETWORKS",
    "DEFAULT_KEYWORD",
    "CandidatePolicy",
    "CandidateScreen",
    "ParsedCandidate",
    "Refusal",
    "parse_candidate",
    "parse_networks",
    "policy_from_settings",
]

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_DENY_NETWORKS: tuple[str, ...] = (
    "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the relay's own host
    "169.254.0.0/16",  # link-local, with cloud metadata services at 169.254.169.254
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, with the broadcast address 255.255.255.255
    "::/8",  # unspecified, IPv4-compatible and NAT64 (64:ff9b::/96) addresses
    "100::/64",  # discard-only
    "fe80::/10",  # link-local
    "fec0::/10",  # site-local, deprecated
    "ff00::/8",  # multicast
)
"""Networks the relay never sends to unless an operator says otherwise. Loopback is not here: it
has its own rule (:attr:`CandidatePolicy.loopback_peers`). Private ranges are not here either: a
relay on its users' LAN needs them (docs/deploy.md says when to deny them)."""

DEFAULT_KEYWORD = "default"
"""In ``MEETNOW_ICE_DENY_NETWORKS``, stands for :data:`DEFAULT_DENY_NETWORKS`, so an operator can
add networks without copying the defaults: ``default,10.0.0.0/8``."""


class Refusal(StrEnum):
    """Why a candidate was dropped (logged as counts, never with the address)."""

    MALFORMED = "malformed"
    """Not a candidate aiortc could parse: too few fields, or a number that is not one."""
    MDNS = "mdns"
    """A ``.local`` name: resolving it would multicast on the participant's say."""
    HOSTNAME = "hostname"
    """Any other name: the relay never resolves names a participant gives."""
    TRANSPORT = "transport"
    """Not UDP: the relay's ICE agent only checks UDP pairs."""
    PORT = "port"
    """Port 0 or above 65535."""
    UNSPECIFIED = "unspecified"
    """``0.0.0.0`` or ``::``: never a peer, and sending there reaches the relay's own host
    (coturn's CVE-2020-26262), so no setting allows it."""
    LOOPBACK = "loopback"
    """Loopback, or one of the relay host's own addresses (which reaches the same services),
    while the relay offers no loopback candidate of its own."""
    DENIED = "denied"
    """In a denied network (``MEETNOW_ICE_DENY_NETWORKS``)."""
    NOT_ALLOWED = "not_allowed"
    """Outside every allowed network (``MEETNOW_ICE_ALLOW_NETWORKS``, when set)."""


def parse_networks(items: Iterable[str], *, defaults: bool = True) -> tuple[IPNetwork, ...]:
    """CIDR strings as networks; with ``defaults``, the word ``default`` expands to
    :data:`DEFAULT_DENY_NETWORKS`. Host bits are forgiven (``10.0.0.1/8`` means ``10.0.0.0/8``);
    anything else raises ``ValueError``."""
    networks: list[IPNetwork] = []
    for item in items:
        text = item.strip()
        if defaults and text.lower() == DEFAULT_KEYWORD:
            networks.extend(ipaddress.ip_network(n) for n in DEFAULT_DENY_NETWORKS)
        else:
            networks.append(ipaddress.ip_network(text, strict=False))
    return tuple(dict.fromkeys(networks))


class ParsedCandidate(NamedTuple):
    """The fields of an ``a=candidate`` value that decide where the relay would send."""

    transport: str
    host: str
    port: int

    @property
    def key(self) -> tuple[str, str, int]:
        """What makes two candidates the same destination (aioice ignores repeats of it)."""
        address = _as_address(self.host)
        host = str(address) if address is not None else self.host.lower()
        return (self.transport.lower(), host, self.port)


def parse_candidate(value: str) -> ParsedCandidate | None:
    """An ``a=candidate`` value (after the colon), parsed as aiortc's ``candidate_from_sdp``
    does: ``foundation component transport priority address port typ type ...``. None if aiortc
    could not parse it either."""
    bits = value.split()
    if len(bits) < 8:
        return None
    try:
        int(bits[1])  # component
        int(bits[3])  # priority
        port = int(bits[5])
        for name, value in zip(bits[8::2], bits[9::2], strict=False):
            if name == "rport":
                int(value)  # aiortc reads it as a number too
    except ValueError:
        return None
    return ParsedCandidate(transport=bits[2], host=bits[4], port=port)


def _as_address(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    # An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is sent to as the IPv4 address it maps.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class CandidatePolicy:
    """Where a participant's candidates may point. Immutable: one per server configuration."""

    deny: tuple[IPNetwork, ...] = field(
        default_factory=lambda: parse_networks(DEFAULT_DENY_NETWORKS)
    )
    """Networks never sent to."""
    allow: tuple[IPNetwork, ...] = ()
    """If not empty, the only networks sent to (besides loopback, see :attr:`loopback_peers`)."""
    loopback_peers: bool = False
    """Whether loopback candidates are kept: only sensible when the relay offers loopback
    candidates itself (everything on one machine, as in the tests)."""
    own_addresses: frozenset[IPAddress] = frozenset()
    """The relay host's own addresses. A datagram sent to one never leaves the host, so it
    reaches services listening on every interface just as loopback does: the same rule."""
    max_candidates: int = 20
    """Distinct candidates one participant may give over its session."""

    def refusal(self, candidate: ParsedCandidate) -> Refusal | None:
        """Why the relay must not send to ``candidate``, or None if it may."""
        if candidate.transport.lower() != "udp":
            return Refusal.TRANSPORT
        if not 0 < candidate.port <= 0xFFFF:
            return Refusal.PORT
        address = _as_address(candidate.host)
        if address is None:
            return Refusal.MDNS if candidate.host.lower().endswith(".local") else Refusal.HOSTNAME
        if address.is_unspecified:
            return Refusal.UNSPECIFIED
        # Loopback is decided by its own rule alone, whatever the lists say.
        if address.is_loopback or address in self.own_addresses:
            return None if self.loopback_peers else Refusal.LOOPBACK
        if any(address in network for network in self.deny):
            return Refusal.DENIED
        if self.allow and not any(address in network for network in self.allow):
            return Refusal.NOT_ALLOWED
        return None


def policy_from_settings(settings: Settings) -> CandidatePolicy:
    """The policy a server's settings ask for (cached: every connection of a server shares it,
    and the host's interfaces are read once)."""
    loopback = settings.ice_loopback_peers
    if loopback is None:
        loopback = any(ipaddress.ip_address(a).is_loopback for a in settings.ice_host_addresses)
    configured = [*settings.ice_host_addresses, settings.ice_public_address or ""]
    return _cached_policy(
        tuple(settings.ice_deny_networks),
        tuple(settings.ice_allow_networks),
        loopback,
        settings.ice_max_candidates,
        tuple(a for a in configured if a),
    )


@functools.lru_cache(maxsize=16)
def _cached_policy(
    deny: tuple[str, ...],
    allow: tuple[str, ...],
    loopback: bool,
    max_candidates: int,
    configured_addresses: tuple[str, ...],
) -> CandidatePolicy:
    own = {a for a in map(_as_address, configured_addresses) if a is not None}
    return CandidatePolicy(
        deny=parse_networks(deny),
        allow=parse_networks(allow, defaults=False),
        loopback_peers=loopback,
        max_candidates=max_candidates,
        own_addresses=frozenset(own | interface_addresses()),
    )


def interface_addresses() -> set[IPAddress]:
    """Every address of this host's interfaces (read with ifaddr, as aioice gathers them)."""
    found: set[IPAddress] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            address = _as_address(text)
            if address is not None:
                found.add(address)
    return found


def _candidate_value(line: str) -> str | None:
    """The value of an ``a=candidate`` line as aiortc's SDP parser would find it (the attribute
    name is what precedes the first colon), else None. Cheap: most lines fail the first test."""
    if not line.startswith("a=candidate"):
        return None
    rest = line[len("a=candidate") :]
    if rest and rest[0] != ":":
        return None  # another attribute whose name starts the same way
    return rest[1:]


LINES_PER_CANDIDATE = 4
"""An answer may hold this many distinct ``a=candidate`` lines per candidate of the cap (of any
kind: browsers add a TCP twin of each host candidate): past that it is refused before more of it
is read."""
MAX_CANDIDATE_LINES = 4096
"""``a=candidate`` lines in one answer, repeats included (aiortc repeats its candidates on every
m-line: a full room of 50 is 102 m-lines): past that it is refused unread."""


class CandidateScreen:
    """One participant's candidates over its session: the cap, and the filter."""

    def __init__(self, policy: CandidatePolicy) -> None:
        self.policy = policy
        self._given: set[tuple[str, str, int]] = set()
        """Every distinct UDP candidate this participant gave (kept or dropped)."""

    @property
    def given(self) -> int:
        """Distinct UDP candidates given so far."""
        return len(self._given)

    def screen_answer(self, sdp: str) -> str:
        """The answer with every candidate the relay must not send to taken out, ready for aiortc.

        Raises :class:`TooManyCandidates` (and remembers nothing of this answer) if its new UDP
        candidates would take the participant past the cap, or if it holds more candidate lines
        than :data:`LINES_PER_CANDIDATE` distinct ones per candidate of the cap or
        :data:`MAX_CANDIDATE_LINES` in all. Candidates that are not UDP, or not candidates at
        all, are dropped without counting: browsers give a TCP twin of each host candidate,
        which the relay never uses. The screen runs on every answer, before the relay checks
        its revision, so its cost is bounded: whole-text operations, then Python work only for
        candidate lines, stopping at the first one past a limit."""
        if sdp.count("a=candidate") > MAX_CANDIDATE_LINES:
            raise self._too_many()
        lines = sdp.splitlines()
        found = [(i, v) for i, v in enumerate(map(_candidate_value, lines)) if v is not None]
        verdicts: dict[str, Refusal | None] = {}
        new: set[tuple[str, str, int]] = set()
        for _, value in found:
            if value in verdicts:  # aiortc repeats them on every m-line
                continue
            if len(verdicts) >= LINES_PER_CANDIDATE * self.policy.max_candidates:
                raise self._too_many()
            verdicts[value] = self._verdict(value, new)
        self._given |= new
        dropped = {i for i, value in found if verdicts[value] is not None}
        if not dropped:
            return sdp
        refused = Counter(reason for reason in verdicts.values() if reason is not None)
        logger.info("ICE candidates dropped from an answer: %s", _describe(refused))
        return "".join(line + "\r\n" for i, line in enumerate(lines) if i not in dropped)

    def _verdict(self, value: str, new: set[tuple[str, str, int]]) -> Refusal | None:
        """Why this candidate is dropped (None: kept); counts it against the cap in ``new``."""
        candidate = parse_candidate(value)
        if candidate is None:
            return Refusal.MALFORMED
        if candidate.transport.lower() != "udp":
            return Refusal.TRANSPORT
        if candidate.key not in self._given:
            new.add(candidate.key)
            if len(self._given) + len(new) > self.policy.max_candidates:
                raise self._too_many()
        return self.policy.refusal(candidate)

    def _too_many(self) -> TooManyCandidates:
        limit = self.policy.max_candidates
        logger.info("answer refused: more than %d ICE candidates on one connection", limit)
        return TooManyCandidates(
            f"This answer takes the connection past {limit} ICE candidates, the most accepted; "
            "send at most that many (addresses and ports, over all answers)."
        )


def _describe(refused: Counter[Refusal]) -> str:
    return ", ".join(f"{reason.value} {count}" for reason, count in sorted(refused.items()))
