"""The embedded room store: one SQLite database (``rooms.sqlite3``) in ``MEETNOW_DATA_DIR``.

Python's ``sqlite3`` in WAL mode. Each call runs on one thread of its own (a store write can wait
on the disk: a WAL checkpoint syncs it), so the event loop never blocks on it, and one thread
keeps every write in order. Privacy: ``secure_delete`` zeroes what a deleted row leaves in the
file, and deleting a room checkpoints the WAL and truncates it, so no copy of a closed room's
topic or sessions stays readable in either file.

It refuses, with a message naming ``MEETNOW_DATA_DIR``, a directory it cannot write and a
database file that is not a healthy meetnow database: it never replaces one.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from .room_store import RoomRecord, StoredState, StoreError, decode_record, encode_record

__all__ = ["DATABASE_NAME", "SCHEMA_VERSION", "SqliteRoomStore", "default_data_dir"]

DATABASE_NAME = "rooms.sqlite3"
SCHEMA_VERSION = 1
VARIABLE = "MEETNOW_DATA_DIR"

_SCHEMA = """
CREATE TABLE rooms (id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE tombstones (key BLOB PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE chat_values (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (room_id, name)
);
"""

T = TypeVar("T")


def default_data_dir(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/meetnow``, else ``~/.local/share/meetnow``."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "meetnow"


def _prepare_directory(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Prove we can create files there (os.access is wrong for root and some mounts).
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-check-"):
            pass
    except OSError as error:
        raise StoreError(
            f"{VARIABLE}: cannot write to {directory} ({error.strerror or error}); set "
            f"{VARIABLE} to a directory this user can write, or MEETNOW_STORE=memory to keep "
            f"rooms in memory only"
        ) from None


def _connect(path: Path) -> sqlite3.Connection:
    corrupt = (
        f"{VARIABLE}: {path} is not a usable meetnow database (%s); it was left untouched: "
        f"restore it from a backup, or move it away to start with no rooms"
    )
    fresh = not path.exists()
    try:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if fresh:
            os.chmod(path, 0o600)  # room ids are the links' secrets
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA secure_delete=ON")
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        connection.execute("PRAGMA synchronous=NORMAL")
        check = connection.execute("PRAGMA quick_check").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as error:
        raise StoreError(corrupt % error) from None
    if str(mode).lower() != "wal" or check != "ok":
        connection.close()
        raise StoreError(corrupt % f"integrity check: {check}")
    if version == 0 and not tables:
        connection.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
    elif version != SCHEMA_VERSION or not {"rooms", "tombstones", "chat_values"} <= tables:
        connection.close()
        raise StoreError(corrupt % f"schema version {version}, expected {SCHEMA_VERSION}")
    return connection


class SqliteRoomStore:
    """:class:`~signaling.room_store.RoomStore` in one SQLite file under ``directory``."""

    def __init__(self, directory: Path) -> None:
        """Open (or create) the database at once, so a bad directory or file stops start-up.
        Raises :class:`StoreError`."""
        _prepare_directory(directory)
        self.path = directory / DATABASE_NAME
        self._db = _connect(self.path)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meetnow-store")

    async def _call(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    async def load(self) -> StoredState:
        def read() -> StoredState:
            rooms = [
                decode_record(i, r) for i, r in self._db.execute("SELECT id, record FROM rooms")
            ]
            stones = dict(self._db.execute("SELECT key, until FROM tombstones").fetchall())
            return StoredState(rooms=rooms, tombstones=stones)

        return await self._call(read)

    async def save_room(self, record: RoomRecord) -> None:
        text = encode_record(record)
        await self._call(
            lambda: self._db.execute(
                "INSERT INTO rooms (id, record) VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                (record.id, text),
            )
        )

    async def delete_room(self, room_id: str) -> None:
        def delete() -> None:
            self._db.execute("DELETE FROM rooms WHERE id = ?", (room_id,))
            # Old page images of the room stay in the WAL until a checkpoint: fold them into
            # the (securely deleted) file now and empty the WAL.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        await self._call(delete)

    async def bury(self, key: bytes, until: float) -> None:
        await self._call(
            lambda: self._db.execute(
                "INSERT OR REPLACE INTO tombstones (key, until) VALUES (?, ?)", (key, until)
            )
        )

    async def forget_tombstones(self, now: float) -> None:
        await self._call(
            lambda: self._db.execute("DELETE FROM tombstones WHERE until <= ?", (now,))
        )

    async def put_chat_value(self, room_id: str, name: str, value: str) -> None:
        # A room already deleted takes no value (the foreign key refuses it): nothing outlives it.
        def put() -> None:
            self._db.execute(
                "INSERT OR REPLACE INTO chat_values (room_id, name, value) "
                "SELECT id, ?, ? FROM rooms WHERE id = ?",
                (name, value, room_id),
            )

        await self._call(put)

    async def chat_values(self, name: str) -> dict[str, str]:
        rows = await self._call(
            lambda: self._db.execute(
                "SELECT room_id, value FROM chat_values WHERE name = ?", (name,)
            ).fetchall()
        )
        return {str(room_id): str(value) for room_id, value in rows}

    async def close(self) -> None:
        await self._call(self._db.close)
        self._thread.shutdown(wait=True)
