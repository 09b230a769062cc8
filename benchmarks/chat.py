"""Chat command acknowledgement: how fast ``/meetnow`` is answered on Slack and on Discord.

The measurements live with the adapters' benchmarks, ``benchmarks/slack_ack.py`` and
``benchmarks/discord_ack.py`` (each ``async run(quick) -> dict`` of figures, with its own
baseline); this section runs whichever exists and reports its figures as they come. Without an
adapter's benchmark it says so, and nothing is made up.
"""

from __future__ import annotations

import asyncio
import importlib
import traceback
from dataclasses import dataclass
from typing import Any

from .common import say, table

ADAPTERS = (("Slack", "benchmarks.slack_ack"), ("Discord", "benchmarks.discord_ack"))
NOT_MEASURED = "not measured yet: the Slack and Discord adapters are issues 4 and 5"


@dataclass
class ChatResult:
    adapter: str
    figures: dict[str, Any] | None
    """What the adapter's benchmark returned; None if it did not run."""
    note: str = ""


def measure(quick: bool) -> list[ChatResult]:
    results = []
    for adapter, module_name in ADAPTERS:
        say(f"  {adapter}:")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            results.append(ChatResult(adapter, None, NOT_MEASURED))
            say(f"  {adapter}: {NOT_MEASURED}")
            continue
        try:
            figures: dict[str, Any] = asyncio.run(module.run(quick))
        except Exception as error:  # one adapter's failure must not lose the other's figures
            traceback.print_exc()
            results.append(ChatResult(adapter, None, f"failed: {type(error).__name__}: {error}"))
            continue
        results.append(ChatResult(adapter, figures))
    return results


def flatten(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += flatten(value, f"{name}.")
        elif isinstance(value, float):
            rows.append((name, f"{value:.3f}"))
        else:
            rows.append((name, str(value)))
    return rows


def _ms(value: Any) -> str:
    return f"{value:.2f} ms" if isinstance(value, int | float) else "-"


def summary_rows(results: list[ChatResult]) -> list[list[object]]:
    """One line per adapter for the summary table (figure, value, baseline, ratio, target, met)."""
    rows: list[list[object]] = []
    for result in results:
        f = result.figures
        label = f"{result.adapter}: command acknowledgement"
        if f is None:
            rows.append([label, result.note, "-", "-", "-", "-"])
        elif result.adapter == "Slack" and isinstance(f.get("ack_ms"), dict):
            ack, base = f["ack_ms"], f.get("healthz_ms") or {}
            target = f.get("target_p99_ms")
            p99 = ack.get("p99")
            rows.append(
                [
                    f"{label}, server side ({f.get('commands', '?')} signed slash commands)",
                    f"p50 {_ms(ack.get('p50'))}, p99 {_ms(p99)}",
                    f"GET /healthz p50 {_ms(base.get('p50'))}, p99 {_ms(base.get('p99'))}",
                    f"{f['ratio_p99']:.0f}x at p99" if "ratio_p99" in f else "-",
                    f"p99 <= {target:.0f} ms (Slack allows 3 s)" if target else "Slack allows 3 s",
                    ("yes" if p99 <= target else "**no**") if target and p99 is not None else "-",
                ]
            )
        elif result.adapter == "Discord" and "gateway_p50_ms" in f:
            rows.append(
                [
                    f"{label}, gateway bot ({f.get('interactions', '?')} interactions)",
                    f"p50 {_ms(f['gateway_p50_ms'])}, p99 {_ms(f.get('gateway_p99_ms'))}; "
                    f"HTTP endpoint p50 {_ms(f.get('http_p50_ms'))}, "
                    f"p99 {_ms(f.get('http_p99_ms'))}",
                    f"raw websocket -> REST p50 {_ms(f.get('baseline_p50_ms'))}, "
                    f"p99 {_ms(f.get('baseline_p99_ms'))}",
                    f"{f['ratio_p99']:.1f}x at p99" if "ratio_p99" in f else "-",
                    "Discord allows 3 s",
                    "yes" if f.get("gateway_p99_ms", 1e9) <= 3000 else "**no**",
                ]
            )
        else:
            rows.append([label, "see section 6", "-", "-", "-", "-"])
    return rows


def markdown(results: list[ChatResult]) -> str:
    parts = []
    for result in results:
        parts.append(f"**{result.adapter}** (`{dict(ADAPTERS)[result.adapter]}`)")
        parts.append("")
        if result.figures is None:
            parts.append(result.note)
        else:
            parts.append(table(["figure", "value"], [list(row) for row in flatten(result.figures)]))
        parts.append("")
    return "\n".join(parts)
