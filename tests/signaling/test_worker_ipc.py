"""The relay worker protocol is typed at the boundary: every line either side reads is parsed into
a model of :mod:`signaling.worker_ipc`, and a malformed one is refused with an error that names
the problem (never a ``KeyError`` from deep inside), in both directions, by the real processes."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import pytest

from signaling.errors import MeetnowError, WorkerMessageInvalid
from signaling.protocol import ErrorCode, OfferMessage, ProtocolError
from signaling.relay import RelayConfig
from signaling.worker_ipc import (
    AddRequest,
    MediaConnectedEvent,
    OfferEvent,
    ResultReply,
    StatsRequest,
    WorkerFailure,
    WorkerSpec,
    WorkerStats,
    encode,
    parse_reply,
    parse_request,
)
from signaling.workers import WorkerDied, WorkerPool

BAD_REQUESTS = [
    pytest.param(b'{"op":"add","id":1,"participant":"p","kinds":["audio"]}', "add.room", id="add-no-room"),
    pytest.param(b'{"op":"add","id":1,"room":"r","participant":"p","kinds":["smell"]}', "add.kinds.0", id="add-bad-kind"),
    pytest.param(b'{"op":"answer","id":1,"room":"r","participant":"p","revision":"1","sdp":"v=0"}', "answer.revision", id="answer-revision-string"),
    pytest.param(b'{"op":"forward","id":1,"room":"r","participant":"p","kind":"video"}', "forward.enabled", id="forward-no-enabled"),
    pytest.param(b'{"op":"remove","id":1,"room":"r","participant":"p","extra":1}', "remove.extra", id="remove-extra-field"),
    pytest.param(b'{"op":"explode","id":1}', "'explode'", id="unknown-op"),
    pytest.param(b'{"id":1}', "'op'", id="no-op"),
    pytest.param(b"not json", "Invalid JSON", id="not-json"),
    pytest.param(b"[1, 2]", "object", id="not-an-object"),
]  # fmt: skip

BAD_REPLIES = [
    pytest.param(b'{"op":"result","error":null,"result":null}', "result.id", id="result-no-id"),
    pytest.param(b'{"op":"result","id":1,"error":{"code":"nope","message":"m","fatal":true}}', "result.error.code", id="result-unknown-code"),
    pytest.param(b'{"op":"result","id":1,"result":{"pid":1}}', "result.result.peer_connections", id="stats-incomplete"),
    pytest.param(b'{"op":"offer","room":"r","participant":"p"}', "offer.offer", id="offer-without-offer"),
    pytest.param(b'{"op":"media_connected","seconds":"soon"}', "media_connected.seconds", id="seconds-string"),
    pytest.param(b'{"op":"gossip"}', "'gossip'", id="unknown-op"),
    pytest.param(b"\xff\xfe", "Invalid JSON", id="not-json"),
]  # fmt: skip

STATS = WorkerStats(pid=7, peer_connections=2, forwarded_packets=10, forwarded_bytes=12_000)
OFFER = OfferMessage(revision=1, sdp="v=0\r\n", tracks={})


@pytest.mark.parametrize(("line", "named"), BAD_REQUESTS)
def test_a_malformed_request_is_refused_naming_the_problem(line: bytes, named: str) -> None:
    with pytest.raises(WorkerMessageInvalid) as caught:
        parse_request(line)
    assert named in str(caught.value)
    assert isinstance(caught.value, MeetnowError)


@pytest.mark.parametrize(("line", "named"), BAD_REPLIES)
def test_a_malformed_reply_is_refused_naming_the_problem(line: bytes, named: str) -> None:
    with pytest.raises(WorkerMessageInvalid) as caught:
        parse_reply(line)
    assert named in str(caught.value)


def test_well_formed_messages_pass_the_same_checks() -> None:
    """Test of the tests above: the parsers accept what each side really sends, so a refusal
    there is about the malformed field, not a parser that refuses everything."""
    add = AddRequest(id=3, room="r", participant="p", kinds=["audio", "video"])
    assert parse_request(encode(add)) == add
    assert parse_request(encode(StatsRequest(id=4))) == StatsRequest(id=4)
    failure = WorkerFailure(code=ErrorCode.NO_PORTS, message="No port.", fatal=True)
    for reply in [
        ResultReply(id=3, result=STATS),
        ResultReply(id=4, error=failure),
        OfferEvent(room="r", participant="p", offer=OFFER),
        MediaConnectedEvent(seconds=0.25),
    ]:
        assert parse_reply(encode(reply)) == reply
    # The fixed part of each bad line above, made good again, passes too.
    assert parse_reply(b'{"op":"media_connected","seconds":1}') == MediaConnectedEvent(seconds=1.0)


async def test_a_real_worker_answers_a_malformed_request_with_the_reason_and_carries_on() -> None:
    spec = WorkerSpec(
        ice_servers=[], public_address=None, port_range=None, host_addresses=["127.0.0.1"]
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "signaling.relay_worker",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "MEETNOW_WORKER_CONFIG": spec.model_dump_json()},
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(b'{"op":"add","id":41,"participant":"p","kinds":[]}\n')
        process.stdin.write(b"garbage\n")
        process.stdin.write(encode(StatsRequest(id=42)))
        await process.stdin.drain()
        replies = [
            parse_reply(await asyncio.wait_for(process.stdout.readline(), 30)) for _ in "abc"
        ]
    finally:
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 10)
    refused, unreadable, stats = replies
    assert isinstance(refused, ResultReply) and refused.id == 41 and refused.error is not None
    assert refused.error.code is ErrorCode.SERVER_ERROR and "add.room" in refused.error.message
    assert isinstance(unreadable, ResultReply) and unreadable.id is None
    assert unreadable.error is not None and "Invalid JSON" in unreadable.error.message
    # Still serving: the request after them is answered.
    assert isinstance(stats, ResultReply) and stats.id == 42 and stats.result is not None
    assert stats.result.pid == process.pid


STAND_IN_WORKER = """
import json, sys
for line in sys.stdin:
    request = json.loads(line)
    reply = {stats!r} if request["op"] == "stats" else {other!r}
    sys.stdout.write(reply.replace('"id":0', '"id":%d' % request["id"]) + "\\n")
    sys.stdout.flush()
