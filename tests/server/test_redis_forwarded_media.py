"""Media for a participant whose websocket is forwarded to the room's node, in both relay
modes (issue 16, many nodes): with the relay in its own worker processes and with the relay in
the node's main process (``MEETNOW_RELAY_WORKERS=0``), a page entering through the other node
sees the video of a page on the room's node, and the reverse."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..support.redis_server import running_redis
from .test_redis_nodes import ada_and_bea, ice_ports, media_outside, two_nodes


@pytest.mark.parametrize("workers", ["0", "1"])
async def test_a_forwarded_participant_gets_video_in_both_relay_modes(
    tmp_path: Path, workers: str
) -> None:
    with (
        running_redis(tmp_path / "redis") as redis_server,
        two_nodes(tmp_path, MEETNOW_REDIS_URL=redis_server.url, MEETNOW_RELAY_WORKERS=workers) as (
            node_a,
            node_b,
        ),
    ):
        async with ada_and_bea(node_a, node_b, "198.51.100.20") as call:
            assert call.bea.pc is not None and call.bea.pc.remoteDescription is not None
            assert media_outside(call.bea.pc.remoteDescription.sdp, ice_ports(node_a)) == set()
