"""The Slack adapter (being built: see the open issue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from signaling.server import MeetnowServer

__all__ = ["install_slack"]


def install_slack(app: web.Application, server: MeetnowServer) -> None:
    raise RuntimeError("the Slack adapter is not available in this version of meetnow")