"""


def stand_in_worker(stats: str, other: str) -> list[str]:
    """A worker process that answers ``stats`` requests with the line ``stats`` and any other
    request with ``other`` (``"id":0`` in them becomes the request's id)."""
    return [sys.executable, "-c", STAND_IN_WORKER.format(stats=stats, other=other)]


STATS_REPLY = encode(ResultReply(id=0, result=STATS)).decode().strip()


async def test_the_pool_stops_a_worker_that_sends_a_malformed_reply_naming_the_problem(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stand-in worker answers the pool's first request (the start-up ``stats``) with a reply
    missing its id: the pool logs which field, stops the worker (out of step, it cannot be
    trusted) and fails the request at once instead of waiting for the start-up timeout."""
    missing_id = '{"op":"result","error":null,"result":null}'
    pool = WorkerPool(
        1,
        RelayConfig(),
        ["127.0.0.1"],
        command=stand_in_worker(missing_id, missing_id),
        backoff=lambda failures: 60.0,  # no restart during the test
    )
    caplog.set_level(logging.ERROR, logger="signaling.workers")
    await asyncio.wait_for(pool.start(), 10)  # well under the 30 s start-up timeout
    try:
        assert pool.workers_up() == 0
        assert pool.down_reasons() == ["relay worker 1 of 1 is down (exited; restarting)"]
        with pytest.raises(WorkerDied):
            await pool.add_participant("room", "p", ["audio"], _never_offered)
    finally:
        await pool.close()
    logged = [r.getMessage() for r in caplog.records if r.name == "signaling.workers"]
    assert any("bad relay worker reply: result.id: Field required" in m for m in logged), logged
    assert not any("KeyError" in m for m in logged)


async def test_the_pool_accepts_well_formed_replies_from_the_same_stand_in() -> None:
    """Test of the test above: the same stand-in with well-formed replies is up, its counts
    are read, and an error reply reaches the caller as the participant's protocol error."""
    failure = WorkerFailure(code=ErrorCode.NO_PORTS, message="No port.", fatal=True)
    refusal = encode(ResultReply(id=0, error=failure)).decode().strip()
    pool = WorkerPool(
        1,
        RelayConfig(),
        ["127.0.0.1"],
        command=stand_in_worker(STATS_REPLY, refusal),
        backoff=lambda failures: 60.0,
    )
    await asyncio.wait_for(pool.start(), 10)
    try:
        assert pool.workers_up() == 1
        assert await pool.stats() == [STATS]
        with pytest.raises(ProtocolError) as caught:
            await pool.add_participant("room", "p", ["audio"], _never_offered)
        assert caught.value.code is ErrorCode.NO_PORTS and caught.value.fatal
        assert pool.workers_up() == 1
    finally:
        await pool.close()


async def _never_offered(offer: OfferMessage) -> None:
    raise AssertionError("no offer expected")
