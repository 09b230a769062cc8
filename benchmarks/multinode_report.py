"""docs/benchmarks.md's part for many nodes on Redis (``benchmarks/multinode.py``): every figure
comes from this run's ``Results``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .common import fmt, percentile, table

if TYPE_CHECKING:
    from .run import Results

FIGURES = (
    ("multinode_join_own_node_ms", "join -> first video packet, through the room's own node"),
    (
        "multinode_join_forwarded_ms",
        "join -> first video packet, through the other node (forwarded)",
    ),
    ("multinode_failover_ms", "kill -9 of the room's node -> media back at both clients"),
    ("multinode_drain_ms", "SIGTERM of a node -> each of its participants in a call elsewhere"),
)


def _p(values: list[float], fraction: float) -> float | None:
    return percentile(values, fraction) if values else None


def summary_rows(r: Results) -> list[list[object]]:
    if r.multinode is None:
        return []
    own = _p(r.multinode.get("multinode_join_own_node_ms", []), 0.5)
    forwarded = _p(r.multinode.get("multinode_join_forwarded_ms", []), 0.5)
    failover = r.multinode.get("multinode_failover_ms", [])
    drain = r.multinode.get("multinode_drain_ms", [])
    return [
        [
            "two nodes on Redis: join -> first video packet through the other node, p50",
            f"{fmt(forwarded, 0)} ms",
            f"through the room's own node: {fmt(own, 0)} ms",
            f"{fmt(forwarded / own, 2) if forwarded and own else '-'}x",
            "a few ms more, not hundreds",
            "-",
        ],
        [
            f"room's node killed -> media back ({len(failover)} kills)",
            f"p50 {fmt(_p(failover, 0.5), 0)} ms, p95 {fmt(_p(failover, 0.95), 0)} ms",
            "claims expire after 3 s",
            "-",
            "-",
            "-",
        ],
        [
            f"node drained (SIGTERM) -> everyone back in a call ({len(drain)} participants)",
            f"p95 {fmt(_p(drain, 0.95), 0)} ms",
            "-",
            "-",
            "-",
            "-",
        ],
    ]


def sections(r: Results) -> list[str]:
    if r.multinode is None:
        return []
    rows = []
    for key, label in FIGURES:
        values = r.multinode.get(key, [])
        rows.append(
            [
                label,
                len(values),
                fmt(_p(values, 0.5), 0),
                fmt(_p(values, 0.95), 0),
                fmt(max(values, default=None), 0),
            ]
        )
    return [
        "## 9. Many nodes on Redis",
        "",
        "Real `meetnow serve` nodes (one relay worker each, ICE ports of their own) on a real "
        "`redis-server` started for the run, and aiortc participants (`benchmarks/multinode.py`) "
        "as `meetnow loadtest` makes them: a pre-encoded loop sent, what arrives counted off the "
        "socket with a browser's feedback (so twelve of them fit one process here). "
        "Join: a client joins a room where another already publishes, through the room's own "
        "node or through the other node (its signaling forwarded over Redis pub/sub; media goes "
        "straight to the room's node), from `join` to the first packet of video. Failover: `kill -9` "
        "of the room's node until both clients (one forwarded) receive each other's video again "
        "through the survivor. Drain: SIGTERM to a node holding rooms until each of their "
        "participants receives everyone's video again on the other node.",
        "",
        table(["measure", "samples", "p50 ms", "p95 ms", "max ms"], rows),
        "",
    ]
