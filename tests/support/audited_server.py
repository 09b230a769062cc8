"""Runs ``meetnow serve`` with every encode and decode counted, in every process of the server.

Run as ``python -m tests.support.audited_server --port P`` with ``MEETNOW_AUDIT_FILE`` naming the
JSON file it writes when it stops. Every process of the deployment is audited
(``tests/support/codec_audit.py``): this one directly, and each relay worker it starts through
``tests/support/audit_site/sitecustomize.py``, which the workers import at start-up because this
process puts that folder on the ``PYTHONPATH`` they inherit. Each process reports to
``MEETNOW_CODEC_AUDIT_DIR`` (default: ``<audit file>.d``); on exit this process sums the reports
into the audit file: the counts of :data:`~tests.support.codec_audit.TRANSCODING_KEYS` and the
codec object counts ``decoders`` and ``encoders``, plus ``processes``, ``unfinished_processes``
(processes that never wrote their final counts), ``cpu_seconds`` and ``per_process``.

``MEETNOW_AUDIT_MEDIARELAY=1`` runs the MediaRelay baseline (``benchmarks/mediarelay_server.py``,
decode once per publisher, encode once per subscriber) instead of packet forwarding, in this
process and in every worker: the case the audit must catch.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.support import codec_audit

REPO = Path(__file__).resolve().parents[2]
AUDIT_SITE = Path(__file__).resolve().parent / "audit_site"


def audit_directory() -> Path:
    named = os.environ.get("MEETNOW_CODEC_AUDIT_DIR")
    if named:
        return Path(named)
    return Path(os.environ["MEETNOW_AUDIT_FILE"] + ".d")


def audit_this_process() -> None:
    """Count this process's codec work (and run the MediaRelay design, if asked)."""
    codec_audit.install(audit_directory())
    if os.environ.get("MEETNOW_AUDIT_MEDIARELAY") == "1":
        from benchmarks.mediarelay_server import install as install_mediarelay

        install_mediarelay()


def audit_children() -> None:
    """Make every Python process started from here on audit itself too."""
    os.environ["MEETNOW_CODEC_AUDIT_DIR"] = str(audit_directory())
    inherited = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(AUDIT_SITE), str(REPO), *([inherited] if inherited else [])]
    )


def main() -> int:
    audit_children()
    audit_this_process()
    from meetnow.cli import main as meetnow_main

    try:
        return meetnow_main(["serve", *sys.argv[1:]])
    finally:
        # The workers have exited by now (the server waits for them when it stops).
        codec_audit.flush()
        totals = codec_audit.read_totals(audit_directory())
        Path(os.environ["MEETNOW_AUDIT_FILE"]).write_text(json.dumps(totals.as_json()))


if __name__ == "__main__":
    sys.exit(main())
