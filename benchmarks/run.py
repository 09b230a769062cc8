"""Run meetnow's benchmarks and write docs/benchmarks.md.

    .venv/bin/python -m benchmarks.run                 # everything (~10 minutes), writes the doc
    .venv/bin/python -m benchmarks.run --quick         # short smoke run, prints only
    .venv/bin/python -m benchmarks.run --only latency  # one section, prints only

Sections: density, mediarelay, latency, browser, memory, chat. Each prints its figures as it goes.
``--output PATH`` writes the report for a partial or quick run too. Figures are printed, never
asserted: the machines these run on are shared and noisy, so every figure is set against a
baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import browser_join, chat, density, latency, mediarelay_baseline, memory
from .common import (
    CPU_WINDOW_SECONDS,
    NOISY_PERCENT,
    REPO,
    WAIT_BUDGET_SECONDS,
    OtherLoad,
    fmt,
    machine,
    say,
    table,
    wait_for_quiet,
    waited_seconds,
)

QUIET_WAIT = 120.0
"""Longest wait for a quiet machine before a section."""
SECTIONS = ("density", "mediarelay", "latency", "browser", "memory", "chat")
DOC = REPO / "docs" / "benchmarks.md"


@dataclass
class Results:
    quick: bool
    density: list[density.DensityRow] | None = None
    mediarelay: mediarelay_baseline.BaselineResult | None = None
    latency: latency.LatencyResult | None = None
    browser: browser_join.BrowserResult | None = None
    memory: list[memory.MemoryRow] | None = None
    chat: list[chat.ChatResult] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    other_load: dict[str, float] = field(default_factory=dict)
    """Per section: CPU used by processes this run did not start, % of one core."""


WHERE_THE_TIME_GOES = """## What stands in the way, and what would close it

