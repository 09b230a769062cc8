"""The web client's JavaScript and CSS: gzip-compressed at start-up, sent compressed to clients that
accept it (``Vary: Accept-Encoding``), with caching headers; the pages stay ``no-store`` and link
to this release's immutable URLs."""

from __future__ import annotations

import gzip
import re

import aiohttp
from multidict import CIMultiDict

from signaling.static_assets import IMMUTABLE_CACHE, PLAIN_CACHE, accepts_gzip

from ..conftest import RunningServer

TEXT_FILES = ("js/room.js", "js/protocol.js", "js/landing.js", "css/meetnow.css")


async def raw_get(url: str, accept_encoding: str) -> tuple[int, CIMultiDict[str], bytes]:
    """Status, headers and the body as sent (not decompressed by the client)."""
    async with (
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.get(url, headers={"Accept-Encoding": accept_encoding}) as response,
    ):
        return response.status, CIMultiDict(response.headers), await response.read()


def compression_problems(headers: CIMultiDict[str], body: bytes, original: bytes) -> list[str]:
    """What is wrong with a response that should carry ``original`` gzip-compressed."""
    problems = []
    if headers.get("Content-Encoding") != "gzip":
        problems.append(f"Content-Encoding is {headers.get('Content-Encoding')!r}")
    if "Accept-Encoding" not in headers.get("Vary", ""):
        problems.append("no Vary: Accept-Encoding")
    try:
        if gzip.decompress(body) != original:
            problems.append("decompresses to other bytes")
    except OSError:
        problems.append("not gzip")
    if len(body) >= len(original):
        problems.append("not smaller")
    return problems


async def test_scripts_and_styles_are_sent_gzipped(server: RunningServer) -> None:
    root = server.meetnow.static_dir
    for name in TEXT_FILES:
        original = (root / name).read_bytes()
        status, headers, body = await raw_get(f"{server.base_url}/static/{name}", "gzip, br")
        assert status == 200, name
        assert compression_problems(headers, body, original) == [], name
        assert headers["Cache-Control"] == PLAIN_CACHE
        # A client that does not accept gzip gets the plain bytes, with the same Vary.
        status, headers, body = await raw_get(f"{server.base_url}/static/{name}", "identity")
        assert status == 200 and body == original and "Content-Encoding" not in headers
        assert headers["Vary"] == "Accept-Encoding"


async def test_the_compression_check_fails_on_a_plain_response(server: RunningServer) -> None:
    # Test of the check above: the identity answer is reported on every count it can fail.
    original = (server.meetnow.static_dir / "js/room.js").read_bytes()
    _, headers, body = await raw_get(f"{server.base_url}/static/js/room.js", "identity")
    headers.pop("Vary", None)
    problems = compression_problems(headers, body, original)
    assert problems == [
        "Content-Encoding is None",
        "no Vary: Accept-Encoding",
        "not gzip",
        "not smaller",
    ]


async def test_pages_stay_no_store_and_link_to_immutable_urls(server: RunningServer) -> None:
    room_id = server.new_room()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base_url}/r/{room_id}") as response:
            assert response.headers["Cache-Control"] == "no-store"
            page = await response.text()
        links = re.findall(r'"(/static/[^"]+)"', page)
        build = server.meetnow.static_assets.build
        assert links and all(link.startswith(f"/static/{build}/") for link in links), links
        for link in links:
            async with http.get(server.base_url + link) as response:
                assert response.status == 200, link
                assert response.headers["Cache-Control"] == IMMUTABLE_CACHE
                name = link.removeprefix(f"/static/{build}/")
                assert await response.read() == (server.meetnow.static_dir / name).read_bytes()
        # The script's relative import resolves under the same release prefix.
        async with http.get(f"{server.base_url}/static/{build}/js/protocol.js") as response:
            assert response.status == 200
        # Another release's prefix is not served (it would mix releases).
        async with http.get(f"{server.base_url}/static/b000000000000/js/room.js") as response:
            assert response.status == 404


async def test_an_unchanged_file_is_revalidated_with_its_etag(server: RunningServer) -> None:
    url = f"{server.base_url}/static/css/meetnow.css"
    _, headers, _ = await raw_get(url, "gzip")
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers={"If-None-Match": headers["ETag"]}) as response,
    ):
        assert response.status == 304
        assert await response.read() == b""


def test_accept_encoding_parsing() -> None:
    assert accepts_gzip("gzip, deflate, br")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert accepts_gzip("*")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("br, identity")
    assert not accepts_gzip(None)
