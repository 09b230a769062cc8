"""``MEETNOW_ICE_TRANSPORT_POLICY``: ``relay`` reaches each participant in its ``joined`` message
(with short-lived TURN credentials), and without a TURN server the server refuses to start.
That browsers then really send media through TURN only is tests/server/test_deploy.py's end-to-end
test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from signaling.client import ParticipantClient
from signaling.settings import IceServer, Settings

from ..conftest import start_server, test_settings
from ..support.serve_process import clean_environment, meetnow_command

TURN_URL = "turn:turn.example.org:3478?transport=udp"


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_policy_defaults_to_all() -> None:
    assert settings().ice_transport_policy == "all"


def test_relay_without_turn_is_refused_naming_the_variables() -> None:
    with pytest.raises(ValidationError) as refused:
        settings(ice_transport_policy="relay")
    message = str(refused.value)
    for variable in ("MEETNOW_ICE_TRANSPORT_POLICY", "MEETNOW_TURN_URLS", "MEETNOW_TURN_SECRET"):
        assert variable in message


@pytest.mark.parametrize(
    "half",
    [
        {"turn_urls": [TURN_URL]},  # no secret: nobody could get a credential
        {"turn_secret": "s"},  # no URL
        {"ice_servers": [IceServer(urls=["stun:stun.example.org:3478"])]},  # STUN is not TURN
        {"ice_servers": [IceServer(urls=[TURN_URL])]},  # a TURN server without credentials
    ],
)
def test_relay_with_half_a_turn_server_is_refused(half: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="MEETNOW_TURN_URLS"):
        settings(ice_transport_policy="relay", **half)


@pytest.mark.parametrize(
    "turn",
    [
        {"turn_urls": [TURN_URL], "turn_secret": "s"},
        {"ice_servers": [IceServer(urls=[TURN_URL], username="u", credential="c")]},
    ],
)
def test_relay_with_turn_is_accepted(turn: dict[str, object]) -> None:
    assert settings(ice_transport_policy="relay", **turn).ice_transport_policy == "relay"


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValidationError):
        settings(ice_transport_policy="turn-only")


def test_meetnow_serve_refuses_to_start_with_relay_and_no_turn(tmp_path: Path) -> None:
    done = subprocess.run(
        [*meetnow_command(), "serve", "--port", "0"],
        cwd=tmp_path,
        env=clean_environment(tmp_path, MEETNOW_ICE_TRANSPORT_POLICY="relay"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert "meetnow is running" not in done.stdout
    assert "MEETNOW_TURN_URLS" in done.stderr and "MEETNOW_TURN_SECRET" in done.stderr


@pytest.mark.parametrize("policy", ["all", "relay"])
async def test_joined_carries_the_policy_and_fresh_turn_credentials(policy: str) -> None:
    secret = "turn-secret"
    running, runner = await start_server(
        test_settings(ice_transport_policy=policy, turn_urls=[TURN_URL], turn_secret=secret)
    )
    client = ParticipantClient(running.base_url, running.new_room())
    try:
        joined = await client.join()
    finally:
        await client.close()
        await runner.cleanup()
    assert joined["ice_transport_policy"] == policy
    [turn] = joined["ice_servers"]
    assert turn["urls"] == [TURN_URL]
    # The coturn use-auth-secret credential: "<expiry>:<participant>", HMAC-SHA1 of it.
    expiry, user = turn["username"].split(":", 1)
    assert user == joined["participant_id"]
    assert time.time() < int(expiry) <= time.time() + 3600 + 5
    digest = hmac.new(secret.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()
