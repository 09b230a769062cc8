"""A small network of namespaces for the network benchmark, entirely on this machine.

One *hub* namespace routes between endpoint namespaces, each on a veth link of its own: the
server (``srv``, a clean data-centre link) and each guest (``g1``, ``g2``, ...: the people's access
networks, which the conditions impair). Nothing is added to the machine's own namespace, and no
route leads out of this network, so no packet of the benchmark can leave the machine.

Impairments act in the hub on a guest's link, where a router or the air would: both directions
of each guest link lose packets at random (nftables ``numgen``, in prerouting for the uplink and
postrouting for the downlink: dropping in a forwarding hop never fails a ``sendto``, as real loss
does not), are held ``delay ± jitter`` ms by :mod:`benchmarks.nfqueue_delay` (iptables NFQUEUE
rules at the same two hooks, so a packet from one guest to another is delayed once per link), and
a guest's downlink can be capped by ``tbf`` on the hub's side of its veth (the bottleneck is the
router's queue, not the receiver's socket; this stands in for the ``ifb`` used when the impaired
link ends in the machine's own namespace). A path through meetnow (guest uplink, clean server
link, guest downlink) and a direct path (guest uplink, guest downlink) cross the same impaired
links, so peer to peer is a fair baseline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .common import REPO

QUEUE = 7
HUB_ADDRESS_HOST = 254
NFQUEUE_SECONDS = 900.0
"""The delay program stops by itself after this long, whatever happens to the benchmark."""


@dataclass(frozen=True)
class LinkImpairment:
    """What a guest's access link does, both directions (the cap applies to its downlink)."""

    loss_percent: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    downlink_kbps: float | None = None


def run(command: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=check, timeout=20)


