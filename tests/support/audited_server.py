"""Runs ``meetnow serve`` with aiortc's codec factories counted, for tests in another process.

The relay must never decode or encode media. aiortc creates every decoder through
``aiortc.rtcrtpreceiver.get_decoder`` and every encoder through ``aiortc.rtcrtpsender.get_encoder``;
this wrapper counts both calls, runs the real server unchanged, and on exit writes the counts and the
process's CPU time to the JSON file named by ``MEETNOW_AUDIT_FILE``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import Any

import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender

counts = {"decoders": 0, "encoders": 0}
_get_decoder = aiortc.rtcrtpreceiver.get_decoder
_get_encoder = aiortc.rtcrtpsender.get_encoder


def counting_decoder(codec: Any) -> Any:
    counts["decoders"] += 1
    return _get_decoder(codec)


def counting_encoder(codec: Any) -> Any:
    counts["encoders"] += 1
    return _get_encoder(codec)


aiortc.rtcrtpreceiver.get_decoder = counting_decoder
aiortc.rtcrtpsender.get_encoder = counting_encoder


def main() -> int:
    from signaling.cli import main as meetnow_main

    try:
        return meetnow_main(["serve", *sys.argv[1:]])
    finally:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with open(os.environ["MEETNOW_AUDIT_FILE"], "w") as out:
            json.dump({**counts, "cpu_seconds": usage.ru_utime + usage.ru_stime}, out)


if __name__ == "__main__":
    sys.exit(main())
