"""What ``meetnow serve`` tells the operator at start, through the real CLI in a subprocess (an
empty working directory, a clean environment): the summary, each warning naming the variable to
set, unknown ``MEETNOW_`` names without their values, settings errors, ``--version``."""

from __future__ import annotations

import signal
import subprocess
from importlib.metadata import version
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..conftest import free_port
from ..support.serve_process import clean_environment, meetnow_command

START_TIMEOUT = 30.0
NOWHERE = "http://127.0.0.1:9/"
"""A Web API base nothing answers on (the Slack adapter asks it at start and gives up)."""


def serve_output(directory: Path, *arguments: str, **settings: str) -> list[str]:
    """Everything ``meetnow serve`` prints from start to a Ctrl-C after "meetnow is running"
    (stdout and stderr). Stopping first means every line it would ever print at start is in:
    a warning missing from it was never printed."""
    port = free_port()
    env = clean_environment(directory, MEETNOW_RELAY_WORKERS="0", **settings)
    process = subprocess.Popen(
        [*meetnow_command(), "serve", "--port", str(port), *arguments],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if "meetnow is running" in line:
                break
        assert lines and "meetnow is running" in lines[-1], lines
        process.send_signal(signal.SIGINT)
        lines += [line.rstrip("\n") for line in process.stdout]
        assert process.wait(timeout=START_TIMEOUT) == 0, lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return lines


def warnings_of(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("warning: ")]


def values_printed(lines: list[str], values: list[str]) -> list[str]:
    """Which of ``values`` appear anywhere in the output."""
    text = "\n".join(lines)
    return [value for value in values if value in text]


def run_cli(directory: Path, *arguments: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*meetnow_command(), *arguments],
        cwd=directory,
        env=clean_environment(directory, **settings),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )


def test_summary_of_a_plain_local_server_and_no_warning(tmp_path: Path) -> None:
    lines = serve_output(
        tmp_path,
        "--host",
        "127.0.0.1",
        MEETNOW_ICE_HOST_ADDRESSES="127.0.0.1",
        MEETNOW_ICE_PORT_RANGE="41000-41249",
    )
    assert lines[0].startswith("meetnow is running: open http://127.0.0.1:"), lines
    summary = "\n".join(lines)
    assert "listening: 127.0.0.1:" in summary
    assert "relay:     the relay runs in the main process" in summary
    assert "addresses 127.0.0.1; UDP ports 41000-41249: room for 250 participants" in summary
    assert "TURN:      off" in summary
    assert "chat:      none" in summary
    assert warnings_of(lines) == []


def test_links_to_0000_name_the_public_url_variable(tmp_path: Path) -> None:
    lines = serve_output(tmp_path, "--host", "0.0.0.0")
    [warning] = warnings_of(lines)
    assert "links would point at http://0.0.0.0:" in warning
    assert "set MEETNOW_PUBLIC_URL" in warning
    assert "UDP ports: the OS's ephemeral range" in "\n".join(lines)


def test_loopback_links_on_a_public_listener(tmp_path: Path) -> None:
    lines = serve_output(tmp_path, "--host", "0.0.0.0", MEETNOW_PUBLIC_URL="http://localhost:8080")
    [warning] = warnings_of(lines)
    assert "only this machine can open" in warning and "MEETNOW_PUBLIC_URL" in warning


def test_plain_http_links_on_a_public_listener(tmp_path: Path) -> None:
    lines = serve_output(
        tmp_path, "--host", "0.0.0.0", MEETNOW_PUBLIC_URL="http://meet.example.org"
    )
    [warning] = warnings_of(lines)
    assert "plain http://meet.example.org/" in warning and "MEETNOW_PUBLIC_URL" in warning
    # Behind a TLS proxy, the same listener is right: no warning.
    lines = serve_output(
        tmp_path, "--host", "0.0.0.0", MEETNOW_PUBLIC_URL="https://meet.example.org"
    )
    assert warnings_of(lines) == []
    assert "links:     https://meet.example.org/" in "\n".join(lines)


