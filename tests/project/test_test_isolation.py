"""The tests run on the code and settings under test, never on the developer's: no `.env` and no
MEETNOW_ variable from the shell reaches a test's settings or a server process a test starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from signaling.settings import Settings

from ..conftest import REPO, ServerProcess, test_settings


def test_in_process_settings_ignore_a_dotenv_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("MEETNOW_ROOM_MAX_PARTICIPANTS=3\nMEETNOW_RELAY_WORKERS=7\n")
    monkeypatch.chdir(tmp_path)
    settings = test_settings()
    assert settings.room_max_participants == Settings.model_fields["room_max_participants"].default
    assert settings.relay_workers == 0


def test_no_meetnow_variable_of_the_shell_reaches_the_tests() -> None:
    assert [name for name in os.environ if name.startswith("MEETNOW_")] == []


def test_a_server_process_runs_where_no_dotenv_can_be_read(server_process: ServerProcess) -> None:
    where = Path(os.readlink(f"/proc/{server_process.process.pid}/cwd"))
    assert where != REPO
    assert not (where / ".env").exists()
