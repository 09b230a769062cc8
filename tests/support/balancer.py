"""A plain HTTP load balancer in front of several ``meetnow serve`` nodes, as docs/deploy.md sets
one up: Debian's Caddy, ``reverse_proxy`` to every node with a health check on ``/healthz``, no
stickiness. Pages talk to the balancer's one address; when a node stops listening (drained or
killed), Caddy sends the next request, or the page's reconnecting websocket, to a live one."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ..conftest import free_port
from .caddy import RunningCaddy, caddy_environment, caddy_running

START_TIMEOUT = 15.0

__all__ = ["Balancer", "balancer_port", "caddy_in_front"]

CADDYFILE = """\
{{
	admin off
	auto_https off
	storage file_system {storage}
	default_bind 127.0.0.1
}}

http://127.0.0.1:{port} {{
	reverse_proxy {upstreams} {{
		# The first node that is up: the test knows which node a page reaches first.
		lb_policy first
		lb_try_duration 10s
		lb_try_interval 100ms
		fail_duration 30s
		health_uri /healthz
		health_interval 500ms
	}}
}}
"""


Balancer = RunningCaddy
"""Caddy in front of the nodes: ``url``, its log."""


def balancer_port() -> int:
    """A free port for the balancer (the nodes' ``MEETNOW_PUBLIC_URL`` names it before it runs)."""
    return free_port()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@contextlib.contextmanager
def caddy_in_front(directory: Path, port: int, upstreams: list[str]) -> Iterator[Balancer]:
    """``caddy run`` on 127.0.0.1:``port`` in front of ``upstreams`` (``host:port`` each), until
    it answers ``/healthz`` through a node; stopped by its process id on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    caddyfile = directory / "Caddyfile"
    caddyfile.write_text(
        CADDYFILE.format(storage=directory / "storage", port=port, upstreams=" ".join(upstreams))
    )
    url = f"http://127.0.0.1:{port}"
    environment = caddy_environment(directory)
    with caddy_running(
        caddyfile, environment, url, lambda _: _answers(url), START_TIMEOUT
    ) as caddy:
        yield caddy
