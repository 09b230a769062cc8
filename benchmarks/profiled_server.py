"""``meetnow serve`` under cProfile (the event loop's thread), for ``benchmarks.profile_relay``.

Run as ``python -m benchmarks.profiled_server --port P``; on exit (SIGINT) it writes the profile to
``MEETNOW_PROFILE_FILE``.
"""

from __future__ import annotations

import cProfile
import os
import sys


def main() -> int:
    from meetnow.cli import main as meetnow_main

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return meetnow_main(["serve", *sys.argv[1:]])
    finally:
        profiler.disable()
        profiler.dump_stats(os.environ["MEETNOW_PROFILE_FILE"])


if __name__ == "__main__":
    sys.exit(main())
