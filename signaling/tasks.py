"""Fire-and-forget work that must not be garbage-collected mid-flight.

asyncio keeps only weak references to tasks: a task nobody holds can vanish before it runs to the
end. :func:`spawn` holds each one until it finishes, and logs (by type only: errors can carry
names or links) what would otherwise be "Task exception was never retrieved".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["spawn"]

logger = logging.getLogger(__name__)

_running: set[asyncio.Task[Any]] = set()


def spawn(
    coroutine: Coroutine[Any, Any, Any], *, what: str = "background task"
) -> asyncio.Task[Any]:
    """Run ``coroutine`` in the background, held until it finishes."""
    task = asyncio.ensure_future(coroutine)
    _running.add(task)

    def done(finished: asyncio.Task[Any]) -> None:
        _running.discard(finished)
        if not finished.cancelled() and (error := finished.exception()) is not None:
            logger.debug("%s failed: %s", what, type(error).__name__)

    task.add_done_callback(done)
    return task
