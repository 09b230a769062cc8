"""Audits every Python process started with this folder on ``PYTHONPATH`` (relay workers).

Python imports ``sitecustomize`` at start-up from the first folder of ``sys.path`` that has one.
``tests/support/audited_server.py`` puts this folder (and the repository root) on the
``PYTHONPATH`` it hands to the processes it starts, so each relay worker counts its own codec work
before any of its code runs. Nothing happens unless ``MEETNOW_CODEC_AUDIT_DIR`` is set.
"""

import os

if os.environ.get("MEETNOW_CODEC_AUDIT_DIR"):
    from tests.support.audited_server import audit_this_process

    audit_this_process()
