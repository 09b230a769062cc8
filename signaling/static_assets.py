"""The web client's files as served: read and gzip-compressed once at start-up, with caching headers.

Two URLs reach each file. ``/static/<path>`` is kept for anything that links to it directly and may
be cached for :data:`PLAIN_MAX_AGE`. The pages link to ``/static/<build>/<path>`` instead, where
``<build>`` is a digest of every file's content: a new release changes it, so those URLs are cached
as ``immutable`` for a year and a browser never mixes one release's script with another's (the
scripts' relative imports stay under the same ``<build>``). Pages themselves stay ``no-store``.

Compression is gzip only: no brotli binding is installed with meetnow, and the text files are small
(gzip takes them to about a quarter). Each compressed file is sent with ``Vary: Accept-Encoding``
to clients that accept gzip; others get the plain bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

__all__ = [
    "COMPRESSED_SUFFIXES",
    "IMMUTABLE_CACHE",
    "PLAIN_CACHE",
    "StaticAsset",
    "StaticAssets",
    "accepts_gzip",
]

COMPRESSED_SUFFIXES = frozenset({".html", ".css", ".js", ".svg", ".ico", ".json"})
"""Text kinds worth compressing (images and fonts are compressed already)."""
PLAIN_MAX_AGE = 300
PLAIN_CACHE = f"public, max-age={PLAIN_MAX_AGE}"
"""``/static/<path>``: may change with a release, so cached briefly (then revalidated by ETag)."""
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
"""``/static/<build>/<path>``: its content never changes under that URL."""


@dataclass(frozen=True)
class StaticAsset:
    """One file, ready to send."""

    body: bytes
    gzipped: bytes | None
    """The gzip-compressed body; None for kinds not worth compressing, or if it came out larger."""
    content_type: str
    etag: str


def load_asset(path: Path) -> StaticAsset:
    body = path.read_bytes()
    gzipped: bytes | None = None
    if path.suffix.lower() in COMPRESSED_SUFFIXES:
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        gzipped = packed if len(packed) < len(body) else None
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in ("application/javascript",):
        content_type += "; charset=utf-8"
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    return StaticAsset(body, gzipped, content_type, etag)


def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (``gzip`` or ``*``, not at ``q=0``)."""
    if not header:
        return False
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        quality = params.strip().lower().removeprefix("q=").strip() if params else "1"
        try:
            return float(quality) > 0
        except ValueError:
            return False
    return False


class StaticAssets:
    """Every file ``/static/`` serves, loaded and compressed at start-up."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        self.assets = {name: load_asset(path) for name, path in files.items()}
        """By path relative to the web client's directory."""
        digest = hashlib.sha256()
        for name in sorted(self.assets):
            digest.update(name.encode() + b"\0" + self.assets[name].etag.encode())
        self.build = "b" + digest.hexdigest()[:12]
        """This release's prefix for immutable URLs: ``/static/<build>/<path>``."""

    def versioned_page(self, page: bytes) -> bytes:
        """A page whose ``/static/`` links point at this release's immutable URLs."""
        return page.replace(b'"/static/', f'"/static/{self.build}/'.encode())

    def response(self, request: web.Request, path: str) -> web.Response | None:
        """The response for ``/static/<path>``; None if there is no such file."""
        cache = PLAIN_CACHE
        prefix = self.build + "/"
        if path.startswith(prefix):
            path, cache = path[len(prefix) :], IMMUTABLE_CACHE
        asset = self.assets.get(path)
        if asset is None:
            return None
        headers = {"Cache-Control": cache, "ETag": asset.etag}
        if asset.gzipped is not None:
            headers["Vary"] = "Accept-Encoding"
        if asset.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        body = asset.body
        if asset.gzipped is not None and accepts_gzip(request.headers.get("Accept-Encoding")):
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        headers["Content-Type"] = asset.content_type
        return web.Response(body=body, headers=headers)
