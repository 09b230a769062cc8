"""Discord's REST API with an interaction token (the HTTP endpoint's cards), and its errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import discord

from signaling.errors import MeetnowError

__all__ = ["DiscordApiError", "DiscordRest", "describe", "snowflake"]

# One logger for the whole adapter, whichever module logs (docs/discord.md shows its name).
logger = logging.getLogger("bot.discord")

MAX_RETRY_AFTER: Final = 30.0
"""Longest 429 ``retry_after`` our own HTTP calls wait for (once) before giving up on an edit."""


class DiscordApiError(MeetnowError):
    """A refused Discord API call: HTTP status and Discord's JSON error code (0 if none)."""

    def __init__(self, status: int, code: int = 0) -> None:
        super().__init__(f"HTTP {status} (code {code})")
        self.status = status
        self.code = code

    @property
    def token_expired(self) -> bool:
        """The interaction token no longer works (401 code 50027, or 404 Unknown Webhook)."""
        return (self.status == 401 and self.code in (0, 50027)) or self.code == 10015

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def message_gone(self) -> bool:
        return self.code == 10008

    @classmethod
    def wrap(cls, error: discord.HTTPException) -> DiscordApiError:
        return cls(error.status, error.code)


def describe(error: BaseException) -> str:
    """Status and code only: Discord's error texts are safe, but URLs and payloads are not."""
    if isinstance(error, DiscordApiError) and error.status == 0:
        cause = error.__cause__
        return f"no answer ({type(cause).__name__})" if cause is not None else "no answer"
    if isinstance(error, DiscordApiError | discord.HTTPException):
        return f"HTTP {error.status} (code {error.code})"
    return type(error).__name__


def snowflake(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return int(value) if value is not None else None


def _retry_after(headers: Mapping[str, str], body: Mapping[str, Any]) -> float | None:
    value = body.get("retry_after", headers.get("Retry-After"))
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


class DiscordRest:
    """Raw calls to ``MEETNOW_DISCORD_API_URL``: with the interaction token in the path, or with
    the bot token (``Authorization: Bot``) where the gateway bot is not logged in on this node
    (another node holds Discord's gateway); one session, opened on first use."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self._http: aiohttp.ClientSession | None = None

    async def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        bot_token: str | None = None,
    ) -> Any:
        """One API call (as the bot with ``bot_token``); a 429 is retried once after its
        ``retry_after``."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        url = self.api_url + path
        headers = {"Authorization": f"Bot {bot_token}"} if bot_token is not None else {}
        for attempt in range(2):
            async with self._http.request(
                method, url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=15)
            ) as response:
                if 200 <= response.status < 300:
                    if response.status == 204:
                        return None
                    return await response.json(content_type=None)
                error_body: Any = None
                with contextlib.suppress(ValueError, aiohttp.ContentTypeError):
                    error_body = await response.json(content_type=None)
                details = error_body if isinstance(error_body, dict) else {}
                if response.status == 429 and attempt == 0:
                    delay = _retry_after(response.headers, details)
                    if delay is not None and delay <= MAX_RETRY_AFTER:
                        logger.warning("discord: rate limited; retrying in %.2f s", delay)
                        await asyncio.sleep(delay)
                        continue
                code = details.get("code", 0)
                raise DiscordApiError(response.status, code if isinstance(code, int) else 0)
        raise DiscordApiError(429)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
