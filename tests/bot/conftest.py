"""Fixtures the chat adapters' multi-node tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support.redis_server import RedisServer, running_redis


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real ``redis-server`` of this test's own (Debian's, started for it)."""
    with running_redis(tmp_path / "redis") as server:
        yield server
