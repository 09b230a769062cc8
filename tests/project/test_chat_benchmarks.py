"""The chat benchmarks time what they name: every ``/meetnow`` they send must get a room (and, on
Slack, its card), or the run fails. Before, a store filled by earlier runs turned every command
away and the Slack figures timed the refusal ("too many open rooms"), 0 cards posted."""

from __future__ import annotations

import pytest

from benchmarks import discord_ack, slack_ack
from benchmarks.common import InvalidMeasurement

SMALL = 5


@pytest.fixture
def small_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handful of commands: enough to meet both the warm-up and the measured ones."""
    monkeypatch.setattr(slack_ack, "QUICK_COMMANDS", SMALL)
    monkeypatch.setattr(slack_ack, "WARMUP", 2)
    monkeypatch.setattr(discord_ack, "QUICK_INTERACTIONS", SMALL)
    monkeypatch.setattr(discord_ack, "WARMUP", 2)


@pytest.mark.usefixtures("small_runs")
async def test_the_slack_benchmark_times_commands_that_made_rooms_and_cards() -> None:
    figures = await slack_ack.run(True)
    assert figures["commands"] == SMALL
    assert figures["cards_posted"] == SMALL + 2


@pytest.mark.usefixtures("small_runs")
async def test_the_slack_benchmark_fails_when_its_commands_are_refused() -> None:
    # Room for the warm-up only: the first measured command is refused, and the run says so.
    with pytest.raises(InvalidMeasurement, match="too many open rooms"):
        await slack_ack.run(True, max_rooms=2)


@pytest.mark.usefixtures("small_runs")
async def test_the_discord_benchmark_times_interactions_that_made_rooms() -> None:
    figures = await discord_ack.run(True)
    assert figures["interactions"] == SMALL
    assert figures["gateway_p99_ms"] > 0 and figures["http_p99_ms"] > 0


@pytest.mark.usefixtures("small_runs")
@pytest.mark.parametrize(
    "max_rooms",
    [
        pytest.param(2, id="gateway"),  # refused on the gateway, after its warm-up
        # The gateway's rooms fit; the HTTP endpoint's do not.
        pytest.param(SMALL + 2 + 1, id="http"),
    ],
)
async def test_the_discord_benchmark_fails_when_its_interactions_are_refused(
    max_rooms: int,
) -> None:
    with pytest.raises(InvalidMeasurement, match="too many open rooms"):
        await discord_ack.run(True, max_rooms=max_rooms)
