"""Slack's Web API and ``response_url`` posts: one retry on a dropped connection, up to two after
a 429 (waiting its Retry-After), and every failure as a :class:`SlackFailure` whose code is safe
to log (Slack's error code or the exception's type name, never a token, name or link)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from signaling.errors import MeetnowError

from ..i18n import FALLBACK_LANGUAGE, text
from .card import SlackCard

__all__ = [
    "API_TIMEOUT_SECONDS",
    "AUTH_ERRORS",
    "TRANSIENT_ERRORS",
    "USER_ID",
    "Reply",
    "SlackFailure",
    "SlackWebApi",
    "error_code",
    "reason",
    "retry_handlers",
]

logger = logging.getLogger("bot.slack")  # the adapter's one logger: its lines keep their name

API_TIMEOUT_SECONDS = 10.0
"""Longest wait for one Web API answer (retries after a 429 come on top)."""

TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
"""Web API error codes that say "try again later", not "this token is wrong"."""
AUTH_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "org_login_required",
        "ekm_access_denied",
        "team_access_not_granted",
    }
)
"""Codes that mean the bot token itself is refused: nothing else will work either."""

ERROR_CODE = re.compile(r"^[a-z0-9_.]{1,64}\Z")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}\Z")


class SlackFailure(MeetnowError):
    """A Web API call failed; ``code`` is Slack's error code or the exception's type name."""

    def __init__(self, method: str, code: str) -> None:
        super().__init__(f"{method}: {code}")
        self.method = method
        self.code = code


@dataclass(frozen=True)
class Reply:
    """Where to answer someone who clicked a button, privately."""

    url: str | None
    """The click's ``response_url``."""
    channel: str
    user: str


def error_code(error: SlackApiError) -> str:
    """Slack's error code, made safe to log (an unexpected body gives ``http_<status>``)."""
    response = error.response
    code = response.get("error") if isinstance(response.data, dict) else None
    if isinstance(code, str) and ERROR_CODE.fullmatch(code):
        return code
    return f"http_{response.status_code}"


def reason(code: str, language: str = FALLBACK_LANGUAGE) -> str:
    """An error code in words, for the person who typed the command."""
    if code in AUTH_ERRORS:
        return text(language, "chat.slack.reason_token", code=code)
    if code == "ratelimited":
        return text(language, "chat.slack.reason_ratelimited")
    if not ERROR_CODE.fullmatch(code):  # an exception's type name: the network
        return text(language, "chat.slack.reason_unreachable")
    return text(language, "chat.slack.reason_code", code=code)


def retry_handlers() -> list[AsyncRetryHandler]:
    """One retry on a dropped connection; up to two after a 429, waiting its Retry-After."""
    return [AsyncConnectionErrorRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=2)]


class SlackWebApi:
    """The bot's Web API client, with failures as :class:`SlackFailure` and private replies."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        """Web API client with the bot token (also used outside requests, for card updates)."""

    async def call(self, method: str, call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
        """Await one Web API call; any failure is a :class:`SlackFailure` named ``method``."""
        try:
            return await call
        except SlackApiError as error:
            raise SlackFailure(method, error_code(error)) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise SlackFailure(method, type(error).__name__) from None

    async def respond(self, card: SlackCard, message: dict[str, Any]) -> bool:
        """Post to the command's ``response_url``; False (and a log line) if that failed."""
        if card.response_url is None:
            return False
        card.response_url_posts += 1
        return await self.post_response_url(card.response_url, message)

    async def post_response_url(self, url: str, message: dict[str, Any]) -> bool:
        """Post to a ``response_url`` (a command's or a click's); False if that failed."""
        webhook = AsyncWebhookClient(
            url,
            session=self.client.session,
            timeout=int(API_TIMEOUT_SECONDS),
            retry_handlers=retry_handlers(),
        )
        try:
            response = await webhook.send_dict(message)
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning("Slack: posting to a response_url failed (%s)", type(error).__name__)
            return False
        if response.status_code != 200:
            body = response.body if ERROR_CODE.fullmatch(response.body or "") else "-"
            logger.warning(
                "Slack: a response_url refused the post (HTTP %d, %s)", response.status_code, body
            )
            return False
        return True

    async def reply(self, reply: Reply, text: str) -> None:
        """A message only the person who clicked sees: the click's ``response_url``, else
        ``chat.postEphemeral``."""
        message = {"response_type": "ephemeral", "replace_original": False, "text": text}
        if reply.url is not None and await self.post_response_url(reply.url, message):
            return
        if not reply.channel or not USER_ID.fullmatch(reply.user):
            return
        await self._post_ephemeral(reply.channel, reply.user, text)

    async def tell_user(self, card: SlackCard, text: str) -> None:
        """A message only the command's author sees: through ``response_url`` (works even with a
        refused token), else ``chat.postEphemeral``."""
        if await self.respond(card, {"response_type": "ephemeral", "text": text}):
            return
        await self._post_ephemeral(card.channel, card.user, text)

    async def _post_ephemeral(self, channel: str, user: str, text: str) -> None:
        try:
            await self.call(
                "chat.postEphemeral",
                self.client.chat_postEphemeral(channel=channel, user=user, text=text),
            )
        except SlackFailure as failure:
            logger.warning("Slack: chat.postEphemeral failed (%s)", failure.code)
