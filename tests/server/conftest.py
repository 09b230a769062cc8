"""Fixtures the server tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..support.redis_server import RedisServer, running_redis


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real ``redis-server`` (Debian's) for the tests of one module; each test keeps to keys of
    its own (its rooms' ids, or a prefix of its own)."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server
