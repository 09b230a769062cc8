"""The SQLite room store under the room service: what a restart keeps (two services over one data
directory, the second one reading what the first wrote), what a closed room leaves on disk
(nothing readable), and the clear refusals (unwritable directory, corrupt database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from signaling.errors import ParticipantRemoved, RoomGone, RoomLocked
from signaling.room_store import StoreError
from signaling.rooms import RoomLimits, RoomService
from signaling.sqlite_store import DATABASE_NAME, SqliteRoomStore, default_data_dir

from ..conftest import FakeClock

TOPIC = "Quarterly-secret-topic-7f3a"


def service(directory: Path, clock: FakeClock) -> RoomService:
    return RoomService(
        RoomLimits(empty_grace_seconds=60), clock=clock, store=SqliteRoomStore(directory)
    )


async def restarted(before: RoomService, directory: Path, clock: FakeClock) -> RoomService:
    """Stop ``before`` as a server does, then open a new service over the same directory."""
    await before.close()
    after = service(directory, clock)
    await after.open()
    return after


def readable_on_disk(directory: Path, secret: str) -> list[str]:
    """The database files (main, WAL, shared memory) in which ``secret`` can be read."""
    return [
        path.name
        for path in sorted(directory.glob(f"{DATABASE_NAME}*"))
        if secret.encode() in path.read_bytes()
    ]


async def test_a_restart_keeps_settings_hosts_mutes_bars_and_who_was_let_in(tmp_path: Path) -> None:
    clock = FakeClock()
    rooms = service(tmp_path, clock)
    await rooms.open()
    room = rooms.create_room(TOPIC, lobby=True, lifetime_seconds=3600)
    token = rooms.issue_host_token(room)
    rooms.join(room.id, "Host", "host-session", host_token=token)
    guest, _ = rooms.join(room.id, "Guest", "guest-session")
    assert guest.id in room.waiting
    rooms.admit(room, guest.id)
    rooms.set_muted(room, guest.id, True)
    pest, _ = rooms.join(room.id, "Pest", "pest-session")
    rooms.deny(room, pest.id)
    rooms.set_locked(room, True)

    rooms = await restarted(rooms, tmp_path, clock)
    back = rooms.get_room(room.id)
    assert back is not None
    assert (back.topic, back.lobby, back.locked) == (TOPIC, True, True)
    assert back.join_deadline == room.join_deadline and back.participants == {}
    assert rooms.is_host_token(back, token)
    host_again, _ = rooms.join(room.id, "Host", "host-session")
    assert host_again.host and host_again.id in back.participants
    guest_again, _ = rooms.join(room.id, "Guest", "guest-session")  # locked, lobby: let in
    assert guest_again.muted_by_host and guest_again.id in back.participants
    with pytest.raises(ParticipantRemoved):
        rooms.join(room.id, "Pest", "pest-session")
    with pytest.raises(RoomLocked):
        rooms.join(room.id, "New", "new-session")
    assert back.people_count == 2
    await rooms.close()


async def test_people_in_the_call_at_the_restart_get_the_whole_grace_to_come_back(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    rooms = service(tmp_path, clock)
    await rooms.open()
    room = rooms.create_room()
    rooms.join(room.id, "Ada", "ada")
    clock.advance(3600)  # a long call, then the server restarts
    rooms = await restarted(rooms, tmp_path, clock)
    clock.advance(59)
    assert rooms.sweep() == [] and rooms.get_room(room.id) is not None
    clock.advance(2)
    assert rooms.get_room(room.id) is None
    await rooms.close()


async def test_an_ended_room_still_answers_gone_after_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    rooms = service(tmp_path, clock)
    await rooms.open()
    room = rooms.create_room(TOPIC)
    rooms.join(room.id, "Ada", "ada")
    rooms.end(room)
    rooms = await restarted(rooms, tmp_path, clock)
    assert rooms.get_room(room.id) is None and rooms.is_gone(room.id)
    with pytest.raises(RoomGone):
        rooms.join(room.id, "Ada", "ada")
    clock.advance(RoomLimits().tombstone_seconds + 1)
    rooms.sweep()
    rooms = await restarted(rooms, tmp_path, clock)
    assert not rooms.is_gone(room.id)
    await rooms.close()


async def test_nothing_of_a_closed_room_stays_readable_on_disk(tmp_path: Path) -> None:
    clock = FakeClock()
    rooms = service(tmp_path, clock)
    await rooms.open()
    room = rooms.create_room(TOPIC)
    rooms.remember(room.id, "card", '{"where": "chat-card-address-91"}')
    rooms.join(room.id, "Ada", "ada")
    await rooms.flush()
    # The check can fail: while the room is open, its topic is in the files.
    assert readable_on_disk(tmp_path, TOPIC) != []
    rooms.end(room)
    await rooms.flush()
    assert readable_on_disk(tmp_path, TOPIC) == []
    assert readable_on_disk(tmp_path, "chat-card-address-91") == []
    assert readable_on_disk(tmp_path, room.id) == []
    rooms = await restarted(rooms, tmp_path, clock)
    assert rooms.rooms() == [] and await rooms.remembered("card") == {}
    await rooms.close()


async def test_chat_values_come_back_with_their_room(tmp_path: Path) -> None:
    clock = FakeClock()
    rooms = service(tmp_path, clock)
    await rooms.open()
    kept, other = rooms.create_room(), rooms.create_room()
    rooms.remember(kept.id, "slack", "one")
    rooms.remember(other.id, "discord", "two")
    rooms = await restarted(rooms, tmp_path, clock)
    assert await rooms.remembered("slack") == {kept.id: "one"}
    assert await rooms.remembered("discord") == {other.id: "two"}
    await rooms.close()


def test_an_unwritable_data_dir_is_refused_naming_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="MEETNOW_DATA_DIR: cannot write to") as error:
        SqliteRoomStore(blocker / "meetnow")
    assert str(blocker / "meetnow") in str(error.value)


def test_a_corrupt_database_is_reported_and_left_untouched(tmp_path: Path) -> None:
    garbage = b"this is no database, but someone's data all the same\n" * 200
    (tmp_path / DATABASE_NAME).write_bytes(garbage)
    with pytest.raises(StoreError, match=r"MEETNOW_DATA_DIR: .* is not a usable meetnow database"):
        SqliteRoomStore(tmp_path)
    assert (tmp_path / DATABASE_NAME).read_bytes() == garbage


def test_the_default_data_dir_follows_xdg(tmp_path: Path) -> None:
    assert default_data_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "meetnow"
    assert default_data_dir({}) == Path.home() / ".local" / "share" / "meetnow"
