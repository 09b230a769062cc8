"""The network section of docs/benchmarks.md, every figure from one run's ``NetworkResult``."""

from __future__ import annotations

from .common import table
from .network import (
    CAPPED_KBPS,
    CAPPED_PARTICIPANTS,
    CONDITIONS,
    GUESTS,
    CappedCheck,
    NetworkResult,
)
from .network_figures import FREEZE_MS, PathRun, capped_target, freezes_target


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "yes" if ok else "**no**"


def _is_cap(condition: str) -> bool:
    return bool(CONDITIONS[condition].downlink_kbps)


def target(result: NetworkResult, condition: str) -> tuple[str, bool | None]:
    """The issue's target for one condition, and whether this run met it."""
    relay, direct = result.pair(condition)
    if _is_cap(condition):
        return "every video >= 10 fps, no freeze over 2 s", capped_target(relay) if relay else None
    met = freezes_target(relay, direct) if relay and direct else None
    return "freezes/min/video <= peer to peer + 0.1", met


def _cell(run: PathRun | None) -> str:
    if run is None:
        return "not measured"
    if not run.measured:
        return f"not measured: {run.note}"
    return (
        f"{_fmt(run.freezes_per_minute, 2)} freezes/min/video ({_fmt(run.frozen_s)} s frozen of "
        f"{run.window_s * len(run.videos or []):.0f}); fps min {_fmt(run.fps_min)}, mean "
        f"{_fmt(run.fps_mean)}; longest gap {_fmt(run.longest_gap_s, 2)} s; "
        f"{_fmt(run.video_kbps, 0)} kbit/s per video; audio concealed "
        f"{_fmt(run.audio_concealed_percent, 2)}%" + (f" ({run.note})" if run.note else "")
    )


def summary_rows(result: NetworkResult) -> list[list[object]]:
    rows: list[list[object]] = []
    for condition in CONDITIONS:
        relay, direct = result.pair(condition)
        if relay is None:
            continue
        goal, met = target(result, condition)
        rows.append(
            [
                f"browsers on impaired links: {condition}",
                f"{_fmt(relay.freezes_per_minute, 2)} freezes/min/video, fps min "
                f"{_fmt(relay.fps_min)}",
                f"Chromium peer to peer: {_fmt(direct.freezes_per_minute if direct else None, 2)} "
                f"freezes/min/video, fps min {_fmt(direct.fps_min if direct else None)}",
                "-",
                goal,
                _verdict(met),
            ]
        )
    if result.capped is not None and result.capped.rows:
        rows.append(_capped_summary(result.capped))
    return rows


def _capped_summary(check: CappedCheck) -> list[object]:
    capped = check.capped or {}
    others = min((row["video_fps_min"] for row in check.others), default=None)
    return [
        f"{CAPPED_PARTICIPANTS}-person room (load generator), one subscriber at "
        f"{CAPPED_KBPS:g} kbit/s",
        f"others fps min {_fmt(others)}, capped one {_fmt(capped.get('video_fps_min'))}",
        "-",
        "-",
        "others >= 28 fps, the capped one >= 10 fps",
        _verdict(check.met()),
    ]


def markdown(result: NetworkResult) -> str:
    parts = [
        f"{GUESTS} headless Chromium guests (fake camera and microphone), each in a network "
        "namespace of its own behind an access link that the condition impairs, and "
        "`meetnow serve` in another behind a clean link (`benchmarks/netns.py`: a hub namespace "
        "routes between them; nftables drops packets at random on each guest link, both ways; "
        "an NFQUEUE program, `benchmarks/nfqueue_delay.py`, holds each packet delay ± jitter ms, "
        "uniform, so packets reorder; `tbf` on the hub's side caps a guest's downlink; this "
        "kernel has no `netem`). Per condition the guests join a fresh meetnow room, then "
        "connect directly to each other over the same links (`benchmarks/p2p_mesh.py`, Chromium's "
        "own defaults): both paths cross the same impaired links (guest uplink, guest "
        "downlink), so peer to peer is the baseline. Frames are counted by "
        f"`requestVideoFrameCallback`; a freeze is a gap of more than {FREEZE_MS:.0f} ms between "
        "presented frames, the window's edges included; a remote video a guest never got "
        "(its sender never entered the call) counts as frozen for the whole window, at 0 fps.",
        "",
    ]
    if result.skipped:
        parts += [f"Browser conditions: {result.skipped}.", ""]
    if result.runs:
        rows = []
        for condition in CONDITIONS:
            relay, direct = result.pair(condition)
            goal, met = target(result, condition)
            rows.append([condition, _cell(relay), _cell(direct), f"{goal}: {_verdict(met)}"])
        parts += [
            table(["condition", "through meetnow", "Chromium peer to peer", "target: met"], rows),
            "",
        ]
    if result.capped is not None:
        parts += [_capped_markdown(result.capped), ""]
    return "\n".join(parts)


def _capped_markdown(check: CappedCheck) -> str:
    head = (
        f"Load generator ({CAPPED_PARTICIPANTS} synthetic participants, `run_loadtest` with "
        f"`participant_impairments` and `layers=3`, {check.seconds:.0f} s window): "
        f"{check.impairment}. The synthetic publishers send pre-encoded VP8 with temporal "
        "layers (L1T3: layer ids 0, 2, 1, 2, as browsers publish) at a fixed ~1 Mbit/s, which "
        "they do not lower on REMB; the cap (a token bucket of 16 kB, 150 ms queue, as `tbf`) "
        "applies only to what the capped participant receives, so its own video reaches the "
        "others at full rate and the relay may forward it only the layers its link takes. "
        f"Target: the others >= 28 fps, the capped one >= 10 fps: {_verdict(check.met())}."
    )
    rows = [
        [
            row["name"],
            f"{row['video_fps_min']:.1f}",
            f"{row['video_fps_mean']:.1f}",
            f"{row['received_kbps']:.0f}",
            row["freezes"],
            f"{row['loss_percent']:.2f}",
        ]
        for row in check.rows
    ]
    return (
        head
        + "\n\n"
        + table(["participant", "fps min", "fps mean", "kbit/s in", "freezes", "loss %"], rows)
    )