def test_half_configured_slack_discord_and_turn(tmp_path: Path) -> None:
    public_key = (
        Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    lines = serve_output(
        tmp_path,
        MEETNOW_SLACK_BOT_TOKEN="xoxb-half-configured",
        MEETNOW_SLACK_API_URL=NOWHERE,
        MEETNOW_DISCORD_PUBLIC_KEY=public_key.hex(),
        MEETNOW_TURN_URLS="turn:127.0.0.1:3478?transport=udp",
    )
    warnings = "\n".join(warnings_of(lines))
    assert "MEETNOW_SLACK_SIGNING_SECRET" in warnings and "MEETNOW_SLACK_APP_TOKEN" in warnings
    assert "MEETNOW_DISCORD_APPLICATION_ID" in warnings
    assert "MEETNOW_TURN_SECRET" in warnings
    assert len(warnings_of(lines)) == 3, warnings
    summary = "\n".join(lines)
    assert "Slack (no way to receive commands)" in summary
    assert "Discord (interactions at /discord/interactions)" in summary
    assert "TURN:      off" in summary

    # The other halves: secrets without what they belong to.
    lines = serve_output(
        tmp_path,
        MEETNOW_SLACK_SIGNING_SECRET="half",
        MEETNOW_DISCORD_APPLICATION_ID="123456789012345678",
        MEETNOW_TURN_SECRET="half",
    )
    warnings = "\n".join(warnings_of(lines))
    assert "set MEETNOW_SLACK_BOT_TOKEN" in warnings
    assert "set MEETNOW_DISCORD_TOKEN" in warnings and "MEETNOW_DISCORD_PUBLIC_KEY" in warnings
    assert "set MEETNOW_TURN_URLS" in warnings
    assert len(warnings_of(lines)) == 3, warnings


def test_unknown_variables_are_named_never_their_values(tmp_path: Path) -> None:
    secrets = ["environment-value-5f1c9e", "dotenv-value-a83b27"]
    (tmp_path / ".env").write_text(
        f"MEETNOW_SLACK_SIGNNG_SECRET={secrets[1]}\nOTHER_TOOL_SETTING=1\n"
    )
    lines = serve_output(tmp_path, MEETNOW_PUBILC_URL=secrets[0])
    warnings = warnings_of(lines)
    assert any(
        "MEETNOW_PUBILC_URL is not a meetnow setting" in w and "MEETNOW_PUBLIC_URL?" in w
        for w in warnings
    ), warnings
    assert any("MEETNOW_SLACK_SIGNNG_SECRET is not a meetnow setting" in w for w in warnings)
    assert not any("OTHER_TOOL_SETTING" in w for w in warnings)
    assert values_printed(lines, secrets) == []


def test_the_value_check_finds_a_value_that_is_printed(tmp_path: Path) -> None:
    """Test of the test: the same check, on the same output stream, finds a value the server
    does print (its public URL, in the summary)."""
    value = "https://printed-value-0c7d.example"
    lines = serve_output(tmp_path, MEETNOW_PUBLIC_URL=value)
    assert values_printed(lines, [value, "never-printed-4e2a"]) == [value]


def test_settings_errors_name_the_variable_and_a_valid_value(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path,
        "serve",
        MEETNOW_PORT="notaport",
        MEETNOW_ICE_PORT_RANGE="40999-40000",
        MEETNOW_PUBLIC_URL="ftp://meet.example",
        MEETNOW_SLACK_BOT_TOKEN="xoxb-never-printed",
        MEETNOW_ROOM_MAX_PARTICIPANTS="1",
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "running" not in result.stdout
    problems = result.stderr.splitlines()[1:]
    assert len(problems) == 4, result.stderr
    by_variable = {line.split(":")[0].strip(): line for line in problems}
    assert "e.g. 8080" in by_variable["MEETNOW_PORT"]
    assert "e.g. 40000-40999" in by_variable["MEETNOW_ICE_PORT_RANGE"]
    assert "e.g. https://meet.example.org" in by_variable["MEETNOW_PUBLIC_URL"]
    assert "greater than or equal to 2" in by_variable["MEETNOW_ROOM_MAX_PARTICIPANTS"]
    assert "xoxb-never-printed" not in result.stderr


def test_json_and_command_line_errors(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "serve", MEETNOW_ICE_SERVERS="stun:stun.example.org")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "MEETNOW_ICE_SERVERS: not valid JSON; expected JSON, e.g. [" in result.stderr
    result = run_cli(tmp_path, "serve", "--port", "70000")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "MEETNOW_PORT (or --port): Input should be less than or equal to 65535" in (
        result.stderr
    )


def test_version(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"meetnow {version('meetnow')}"
