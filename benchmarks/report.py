"""docs/benchmarks.md from one run's results: every number in it comes from that run.

Prose states how things were measured; any figure in a sentence is formatted from ``Results``.
A section that did not run is left out, never filled in from an earlier run.
"""

from __future__ import annotations

import os

from . import (
    browser_join,
    chat,
    density,
    latency,
    mediarelay_baseline,
    meeting_report,
    memory,
    multinode_report,
    network_report,
    profile_relay,
)
from .common import (
    CPU_WINDOW_SECONDS,
    HELD_MAX_LOSS_PERCENT,
    NOISY_PERCENT,
    WAIT_BUDGET_SECONDS,
    fmt,
    machine,
    table,
    waited_seconds,
)
from .run import QUIET_WAIT, Results


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
        for size in r.latency.sizes.values():
            direct_delta, relay_delta = size.direct.delta_frames(), size.relay.delta_frames()
            for name, direct_d, relay_d, fraction, target in (
                ("all packets, p50", size.direct, size.relay, 0.5, latency.TARGET_P50_MS),
                ("all packets, p99", size.direct, size.relay, 0.99, latency.TARGET_P99_MS),
                ("delta frames, p99", direct_delta, relay_delta, 0.99, latency.TARGET_P99_MS),
            ):
                added = relay_d.p(fraction) - direct_d.p(fraction)
                rows.append(
                    [
                        f"relay-added latency per video packet, {size.people} people, {name}",
                        f"{added:+.2f} ms (through the relay {relay_d.p(fraction):.2f} ms)",
                        f"direct aiortc mesh {direct_d.p(fraction):.2f} ms",
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
    rows += meeting_report.summary_rows(r)
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
    if r.network is not None:
        rows += network_report.summary_rows(r.network)
    rows += multinode_report.summary_rows(r)
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
        + (" (quick run: short windows, few sizes)." if r.quick else "."),
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
            f"{r.plan.density_seconds:.0f} --json` in a separate "
            "process. Each synthetic participant publishes pre-encoded 640x480 30 fps VP8 (~1 Mbps) "
            "and Opus and receives everyone else (packets counted, not decrypted). Server CPU is "
            "utime+stime from `/proc/PID/stat` (all server processes), read on the loadtest's "
            f"per-second progress lines over the last {CPU_WINDOW_SECONDS} s of its measured window "
            "(which starts once everyone joined and every stream arrived). CPU per stream = server "
            "CPU / N(N-1) video streams (each with its Opus stream); streams per core = 100 / "
            "that, stated only for sizes that held. The synthetic receivers answer as a browser "
            "does (receiver reports and REMB each second, NACKs for gaps, a PLI when a stream "
            "starts), so the relay carries its real feedback load.",
            "",
            "A size holds only if, over the measured window, every video stream ran at "
            f"{density.MIN_FPS:.0f} fps or more (the slowest stream, not the mean), no stream froze "
            "(a gap over 0.5 s between frames, a stall at the end of the window included), every "
            f"stream arrived, and loss was at most {HELD_MAX_LOSS_PERCENT:.0f}%. Sizes grow until "
            "one fails.",
            "",
            "fps, freezes and loss (sequence gaps) cover the loadtest's measured window, after "
            "every join; first frame is from each join. The publishers are paced by the clock "
            "(a late frame never leaves in a burst), so no stream reads above 30 fps from a "
            "backlog. UDP drops are datagrams the kernel dropped because a socket's receive "
            "buffer was full (`drops` of `/proc/net/udp` for the relay's and the generator's "
            "sockets) during the CPU window: drops on the relay's sockets mean its event loop fell "
            "behind.",
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
            "as each decrypted packet arrives (64-s wraparound handled). Baseline: the same people "
            "in a direct aiortc full mesh on loopback; through the relay: one room of a fresh "
            "`meetnow serve` (one relay process). Room sizes "
            + ", ".join(str(n) for n in r.latency.sizes)
            + f"; {r.plan.latency_seconds:.0f} s of packets per path and size (longer until "
            f"{r.latency.min_packets} packets are in), in "
            f"{r.plan.latency_rounds} alternating rounds (direct, relay, ...), each after "
            f"{latency.WARMUP:.0f} s warm-up. Relay-added = relay percentile - direct "
            f"percentile. Targets: p50 <= {latency.TARGET_P50_MS:.0f} ms, p99 <= "
            f"{latency.TARGET_P99_MS:.0f} ms added. The media (`benchmarks/latency.py`) restarts "
            "its loop on a keyframe, so keyframe bursts are more frequent than in a real call "
            f"({r.latency.relay.keyframe_share:.0%} of the packets through the relay at "
            f"{r.latency.headline.people} people); the relay forwards a burst packet by packet to "
            "every subscriber, so the tail of a burst waits behind its head. The delta-frame rows "
            "leave keyframe packets out.",
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
            "remote `<video>` presents a frame (`requestVideoFrameCallback`), then the context "
            f"closes. Targets: p50 <= {browser_join.TARGET_P50_MS:.0f} ms, p95 <= "
            f"{browser_join.TARGET_P95_MS:.0f} ms. Page load is reported separately; the aiortc rows "
            "are references for what the network path alone costs, not a ratio.",
            "",
            browser_join.markdown(r.browser, references),
            "",
        ]
        if r.browser.failures:
            parts += ["Failed joins:", ""] + [f"- {f}" for f in r.browser.failures] + [""]
    parts += meeting_report.sections(r)
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
    if r.profile is not None:
        parts += [
            "## 6. Where the relay's time goes (profile)",
            "",
            f"`meetnow serve` under cProfile (`benchmarks/profiled_server.py`) with "
            f"{r.profile.run.participants} loadtest participants for "
            f"{r.plan.profile_seconds:.0f} s, joins included. cProfile slows Python code down, so "
            "read the split, not the CPU. Shares are of the time the process was busy (waiting in "
            f"`epoll` left out): {r.profile.busy_seconds:.1f} s of own time in this run.",
            "",
            profile_relay.markdown(r.profile),
            "",
        ]
    if r.chat is not None:
        parts += [
            "## 7. Chat command acknowledgement (Slack, Discord)",
            "",
            "Run by the adapters' own benchmarks (`benchmarks/slack_ack.py`, "
            "`benchmarks/discord_ack.py`; their docstrings describe the method and baselines), "
            "figures as they returned them. Times in ms.",
            "",
            chat.markdown(r.chat),
            "",
        ]
    if r.network is not None:
        parts += ["## 8. Calls on impaired networks", "", network_report.markdown(r.network), ""]
    parts += multinode_report.sections(r)
    parts += [obstacles(r), ""]
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


def obstacles(r: Results) -> str:
    """What stands in the way of the targets: how each was measured, with this run's figures only."""
    lines = ["## What stands in the way, and what would close it", ""]
    head = r.mediarelay.headline if r.mediarelay else None
    baseline = density.largest_held(r.mediarelay.mediarelay) if r.mediarelay else None
    failed = next(
        (row for row in (r.mediarelay.mediarelay if r.mediarelay else []) if not row.held), None
    )
    if head is not None and head.ratio < mediarelay_baseline.TARGET_RATIO:
        text = (
            f"**The >= {mediarelay_baseline.TARGET_RATIO:.0f}x ratio at equal room size.** In this run "
            f"the two designs meet at {head.size} people, where MediaRelay costs {head.ratio:.1f}x "
            "as much CPU per stream."
        )
        if baseline is not None and failed is not None:
            text += (
                f" MediaRelay held {baseline.size} people and failed at {failed.size} "
                f"({failed.run.failure(density.MIN_FPS)}, {failed.run.server_cpu_percent:.0f}% "
                "CPU), so no larger common size exists."
            )
        text += (
            " At small sizes packet forwarding's cost per participant that does not depend on the "
            "room size (receiving, SRTP decryption, the bandwidth estimator, RTCP, renegotiation at "
            "each join) dominates its per-stream figure."
        )
        lines += [text, ""]
    if r.mediarelay is not None and r.mediarelay.capacity_ratio and baseline:
        largest = r.mediarelay.forwarding_largest
        assert largest is not None
        lines += [
            f"Compared at each design's largest room held, packet forwarding holds "
            f"{r.mediarelay.capacity_ratio:.0f}x as many streams per core ({largest.size} people: "
            f"{largest.cpu_per_stream:.3f}% of a core per stream).",
            "",
        ]
    if r.profile is not None:
        shares = dict(r.profile.categories)
        lines += [
            f"The profile (section 6, {r.profile.run.participants} people) puts "
            + ", ".join(f"{share:.0%} in {name}" for name, share in r.profile.categories)
            + " of the relay's busy time."
            + (
                " Sending dominates: batching a packet's fan-out into one `sendmmsg` call (a small "
                "C extension: Python has no `sendmmsg`) would cut the system calls."
                if shares.get(profile_relay.CATEGORIES[0][0], 0.0) >= 0.1
                else ""
            )
            + " A cheaper bandwidth estimate (sampling, or TWCC when aiortc has it) and joins that "
            "renegotiate only the sessions whose m-lines changed would cut the rest. None of that "
            "changes the design.",
            "",
        ]
    lines += [
        "**Every core.** `meetnow serve` runs one relay worker per core (`MEETNOW_RELAY_WORKERS`) "
        "and pins each room to one, so a machine holds (streams per core above) x (cores), in "
        "rooms of at most one core each. The density section runs the relay in one process on "
        f"purpose, to measure one core. On this {os.cpu_count()}-core machine the load generator "
        "needs a core of its own, so the workers cannot all be driven to saturation here; "
        "`tests/signaling/test_workers.py` shows rooms landing on different workers, media flowing through "
        "both, and a crashed worker disconnecting only its rooms.",
    ]
    return "\n".join(lines)
