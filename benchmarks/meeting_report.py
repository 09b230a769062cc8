"""docs/benchmarks.md's parts for the meeting features: screen share, who is speaking, and what a
share costs the relay. Every figure comes from this run's ``Results``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import meeting_browser, screen_share_cost
from .common import fmt

if TYPE_CHECKING:
    from .run import Results


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def summary_rows(r: Results) -> list[list[object]]:
    rows = _meeting_rows(r.meeting) if r.meeting is not None else []
    if r.sharecost is not None:
        ratio = r.sharecost.ratio
        rows.append(
            [
                f"relay CPU per forwarded video, {r.sharecost.size}-person room with one screen "
                "share vs without",
                f"{fmt(ratio, 2)}x",
                f"without: {fmt(r.sharecost.per_stream(r.sharecost.without, 0), 3)}% of a core "
                "per video",
                "-",
                f"<= {screen_share_cost.TARGET_RATIO:.1f}x",
                _met(ratio is not None and ratio <= screen_share_cost.TARGET_RATIO),
            ]
        )
    return rows


def _meeting_rows(m: meeting_browser.FeaturesResult) -> list[list[object]]:
    share50, share95 = meeting_browser.p(m.share_ms, 0.5), meeting_browser.p(m.share_ms, 0.95)
    talk50, talk95 = meeting_browser.p(m.speaking_ms, 0.5), meeting_browser.p(m.speaking_ms, 0.95)
    return [
        [
            f"browser: Share screen -> first screen frame at the other ({len(m.share_ms)} shares)",
            f"p50 {fmt(share50, 0)} ms, p95 {fmt(share95, 0)} ms",
            "-",
            "-",
            f"p50 <= {meeting_browser.TARGET_SHARE_P50_MS:.0f} ms",
            _met(share50 is not None and share50 <= meeting_browser.TARGET_SHARE_P50_MS),
        ],
        [
            f"browser: speech onset -> marked speaking at the other ({len(m.speaking_ms)} onsets)",
            f"p50 {fmt(talk50, 0)} ms, p95 {fmt(talk95, 0)} ms",
            f"{fmt(m.flaps_per_min, 1)} flaps/min over {fmt(m.turns_per_min, 1)} turns/min",
            "-",
            f"p50 <= {meeting_browser.TARGET_SPEAKING_P50_MS:.0f} ms",
            _met(talk50 is not None and talk50 <= meeting_browser.TARGET_SPEAKING_P50_MS),
        ],
    ]


def sections(r: Results) -> list[str]:
    parts: list[str] = []
    if r.meeting is not None:
        parts += [
            "## 4b. Browser: screen share and who is speaking",
            "",
            "Headless Debian Chromium through Playwright, two browser processes in one room, each "
            "with a fake microphone playing a WAV made by the benchmark (speech-like syllables "
            f"for {meeting_browser.SPEECH_SECONDS:.0f} s, then as long silent, looped; the second "
            "browser starts half a period later, so they take turns) and the fake camera and "
            f"screen. Share: {r.meeting.shares} times the first clicks Share screen; from the "
            "click to the first presented frame (`requestVideoFrameCallback`) of the screen tile "
            "at the other, then Stop sharing. Speaking: each page finds its own speech onsets on "
            "its microphone (an `AnalyserNode`); from an onset to `data-speaking` on that "
            "person's tile at the other page. Flapping: the dominant speaker named in the "
            f"`speakers` messages one page received over {r.meeting.speak_seconds:.0f} s. Both "
            "pages stamp with `performance.timeOrigin + performance.now()` (the machine's clock).",
            "",
            meeting_browser.markdown(r.meeting),
            "",
        ]
        if r.meeting.failures:
            parts += ["Failed:", ""] + [f"- {f}" for f in r.meeting.failures] + [""]
    if r.sharecost is not None:
        parts += [
            "## 4c. Relay CPU of a screen share",
            "",
            f"A {r.sharecost.size}-person room of `meetnow loadtest` participants with one of "
            "them sharing a screen (`--screens 1`: the same pre-encoded video, one more "
            "forwarded video to each of the others) against the same room without, "
            f"{len(r.sharecost.without)} interleaved pairs, a fresh `meetnow serve` each (relay "
            "in one process). CPU is the server's over the loadtest's measured window.",
            "",
            screen_share_cost.markdown(r.sharecost),
            "",
        ]
    return parts