def missing_capability() -> str | None:
    """Why this machine cannot build the network (None: it can): root, the tools, the kernel."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables, iptables, tc)"
    for tool in ("ip", "nft", "iptables", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (Debian: iproute2, nftables, iptables)"
    probe = f"mnbprobe{os.getpid()}"
    try:
        run(["ip", "netns", "add", probe])
        ns = ["ip", "netns", "exec", probe]
        run([*ns, "nft", "add", "table", "inet", "probe"])
        run(
            [*ns, "iptables", "-t", "mangle", "-A", "PREROUTING", "-j", "NFQUEUE", "--queue-bypass"]
        )
        run(["ip", "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1"])
        run(
            [
                "tc",
                "-n",
                probe,
                "qdisc",
                "add",
                "dev",
                "p0",
                "root",
                "tbf",
                "rate",
                "1mbit",
                "burst",
                "16kb",
                "latency",
                "150ms",
            ]
        )
    except subprocess.CalledProcessError as error:
        return f"`{' '.join(error.cmd[:6])}` failed: {error.stderr.strip()[:160]}"
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{type(error).__name__}: {error}"
    finally:
        run(["ip", "netns", "del", probe], check=False)
    return None


@dataclass
class Network:
    """The namespaces: ``server`` and each guest, by name, with their addresses."""

    prefix: str
    guests: list[str]
    addresses: dict[str, str] = field(default_factory=dict)
    delay_process: subprocess.Popen[str] | None = None

    @property
    def hub(self) -> str:
        return f"{self.prefix}-hub"

    def namespace(self, endpoint: str) -> str:
        return f"{self.prefix}-{endpoint}"

    def exec_prefix(self, endpoint: str) -> list[str]:
        """Prefix a command with this to run it inside ``endpoint``'s namespace."""
        return ["ip", "netns", "exec", self.namespace(endpoint)]

    def hub_link(self, endpoint: str) -> str:
        return f"h-{endpoint}"

    def _hub(self, *command: str) -> None:
        run(["ip", "netns", "exec", self.hub, *command])

    def build(self) -> None:
        run(["ip", "netns", "add", self.hub])
        self._hub("ip", "link", "set", "lo", "up")
        self._hub("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        for index, endpoint in enumerate(["srv", *self.guests], start=1):
            namespace, link = self.namespace(endpoint), self.hub_link(endpoint)
            subnet = f"10.77.{index}"
            run(["ip", "netns", "add", namespace])
            run(
                [
                    "ip",
                    "-n",
                    self.hub,
                    "link",
                    "add",
                    link,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    namespace,
                ]
            )
            run(
                [
                    "ip",
                    "-n",
                    self.hub,
                    "addr",
                    "add",
                    f"{subnet}.{HUB_ADDRESS_HOST}/24",
                    "dev",
                    link,
                ]
            )
            run(["ip", "-n", self.hub, "link", "set", link, "up"])
            run(["ip", "-n", namespace, "addr", "add", f"{subnet}.1/24", "dev", "eth0"])
            for device in ("lo", "eth0"):
                run(["ip", "-n", namespace, "link", "set", device, "up"])
            run(
                [
                    "ip",
                    "-n",
                    namespace,
                    "route",
                    "add",
                    "default",
                    "via",
                    f"{subnet}.{HUB_ADDRESS_HOST}",
                ]
            )
            self.addresses[endpoint] = f"{subnet}.1"

    def impair(self, impairments: dict[str, LinkImpairment]) -> None:
        """Apply one condition (guest -> its link's impairment); clears the previous one."""
        self.clear()
        loss_rules, delayed = [], []
        for guest, link in impairments.items():
            device = self.hub_link(guest)
            if link.loss_percent:
                per_mille = round(link.loss_percent * 10)
                for chain, direction in (("pre", "iifname"), ("post", "oifname")):
                    loss_rules.append(
                        f"add rule inet lossy {chain} {direction} {device} "
                        f"numgen random mod 1000 < {per_mille} drop"
                    )
            if link.delay_ms:
                delayed.append(device)
            if link.downlink_kbps:
                self._hub(
                    "tc",
                    "qdisc",
                    "replace",
                    "dev",
                    device,
                    "root",
                    "tbf",
                    "rate",
                    f"{link.downlink_kbps:g}kbit",
                    "burst",
                    "16kb",
                    "latency",
                    "150ms",
                )
        if loss_rules:
            script = "\n".join(
                [
                    "add table inet lossy",
                    "add chain inet lossy pre { type filter hook prerouting priority -300; }",
                    "add chain inet lossy post { type filter hook postrouting priority 300; }",
                    *loss_rules,
                ]
            )
            subprocess.run(
                ["ip", "netns", "exec", self.hub, "nft", "-f", "-"],
                input=script,
                text=True,
                check=True,
                capture_output=True,
                timeout=20,
            )
        if delayed:
            self._start_delay(impairments[next(iter(impairments))])
            for device in delayed:
                for chain, flag in (("PREROUTING", "-i"), ("POSTROUTING", "-o")):
                    self._hub(
                        "iptables",
                        "-t",
                        "mangle",
                        "-A",
                        chain,
                        flag,
                        device,
                        "-j",
                        "NFQUEUE",
                        "--queue-num",
                        str(QUEUE),
                        "--queue-bypass",
                    )

    def _start_delay(self, link: LinkImpairment) -> None:
        self.delay_process = subprocess.Popen(
            [
                *["ip", "netns", "exec", self.hub],
                sys.executable,
                "-m",
                "benchmarks.nfqueue_delay",
                "--queue",
                str(QUEUE),
                "--delay",
                f"{link.delay_ms:g}",
                "--jitter",
                f"{link.jitter_ms:g}",
                "--seconds",
                str(NFQUEUE_SECONDS),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.delay_process.stdout is not None
        first = self.delay_process.stdout.readline()
        if first.strip() != "ready":
            self._stop_delay()
            raise RuntimeError(f"the NFQUEUE delay program did not start: {first.strip()!r}")

    def _stop_delay(self) -> None:
        process, self.delay_process = self.delay_process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def clear(self) -> None:
        """No impairment: rules, queue program and caps removed."""
        run(["ip", "netns", "exec", self.hub, "iptables", "-t", "mangle", "-F"], check=False)
        self._stop_delay()
        run(
            ["ip", "netns", "exec", self.hub, "nft", "delete", "table", "inet", "lossy"],
            check=False,
        )
        for guest in self.guests:
            run(
                ["tc", "-n", self.hub, "qdisc", "del", "dev", self.hub_link(guest), "root"],
                check=False,
            )

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.clear()
        for endpoint in ["srv", *self.guests]:
            run(["ip", "netns", "del", self.namespace(endpoint)], check=False)
        run(["ip", "netns", "del", self.hub], check=False)


@contextlib.contextmanager
def network(guests: int) -> Iterator[Network]:
    """The namespaces for a server and ``guests`` guests, removed on exit whatever happened."""
    built = Network(f"mnb{os.getpid()}", [f"g{index}" for index in range(1, guests + 1)])
    try:
        built.build()
        yield built
    finally:
        built.destroy()
