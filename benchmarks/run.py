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
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import browser_join, density, latency, mediarelay_baseline, memory
from .common import REPO, fmt, machine, say, table

SECTIONS = ("density", "mediarelay", "latency", "browser", "memory", "chat")
DOC = REPO / "docs" / "benchmarks.md"
CHAT_NOT_MEASURED = "not measured yet: the Slack and Discord adapters are issues 4 and 5"


@dataclass
class Results:
    quick: bool
    density: list[density.DensityRow] | None = None
    mediarelay: mediarelay_baseline.BaselineResult | None = None
    latency: latency.LatencyResult | None = None
    browser: browser_join.BrowserResult | None = None
    memory: list[memory.MemoryRow] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_section(results: Results, name: str, action: Callable[[], Any]) -> None:
    say(f"\n== {name}")
    started = time.monotonic()
    try:
        setattr(results, name, action())
    except Exception as error:  # one broken section must not lose the others' figures
        traceback.print_exc()
        results.errors[name] = f"{type(error).__name__}: {error}"
        say(f"  {name} failed: {results.errors[name]}")
    results.seconds[name] = time.monotonic() - started
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
        run_section(results, "latency", lambda: latency.measure(seconds))
    if "browser" in selected:
        joins = browser_join.QUICK_JOINS if quick else browser_join.JOINS
        run_section(results, "browser", lambda: browser_join.measure(joins))
    if "memory" in selected:
        memory_sizes: Sequence[int] = memory.QUICK_SIZES if quick else memory.SIZES
        reuse = [row.run for row in results.density or []]
        run_section(results, "memory", lambda: memory.measure(memory_sizes, reuse))
    if "chat" in selected:
        say(f"\n== chat\n  Slack and Discord command acknowledgement: {CHAT_NOT_MEASURED}")
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
                f"{best.size} people, {best.streams} video streams" if best else "none",
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
        for name, fraction, added, target in (
            ("p50", 0.5, lat.added_p50, latency.TARGET_P50_MS),
            ("p99", 0.99, lat.added_p99, latency.TARGET_P99_MS),
        ):
            rows.append(
                [
                    f"relay-added latency per video packet, {name}",
                    f"{added:+.2f} ms (through relay {lat.relay.p(fraction):.2f} ms)",
                    f"direct aiortc call {lat.direct.p(fraction):.2f} ms",
                    f"{lat.relay.p(fraction) / lat.direct.p(fraction):.1f}x"
                    if lat.direct.p(fraction) > 0
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
    rows.append(
        ["chat command acknowledgement (Slack, Discord)", CHAT_NOT_MEASURED, "-", "-", "-", "-"]
    )
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
        f"Full run took {total_seconds / 60:.1f} minutes"
        + (" (quick smoke run: short windows, few sizes)." if r.quick else "."),
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
            "For each room size: a fresh `meetnow serve` process (`MEETNOW_RELAY_WORKERS=0` where "
            "that setting exists, so one process and one core; `MEETNOW_ICE_HOST_ADDRESSES=127.0.0.1`), "
            "one room from `POST /api/rooms`, and `meetnow loadtest ROOM_URL -n N --duration "
            f"{density.QUICK_DURATION if r.quick else density.DURATION:.0f} --json` in a separate "
            "process. Each synthetic participant publishes pre-encoded 640x480 30 fps VP8 (~1 Mbps) "
            "and Opus and receives everyone else (packets counted, not decoded). Server CPU is "
            "utime+stime from `/proc/PID/stat` (all server processes) over the loadtest's measured "
            "window (its per-second progress lines, after everyone joined and every stream "
            "arrived). CPU per stream = server CPU / N(N-1) video streams (each with its Opus "
            "stream). Sizes grow until one fails: fps mean < "
            f"{density.MIN_FPS:.0f}, any freeze (> 0.5 s gap), or a missing stream.",
            "",
            density.markdown(r.density),
            "",
            f"Largest room held at 30 fps without freezes: **{best.size} participants "
            f"({best.streams} forwarded video streams)**."
            if best
            else "No room size held 30 fps in this run.",
            "",
            "The load generator runs on the same two cores: its CPU column shows how close it came "
            "to saturating its own core (at ~100% it, not the relay, limits the room).",
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
            f"{latency.QUICK_DURATION if r.quick else latency.DURATION:.0f} s of packets each, "
            f"after {latency.WARMUP:.0f} s warm-up. Relay-added = relay percentile - direct "
            f"percentile. Targets: p50 <= {latency.TARGET_P50_MS:.0f} ms, p99 <= "
            f"{latency.TARGET_P99_MS:.0f} ms added.",
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
    parts += [
        "## 6. Chat command acknowledgement (Slack, Discord)",
        "",
        table(
            ["adapter", "acknowledgement time"],
            [["Slack", CHAT_NOT_MEASURED], ["Discord", CHAT_NOT_MEASURED]],
        ),
        "",
        "## Section times in this run",
        "",
        table(["section", "seconds"], [[name, f"{s:.0f}"] for name, s in r.seconds.items()]),
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