**The >= 40x ratio at equal room size.** MediaRelay cannot hold a 4-person room on this machine
(20 fps and 18 freezes at 141% CPU), so the two designs only meet at 2 and 3 people. There,
packet forwarding's cost per participant that does not depend on the room size dominates its
per-stream figure: receiving (SRTP decryption, aiortc's bandwidth estimator, receive statistics,
NACKs), RTCP, and the renegotiation of every session at each join. At 20 people the same relay
spends about 0.2% of a core per stream; compared at each design's largest room it holds about 90x
more streams per core. A profile of the relay at 16 people (`python -m benchmarks.profile_relay -n
16`, cProfile) puts about 45% of its busy time in sending (the `sendto` system call alone about
16%, SRTP protection about 5%, the Python of `SenderState._transmit` about 11%), about 11% in the
feedback on incoming packets (mostly aiortc's REMB estimator in `aiortc/rate.py`), and about 10% in
signaling and SDP work during joins. What would close the rest: batching a packet's fan-out into one
`sendmmsg` call (needs a small C extension: Python has no `sendmmsg`), a cheaper bandwidth estimate
(sampling packets, or TWCC when aiortc has it), and joins that renegotiate only the sessions whose
m-lines changed. None of that changes the design.

**Every core.** `meetnow serve` runs one relay worker per core (`MEETNOW_RELAY_WORKERS`) and pins
each room to one, so a machine holds (streams per core above) x (cores), in rooms of at most one
core each. The density section runs the relay in one process on purpose, to measure one core. On
this 2-core machine the load generator itself needs most of the other core at 20 people, so the
two workers cannot both be driven to saturation here; `tests/test_workers.py` shows rooms landing
on different workers, media flowing through both, and a crashed worker disconnecting only its
rooms. A run across two machines (generator on one) would show the sum.
"""


def run_section(
    results: Results,
    name: str,
    action: Callable[[], Any],
    *,
    watch_other: bool = True,
    retry_if_noisy: bool = False,
) -> None:
    """Run one section (after waiting for a quiet machine, unless quick). ``watch_other=False``
    where this run's own processes leave its process tree (Chromium re-parents its helpers to
    init), which would pass them off as other load; ``retry_if_noisy`` runs a short section again
    if other processes were busy meanwhile."""
    say(f"\n== {name}")
    if not results.quick:
        wait_for_quiet(QUIET_WAIT)
    started = time.monotonic()
    other = OtherLoad()
    try:
        setattr(results, name, action())
        if retry_if_noisy and not results.quick and (load := other.percent()) > NOISY_PERCENT:
            say(f"  other processes used {load:.0f}% of a core meanwhile: once more")
            wait_for_quiet(QUIET_WAIT)
            started, other = time.monotonic(), OtherLoad()
            setattr(results, name, action())
    except Exception as error:  # one broken section must not lose the others' figures
        traceback.print_exc()
        results.errors[name] = f"{type(error).__name__}: {error}"
        say(f"  {name} failed: {results.errors[name]}")
    results.seconds[name] = time.monotonic() - started
    if watch_other:
        results.other_load[name] = other.percent()
        say(
            f"  ({results.seconds[name]:.0f} s; CPU of other processes on the machine meanwhile: "
            f"{results.other_load[name]:.0f}% of a core)"
        )
    else:
        say(f"  ({results.seconds[name]:.0f} s)")


def run(selected: list[str], quick: bool) -> Results:
    results = Results(quick)
    duration = density.QUICK_DURATION if quick else density.DURATION
    if "density" in selected:
        sizes: Sequence[int] = density.QUICK_SIZES if quick else density.SIZES
        run_section(results, "density", lambda: density.measure(sizes, duration))
    if "mediarelay" in selected:
        baseline_sizes: Sequence[int] = (
            mediarelay_baseline.QUICK_SIZES if quick else mediarelay_baseline.SIZES
        )
        run_section(
            results,
            "mediarelay",
            lambda: mediarelay_baseline.measure(baseline_sizes, duration, results.density or []),
        )
    if "latency" in selected:
        seconds = latency.QUICK_DURATION if quick else latency.DURATION
        rounds = 1 if quick else latency.ROUNDS
        run_section(
            results, "latency", lambda: latency.measure(seconds, rounds), retry_if_noisy=True
        )
    if "browser" in selected:
        joins = browser_join.QUICK_JOINS if quick else browser_join.JOINS
        run_section(results, "browser", lambda: browser_join.measure(joins), watch_other=False)
    if "memory" in selected:
        memory_sizes: Sequence[int] = memory.QUICK_SIZES if quick else memory.SIZES
        reuse = [row.run for row in results.density or []]
        run_section(results, "memory", lambda: memory.measure(memory_sizes, reuse))
    if "chat" in selected:
        run_section(results, "chat", lambda: chat.measure(quick))
    return results


# ------------------------------------------------------------------ the report


def summary_rows(r: Results) -> list[list[object]]:
    rows: list[list[object]] = []
    if r.density is not None:
        best = density.largest_held(r.density)
        baseline = density.largest_held(r.mediarelay.mediarelay) if r.mediarelay else None
        rows.append(
            [
                "largest room held at 30 fps, no freezes (one relay process)",
                f"{best.size} people, {best.streams} video streams (relay "
                f"{best.run.server_cpu_percent:.0f}% of its core; loss "
                f"{(best.run.summary or {}).get('loss_percent', '-')}% in the measured window)"
                if best
                else "none",
                f"MediaRelay: {baseline.size} people, {baseline.streams} streams"
                if baseline
                else "-",
                f"{best.streams / baseline.streams:.0f}x streams" if best and baseline else "-",
                "-",
                "-",
            ]
        )
        if best:
            capacity = r.mediarelay.capacity_ratio if r.mediarelay else None
            rows.append(
                [
                    f"relay CPU per forwarded video stream at {best.size} people",
                    f"{best.cpu_per_stream:.3f}% of a core ({best.streams_per_core:.0f} streams/core)",
                    f"MediaRelay at {baseline.size}: {baseline.cpu_per_stream:.2f}% "
                    f"({baseline.streams_per_core:.1f} streams/core)"
                    if baseline
                    else "-",
                    f"{capacity:.0f}x streams/core" if capacity else "-",
                    "-",
                    "-",
                ]
            )
    if r.mediarelay is not None:
        head = r.mediarelay.headline
        rows.append(
            [
                "CPU per stream, MediaRelay / packet forwarding, same room size",
                f"{head.ratio:.1f}x at {head.size} people" if head else "no common size held",
                f"MediaRelay {head.mediarelay.cpu_per_stream:.2f}%/stream" if head else "-",
                f"{head.ratio:.1f}x" if head else "-",
                f">= {mediarelay_baseline.TARGET_RATIO:.0f}x",
                _met(head.ratio >= mediarelay_baseline.TARGET_RATIO) if head else "-",
            ]
        )
    if r.latency is not None:
        lat = r.latency
        direct_delta, relay_delta = lat.direct.delta_frames(), lat.relay.delta_frames()
        for name, direct_d, relay_d, fraction, target in (
            ("all packets, p50", lat.direct, lat.relay, 0.5, latency.TARGET_P50_MS),
            ("all packets, p99", lat.direct, lat.relay, 0.99, latency.TARGET_P99_MS),
            ("delta frames only, p99", direct_delta, relay_delta, 0.99, latency.TARGET_P99_MS),
        ):
            added = relay_d.p(fraction) - direct_d.p(fraction)
            rows.append(
                [
                    f"relay-added latency per video packet, {name}",
                    f"{added:+.2f} ms (through relay {relay_d.p(fraction):.2f} ms)",
                    f"direct aiortc call {direct_d.p(fraction):.2f} ms",
                    f"{relay_d.p(fraction) / direct_d.p(fraction):.1f}x"
                    if direct_d.p(fraction) > 0
                    else "-",
                    f"<= {target:.0f} ms added",
                    _met(added <= target),
                ]
            )
    if r.browser is not None:
        b = r.browser
        p50, p95 = b.p(b.click_to_frame_ms, 0.5), b.p(b.click_to_frame_ms, 0.95)
        reference = _direct_first_packet(r)
        rows.append(
            [
                f"browser: click Join -> first remote frame ({len(b.click_to_frame_ms)} joins)",
                f"p50 {fmt(p50, 0)} ms, p95 {fmt(p95, 0)} ms",
                f"direct aiortc call, offer -> first video packet: {reference}",
                "-",
                f"p50 <= {browser_join.TARGET_P50_MS:.0f} ms, p95 <= {browser_join.TARGET_P95_MS:.0f} ms",
                _met(
                    p50 is not None
                    and p95 is not None
                    and p50 <= browser_join.TARGET_P50_MS
                    and p95 <= browser_join.TARGET_P95_MS
                    and not b.failures
                ),
            ]
        )
    if r.memory is not None:
        for row in r.memory:
            rows.append(
                [
                    f"server memory per participant, {row.size} connected",
                    f"{row.per_participant_mib:.2f} MiB",
                    f"empty room: {row.run.server_rss_before_mib:.0f} MiB RSS",
                    "-",
                    "-",
                    "-",
                ]
            )
    if r.chat is not None:
        rows += chat.summary_rows(r.chat)
    return rows


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _direct_first_packet(r: Results) -> str:
    if r.latency is None or not r.latency.direct_first_packet_ms:
        return "not measured in this run"
    values = sorted(r.latency.direct_first_packet_ms)
    return f"{values[len(values) // 2]:.0f} ms (median of {len(values)})"


def report(r: Results, command: str, total_seconds: float) -> str:
    info = machine()
    parts = [
        "# meetnow benchmarks",
        "",
        "Generated by `benchmarks/run.py`; do not edit by hand, run it again. Every figure is set "
        "against a baseline measured in the same run, on the same machine, because the machines "
        "here are shared and noisy: compare ratios across runs, not absolute numbers.",
        "",
        f"Command (from the repository root): `{command}`  ",
        f"Full run took {total_seconds / 60:.1f} minutes, {waited_seconds():.0f} s of them "
        "waiting for other processes to quiet down"
        + (" (quick smoke run: short windows, few sizes)." if r.quick else "."),
        "",
        "The machine is shared: before each section the run waits (up to "
        f"{QUIET_WAIT:.0f} s, {WAIT_BUDGET_SECONDS:.0f} s in all) until other processes use less than {NOISY_PERCENT:.0f}% of a core; "
        "a room size that fails while others were busy, and the latency section if others were "
        "busy during it, are measured once more. The last table shows how busy the rest of the "
        "machine still was.",
        "",
        "## Machine",
        "",
        table(["", ""], [[k, v] for k, v in info.items()]),
        "",
        "## Summary",
        "",
        table(
            ["figure", "value", "baseline (same run)", "ratio", "target", "met"], summary_rows(r)
        ),
        "",
    ]
    if r.errors:
        parts += ["Sections that failed in this run:", ""]
        parts += [f"- {name}: `{error}`" for name, error in r.errors.items()]
        parts.append("")
    if r.density is not None:
        best = density.largest_held(r.density)
        parts += [
            "## 1. Relay density (packet forwarding)",
            "",
            "For each room size: a fresh `meetnow serve` process (`MEETNOW_RELAY_WORKERS=0`: the "
            "relay runs in that one process, so on one core; `MEETNOW_ICE_HOST_ADDRESSES=127.0.0.1`), "
            "one room from `POST /api/rooms`, and `meetnow loadtest ROOM_URL -n N --duration "
            f"{density.QUICK_DURATION if r.quick else density.DURATION:.0f} --json` in a separate "
            "process. Each synthetic participant publishes pre-encoded 640x480 30 fps VP8 (~1 Mbps) "
            "and Opus and receives everyone else (packets counted, not decrypted). Server CPU is "
            "utime+stime from `/proc/PID/stat` (all server processes), read on the loadtest's "
            f"per-second progress lines over the last {CPU_WINDOW_SECONDS} s of its measured window "
            "(which starts once everyone joined and every stream arrived). CPU per stream = server "
            "CPU / N(N-1) video streams (each with its Opus stream); implied streams per core = "
            "100 / that. Sizes grow until one fails: fps mean < "
            f"{density.MIN_FPS:.0f}, any freeze (> 0.5 s gap), or a missing stream.",
            "",
            "Columns from the loadtest's JSON: fps, freezes, first frame and loss; fps, freezes "
            "and loss (sequence gaps) cover its measured window, after every join. UDP drops are datagrams the kernel dropped because a socket's receive "
            "buffer was full (`drops` of `/proc/net/udp` for the relay's and the generator's "
            "sockets) during the CPU window: drops on the relay's sockets mean its event loop fell "
            "behind. The loadtest counts a frame at each RTP timestamp that moves forward, as "
            "frames arrive, so a window that ends on a burst (a keyframe request restarts the "
            "pre-encoded loop) can read slightly above 30.",
            "",
            density.markdown(r.density),
            "",
            f"Largest room held at 30 fps without freezes: **{best.size} participants "
            f"({best.streams} forwarded video streams)**."
            if best
            else "No room size held 30 fps in this run.",
            "",
            "The load generator runs on the same two cores: its CPU column shows how close it came "
            'to saturating its own core (at ~100% it, not the relay, limits the room). "Rest of '
            "machine\" is all other CPU use in the window (this benchmark's own sampling, the "
            "kernel, and any other process): a large value means a noisy neighbour.",
            "",
        ]
    if r.mediarelay is not None:
        parts += [
            "## 2. Baseline: aiortc MediaRelay (decode once, encode per subscriber)",
            "",
            "`benchmarks/mediarelay_server.py` runs the real server with another forwarding design "
            "installed through the seams of `signaling/relay.py`: each publisher's receiver decodes "
            "its track (no tap), `aiortc.contrib.media.MediaRelay().subscribe(track)` shares it, and "
            "each subscriber m-line gets its proxy via `sender.replaceTrack` (aiortc encodes per "
            "subscriber, VP8 and Opus, same negotiation). Measured exactly as section 1. aiortc "
            "decodes and encodes in threads, so this process can use more than one core.",
            "",
            mediarelay_baseline.markdown(r.mediarelay),
            "",
        ]
        forwarding = r.mediarelay.forwarding_largest
        baseline = density.largest_held(r.mediarelay.mediarelay)
        if forwarding and baseline and r.mediarelay.capacity_ratio:
            parts += [
                "Capacity at each design's largest room held at 30 fps: packet forwarding "
                f"{forwarding.streams_per_core:.0f} streams per core ({forwarding.size} people) vs "
                f"MediaRelay {baseline.streams_per_core:.1f} ({baseline.size} people): "
                f"**{r.mediarelay.capacity_ratio:.0f}x**.",
                "",
            ]
    if r.latency is not None:
        parts += [
            "## 3. Relay-added latency per video packet",
            "",
            "aiortc stamps each sent video packet with abs-send-time (24-bit 6.18 fixed-point NTP "
            "seconds); the relay copies it. Receivers compare it with `aiortc.clock.current_ntp_time()` "
            "as each decrypted packet arrives (64-s wraparound handled). Through the relay: 3 "
            "`ParticipantClient(decode=False)` in one room of a fresh server, each receiving 2 "
            "videos. Baseline: 3 aiortc peers in a direct full mesh (3 peer-connection pairs), "
            "same pre-encoded media, same receive path. "
            f"{latency.QUICK_DURATION if r.quick else latency.DURATION:.0f} s of packets each, in "
            f"{1 if r.quick else latency.ROUNDS} alternating rounds (direct, relay, ...), each after "
            f"{latency.WARMUP:.0f} s warm-up. Relay-added = relay percentile - direct "
            f"percentile. Targets: p50 <= {latency.TARGET_P50_MS:.0f} ms, p99 <= "
            f"{latency.TARGET_P99_MS:.0f} ms added.",
            "",
            "The load media restarts its two-second loop on a keyframe, so keyframes (a burst of "
            "tens of packets sent back to back) are far more frequent than in a real call "
            f"({r.latency.relay.keyframe_share:.0%} of the packets here); the relay forwards a burst "
            "packet by packet to every subscriber, so the tail of a burst waits behind its head. "
            "The delta-frame rows leave keyframe packets out.",
            "",
            latency.markdown(r.latency),
            "",
        ]
    if r.browser is not None:
        references = [
            ("direct aiortc call: createOffer -> first video packet", _direct_first_packet(r))
        ]
        if r.density:
            first = r.density[0].run.summary or {}
            references.append(
                (
                    f"aiortc participant through the relay ({r.density[0].size} people): join -> first frame p50",
                    f"{first.get('first_frame_ms_p50', '-')} ms",
                )
            )
        parts += [
            "## 4. Browser: click Join -> first remote frame",
            "",
            "Headless Debian Chromium through Playwright (fake camera and microphone). One "
            "synthetic participant (`meetnow loadtest -n 1`, pre-encoded VP8) stays in the room; "
            f"then {r.browser.joins} times a fresh browser context opens the room, fills in a name "
            "and clicks Join; the page records `performance.now()` at the click and when the first "
            "remote `<video>` has `videoWidth > 0` (polled each animation frame), then the context "
            f"closes. Targets: p50 <= {browser_join.TARGET_P50_MS:.0f} ms, p95 <= "
            f"{browser_join.TARGET_P95_MS:.0f} ms. Page load is reported separately; the aiortc rows "
            "are references for what the network path alone costs, not a ratio.",
            "",
            browser_join.markdown(r.browser, references),
            "",
        ]
        if r.browser.failures:
            parts += ["Failed joins:", ""] + [f"- {f}" for f in r.browser.failures] + [""]
    if r.memory is not None:
        parts += [
            "## 5. Server memory per participant",
            "",
            "Server RSS (`VmRSS` of `/proc/PID/status`, all server processes) with the room created "
            "and empty, then with N loadtest participants connected (read at the end of the "
            "measured window), fresh server for each N. The empty-room RSS is the baseline.",
            "",
            memory.markdown(r.memory),
            "",
        ]
    if r.chat is not None:
        parts += [
            "## 6. Chat command acknowledgement (Slack, Discord)",
            "",
            "Run by the adapters' own benchmarks (`benchmarks/slack_ack.py`, "
            "`benchmarks/discord_ack.py`; their docstrings describe the method and baselines), "
            "figures as they returned them. Times in ms.",
            "",
            chat.markdown(r.chat),
            "",
        ]
    parts += [WHERE_THE_TIME_GOES, ""]
    parts += [
        "## Section times and machine noise in this run",
        "",
        "Other load: CPU used meanwhile by processes this run did not start (from `/proc/stat` "
        "less this run's process tree), % of one core out of "
        f"{os.cpu_count()}00%. Well above a few percent, another job shared the machine and the "
        "section's figures are pessimistic. Not read for the browser section: Chromium hands its "
        "helper processes to init, out of this run's process tree.",
        "",
        table(
            ["section", "seconds", "other load (% of a core)"],
            [[name, f"{s:.0f}", fmt(r.other_load.get(name), 0)] for name, s in r.seconds.items()],
        ),
        "",
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run only this section (repeatable)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"write the report here (default: {DOC.relative_to(REPO)} for a full run; "
        "nothing for --quick or --only)",
    )
    args = parser.parse_args(argv)
    selected = args.only or list(SECTIONS)
    command = shlex.join([".venv/bin/python", "-m", "benchmarks.run", *sys.argv[1:]])
    started = time.monotonic()
    results = run(selected, args.quick)
    total = time.monotonic() - started
    say(f"\nAll done in {total / 60:.1f} minutes.")
    output = args.output or (DOC if not args.quick and not args.only else None)
    if output is not None:
        output.write_text(report(results, command, total))
        say(f"Report written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
