"""The no-transcoding audit: the relay never decodes or encodes media, in any of its processes.

Each test runs a real three-person call (aiortc participants sending pre-encoded VP8 and Opus)
through a real server whose every process counts its actual encode and decode calls, in aiortc's
codecs and in PyAV's codec contexts (``tests/support/codec_audit.py``). The same audit, on the
same call, must report zero for the packet-forwarding relay and more than zero for aiortc's
MediaRelay design (``benchmarks/mediarelay_server.py``), both with the relay in the main process
and in relay worker processes (the default deployment), so the audit is shown to catch
transcoding wherever it happens.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.audit_fixtures import REPO, run_call, start_audited_server
from tests.support.codec_audit import TRANSCODING_KEYS

PACK_THEN_ENCODE = """
import fractions, json, sys
from pathlib import Path
import av, numpy
from tests.support import codec_audit

directory = Path(sys.argv[1])
codec_audit.install(directory)
from aiortc.codecs.vpx import Vp8Encoder

def report():
    codec_audit.flush()
    print(json.dumps(codec_audit.read_totals(directory).transcoding()), flush=True)

encoder = Vp8Encoder()
packet = av.Packet(bytes(range(256)) * 8)
packet.pts, packet.time_base = 0, fractions.Fraction(1, 90000)
assert encoder.pack(packet)[0]
report()
frame = av.VideoFrame.from_ndarray(numpy.zeros((240, 320, 3), numpy.uint8), format="rgb24")
frame.pts, frame.time_base = 0, fractions.Fraction(1, 90000)
assert encoder.encode(frame)[0]
report()
"""

DEPLOYMENTS = [pytest.param(0, id="relay-in-main-process"), pytest.param(2, id="relay-workers")]


async def audited_call(tmp_path: Path, *, relay_workers: int, mediarelay: bool) -> dict[str, Any]:
    server = start_audited_server(tmp_path, relay_workers=relay_workers, mediarelay=mediarelay)
    try:
        await run_call(server.base_url, await server.create_room())
    finally:
        audit: dict[str, Any] = server.stop()
    # Every process of the deployment reported, and reported to the end.
    assert audit["processes"] == 1 + relay_workers, audit
    assert audit["unfinished_processes"] == 0, audit
    return audit


@pytest.mark.parametrize("relay_workers", DEPLOYMENTS)
async def test_the_relay_neither_decodes_nor_encodes(tmp_path: Path, relay_workers: int) -> None:
    audit = await audited_call(tmp_path, relay_workers=relay_workers, mediarelay=False)
    assert {key: audit[key] for key in TRANSCODING_KEYS} == dict.fromkeys(TRANSCODING_KEYS, 0)
    assert audit["decoders"] == 0 and audit["encoders"] == 0


@pytest.mark.parametrize("relay_workers", DEPLOYMENTS)
async def test_the_audit_catches_the_mediarelay_baseline_transcoding(
    tmp_path: Path, relay_workers: int
) -> None:
    """The test of the audit: the same call through a server that decodes and re-encodes."""
    audit = await audited_call(tmp_path, relay_workers=relay_workers, mediarelay=True)
    for key in TRANSCODING_KEYS:
        assert audit[key] > 0, (key, audit)
    if relay_workers:
        # The room's media lived in a worker: its counts came from there, not the main process.
        per_process = audit["per_process"]
        transcoding = {
            pid: sum(counts[key] for key in TRANSCODING_KEYS) for pid, counts in per_process.items()
        }
        assert sorted(count > 0 for count in transcoding.values()) == [False, False, True]


def test_the_audit_counts_encoding_but_not_packetizing(tmp_path: Path) -> None:
    """aiortc's sender calls ``pack()`` on pre-encoded packets (as publishers of encoded media
    do): splitting a frame into RTP payloads is not encoding and must count nothing; one real
    ``encode()`` must count at both levels. In a subprocess: the audit patches aiortc and PyAV."""
    output = subprocess.run(
        [sys.executable, "-c", PACK_THEN_ENCODE, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    after_pack, after_encode = (json.loads(line) for line in output)
    assert after_pack == dict.fromkeys(TRANSCODING_KEYS, 0)
    assert after_encode["aiortc_encode_calls"] == 1
    assert after_encode["av_encode_calls"] >= 1 and after_encode["av_codec_contexts"] == 1
    assert after_encode["aiortc_decode_calls"] == after_encode["av_decode_calls"] == 0
