"""Counts every media encode and decode a process runs: the no-transcoding audit.

The relay must forward packets, never decode or re-encode them. Counting codec *objects* is not
enough (aiortc builds an encoder object for a sender even when it only packetizes pre-encoded
packets), so this counts the *work*, at two levels:

- aiortc: the ``decode`` method of every decoder class and the ``encode`` method of every encoder
  class in ``aiortc.codecs`` (VP8, Opus, H.264, G.711, G.722). ``pack()``, which only splits an
  already encoded frame into RTP payloads, is deliberately not counted: it is not encoding.
- PyAV, under aiortc and anything else: ``av.codec.context.CodecContext.decode``, ``.encode`` and
  ``.encode_lazy`` (every codec context class inherits them; PyAV 18's types are heap types, so the
  patched methods are found even by PyAV's own Cython callers such as ``Stream.encode`` and
  ``Packet.decode``), and ``CodecContext.create``, through which aiortc makes every context.

It also keeps the old object counts (``aiortc.rtcrtpreceiver.get_decoder`` and
``aiortc.rtcrtpsender.get_encoder`` calls) as ``decoders`` and ``encoders``.

Each audited process writes its own counts to ``<directory>/<pid>.json``: once when the audit is
installed (``finished: false``) and again at exit (``finished: true``), so a process that died
without reporting shows up as unfinished instead of silently counting zero. :func:`read_totals`
sums every file of a directory.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import resource
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TRANSCODING_KEYS", "AuditTotals", "flush", "install", "read_totals"]

CODEC_MODULES = (
    "aiortc.codecs.vpx",
    "aiortc.codecs.opus",
    "aiortc.codecs.h264",
    "aiortc.codecs.g711",
    "aiortc.codecs.g722",
)
"""Every aiortc module that defines a codec."""

TRANSCODING_KEYS = (
    "aiortc_decode_calls",
    "aiortc_encode_calls",
    "av_decode_calls",
    "av_encode_calls",
    "av_codec_contexts",
)
"""Counts that measure media work; each must stay 0 in the relay."""

OBJECT_KEYS = ("decoders", "encoders")
"""aiortc codec objects handed out (informational: not work by themselves)."""

_counts: dict[str, int] = dict.fromkeys((*TRANSCODING_KEYS, *OBJECT_KEYS), 0)
_lock = threading.Lock()  # aiortc decodes in its own threads
_state: dict[str, Path] = {}


def _count(key: str) -> None:
    with _lock:
        _counts[key] += 1


def _counting(key: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        _count(key)
        return function(*args, **kwargs)

    counted.__wrapped__ = function  # type: ignore[attr-defined]
    return counted


def _wrap_method(owner: type, name: str, key: str) -> None:
    original = owner.__dict__[name]
    setattr(owner, name, _counting(key, original))


def _wrap_aiortc_codecs() -> None:
    from aiortc.codecs.base import Decoder, Encoder

    for module_name in CODEC_MODULES:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if not isinstance(value, type) or value.__module__ != module_name:
                continue
            # Only where the method is defined, so an inherited one is counted once.
            if issubclass(value, Decoder) and "decode" in value.__dict__:
                _wrap_method(value, "decode", "aiortc_decode_calls")
            if issubclass(value, Encoder) and "encode" in value.__dict__:
                _wrap_method(value, "encode", "aiortc_encode_calls")


def _wrap_pyav() -> None:
    from av.codec.context import CodecContext

    _wrap_method(CodecContext, "decode", "av_decode_calls")
    _wrap_method(CodecContext, "encode", "av_encode_calls")
    _wrap_method(CodecContext, "encode_lazy", "av_encode_calls")
    create = CodecContext.create  # a staticmethod: the plain function
    setattr(CodecContext, "create", staticmethod(_counting("av_codec_contexts", create)))  # noqa: B010


def _wrap_codec_factories() -> None:
    import aiortc.rtcrtpreceiver
    import aiortc.rtcrtpsender

    receiver_module: Any = aiortc.rtcrtpreceiver
    sender_module: Any = aiortc.rtcrtpsender
    receiver_module.get_decoder = _counting("decoders", receiver_module.get_decoder)
    sender_module.get_encoder = _counting("encoders", sender_module.get_encoder)


def install(directory: Path) -> None:
    """Count this process's codec work and report it to ``directory`` (idempotent)."""
    if "directory" in _state:
        return
    directory.mkdir(parents=True, exist_ok=True)
    _state["directory"] = directory
    _wrap_aiortc_codecs()
    _wrap_pyav()
    _wrap_codec_factories()
    _write(finished=False)
    atexit.register(flush)


def flush() -> None:
    """Write this process's final counts (also run at exit)."""
    if "directory" in _state:
        _write(finished=True)


def _write(*, finished: bool) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with _lock:
        report: dict[str, Any] = dict(_counts)
    report.update(pid=os.getpid(), finished=finished, cpu_seconds=usage.ru_utime + usage.ru_stime)
    target = _state["directory"] / f"{os.getpid()}.json"
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(report))
    partial.replace(target)  # a reader never sees half a file


@dataclass
class AuditTotals:
    """Counts summed over every process that reported to one directory."""

    counts: dict[str, int]
    """Every key of :data:`TRANSCODING_KEYS` and :data:`OBJECT_KEYS`, summed."""
    per_process: dict[int, dict[str, int]] = field(default_factory=dict)
    """The same counts for each process id."""
    unfinished: list[int] = field(default_factory=list)
    """Processes that installed the audit but never wrote their final counts."""
    cpu_seconds: float = 0.0

    @property
    def processes(self) -> int:
        return len(self.per_process)

    def transcoding(self) -> dict[str, int]:
        """The work counts (decode and encode calls, codec contexts made)."""
        return {key: self.counts[key] for key in TRANSCODING_KEYS}

    def as_json(self) -> dict[str, Any]:
        return {
            **self.counts,
            "processes": self.processes,
            "unfinished_processes": len(self.unfinished),
            "cpu_seconds": self.cpu_seconds,
            "per_process": {str(pid): counts for pid, counts in self.per_process.items()},
        }


def read_totals(directory: Path) -> AuditTotals:
    """Sum the reports in ``directory``."""
    keys = (*TRANSCODING_KEYS, *OBJECT_KEYS)
    totals = AuditTotals(dict.fromkeys(keys, 0))
    for path in sorted(directory.glob("*.json")):
        report = json.loads(path.read_text())
        counts = {key: int(report[key]) for key in keys}
        totals.per_process[int(report["pid"])] = counts
        for key in keys:
            totals.counts[key] += counts[key]
        totals.cpu_seconds += float(report["cpu_seconds"])
        if not report["finished"]:
            totals.unfinished.append(int(report["pid"]))
    return totals
