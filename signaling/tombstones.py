"""Tombstones: the ids of rooms that ended or expired, kept (as hashes only) so that their links
answer 410 "ended" for a while and are never handed out again."""

from __future__ import annotations

import hashlib

__all__ = ["Tombstones", "secret_key"]


def secret_key(secret: str) -> bytes:
    """What is kept of a secret (a room id, a host token): its SHA-256, never the secret."""
    return hashlib.sha256(secret.encode()).digest()


class Tombstones:
    """Hashes of ended rooms' ids, each until a clock time."""

    def __init__(self) -> None:
        self._until: dict[bytes, float] = {}  # sha256(room id) -> until

    def bury(self, room_id: str, until: float) -> bytes:
        """Remember ``room_id`` as ended until ``until``; the key kept (what a store keeps)."""
        key = secret_key(room_id)
        self._until[key] = until
        return key

    def restore(self, kept: dict[bytes, float]) -> None:
        """Take back the tombstones a store kept (at start-up)."""
        self._until.update(kept)

    def __contains__(self, room_id: str) -> bool:
        """Whether ``room_id`` has a tombstone, due or not (an id is never reused while kept)."""
        return secret_key(room_id) in self._until

    def holds(self, room_id: str, now: float) -> bool:
        """Whether ``room_id`` ended and its tombstone is still standing at ``now``."""
        until = self._until.get(secret_key(room_id))
        return until is not None and until > now

    def forget_due(self, now: float) -> None:
        """Drop the tombstones whose time is past."""
        for key in [k for k, until in self._until.items() if until <= now]:
            del self._until[key]
