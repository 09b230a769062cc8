"""The bolt app and its transports, for one meetnow server: ``POST /slack/events`` on meetnow's own
aiohttp server (every request's signature checked by bolt, a replay refused here) and Socket Mode
(a websocket meetnow opens to Slack); the bot token checked at start-up, the cards ended at
shutdown, and the Slack libraries' logging held at WARNING."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Mapping

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from signaling.logging_setup import restrain

from ..core import SignedRequestGuard
from ..port import ChatPort
from ..slack_settings import SLACK_LIBRARY_LOGGERS, SlackSettings
from .blocks import ADMIT_ACTION, DENY_ACTION, JOIN_ACTION
from .cards import SlackCards
from .commands import SlashCommand
from .lobby import CardClicks
from .web_api import API_TIMEOUT_SECONDS, TRANSIENT_ERRORS, error_code, retry_handlers

__all__ = ["SLACK", "SlackAdapter", "install_slack", "quiet_slack_libraries"]

logger = logging.getLogger("bot.slack")  # the adapter's one logger: its lines keep their name

STARTUP_SECONDS = 5.0
"""Longest the server's start waits for Slack (``auth.test``, ``apps.connections.open``)."""
TOKEN_RECHECK_SECONDS = 60.0
"""How often ``auth.test`` is retried when Slack could not be reached at start-up."""
REFUSAL_LOG_SECONDS = 60.0
"""At most one log line this often about requests with a bad signature (anyone can send them)."""
SHUTDOWN_SECONDS = 5.0
"""Time given to end the live cards when the server stops (its rooms end with it)."""


class SlackAdapter:
    """The bolt app, its transports, and the cards, for one meetnow server."""

    def __init__(self, port: ChatPort, settings: SlackSettings) -> None:
        assert settings.slack_bot_token is not None
        self._token = settings.slack_bot_token.get_secret_value()
        secret = settings.slack_signing_secret
        self.signing_secret = secret.get_secret_value() if secret is not None else ""
        """Verifies every request to ``POST /slack/events`` (the route exists only with one)."""
        self.requests = SignedRequestGuard()
        """Signed requests already accepted (a replay is refused); its clock can be injected."""
        self._verifier = SignatureVerifier(self.signing_secret) if self.signing_secret else None
        app_token = settings.slack_app_token
        self.app_token = app_token.get_secret_value() if app_token is not None else ""
        """Socket Mode's app-level token (``xapp-...``), or empty: no Socket Mode."""
        self.client = AsyncWebClient(
            token=self._token,
            base_url=settings.slack_api_url,
            timeout=int(API_TIMEOUT_SECONDS),
            retry_handlers=retry_handlers(),
        )
        """The bot's Web API client (its aiohttp session is opened at start-up)."""
        self.cards = SlackCards(port, self.client)
        commands, clicks = SlashCommand(self.cards), CardClicks(self.cards, self.cards.web)
        # Bolt's own client is only the template of its per-request clients, which get the token
        # from _authorize: giving bolt the token as well would make it log a warning, and its
        # single-workspace mode would call auth.test before acknowledging the first command.
        self._bolt_client = AsyncWebClient(
            base_url=settings.slack_api_url,
            timeout=int(API_TIMEOUT_SECONDS),
            retry_handlers=retry_handlers(),
        )

        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            # (a plain function: bolt passes arguments by the names it finds, "self" included)
            return self._authorize(enterprise_id, team_id)

        self.bolt = AsyncApp(
            name="meetnow",
            logger=quiet_slack_libraries(),
            client=self._bolt_client,
            signing_secret=self.signing_secret,
            authorize=authorize,
            process_before_response=False,
            request_verification_enabled=True,
        )
        """The bolt app: request verification on, listeners for the command and the button."""
        self.bolt.command(re.compile(r"^/"))(commands.on_command)
        self.bolt.action(JOIN_ACTION)(clicks.on_join_click)
        self.bolt.action(ADMIT_ACTION)(clicks.on_knock_click)
        self.bolt.action(DENY_ACTION)(clicks.on_knock_click)
        self.identity: AuthorizeResult | None = None
        """Who the bot is, from ``auth.test``."""
        self.socket_mode: AsyncSocketModeHandler | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_refusal_log = -REFUSAL_LOG_SECONDS

    def _authorize(self, enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        # Never a Web API call here: this runs before the command is acknowledged.
        if self.identity is not None:
            return self.identity
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=self._token)

    async def handle_http(self, request: web.Request) -> web.Response:
        """``POST /slack/events``: slash commands and interactions, signatures checked by bolt;
        a correctly signed request seen before (a replay) is refused here, before bolt."""
        bolt_request = await to_bolt_request(request)
        if self._replayed(bolt_request.raw_body, request.headers):
            self._log_refusal("Slack: refused a replayed request (401)")
            return web.json_response({"error": "replayed request"}, status=401)
        bolt_response = await self.bolt.async_dispatch(bolt_request)
        if bolt_response.status == 401:
            self._log_refusal(
                "Slack: refused a request without a valid signature (401); if commands fail, "
                "check MEETNOW_SLACK_SIGNING_SECRET and the server clock"
            )
        return await to_aiohttp_response(bolt_response)

    def _replayed(self, body: str, headers: Mapping[str, str]) -> bool:
        """Whether a correctly signed request came before (checked and remembered at once, with
        no await in between, so two copies sent together cannot both pass)."""
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if self._verifier is None or not timestamp.isdigit() or not signature:
            return False  # not signed: bolt refuses it
        if not self._verifier.is_valid(body, timestamp, signature):
            return False
        return not self.requests.first_time(timestamp, body)

    def _log_refusal(self, line: str) -> None:
        now = time.monotonic()
        if now - self._last_refusal_log >= REFUSAL_LOG_SECONDS:  # anyone can send these
            self._last_refusal_log = now
            logger.warning(line)

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Start-up and shutdown (``cleanup_ctx``)."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=API_TIMEOUT_SECONDS)
        )
        self.client.session = self._session
        self._bolt_client.session = self._session
        try:
            try:
                checked = await asyncio.wait_for(self.check_token(), STARTUP_SECONDS)
            except TimeoutError:
                logger.warning(
                    "Slack: auth.test got no answer within %d s; /meetnow stays on, checking "
                    "again in %d s",
                    STARTUP_SECONDS,
                    TOKEN_RECHECK_SECONDS,
                )
                checked = False
            if not checked:
                self._spawn(self._recheck_token())
            if self.app_token:
                await self.start_socket_mode()
            await self.cards.restore()  # the cards of rooms that outlived a restart
            yield
        finally:
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.socket_mode is not None:
                with contextlib.suppress(Exception):
                    await self.socket_mode.close_async()  # type: ignore[no-untyped-call]
            if self.cards.refused is None:
                try:
                    await asyncio.wait_for(self.cards.end_all(), SHUTDOWN_SECONDS)
                except Exception as error:
                    logger.warning("Slack: ending the cards failed (%s)", type(error).__name__)
            await self._session.close()

    async def check_token(self) -> bool:
        """``auth.test``: True once Slack has answered (accepting or refusing the token)."""
        try:
            response = await self.client.auth_test()
        except SlackApiError as error:
            code = error_code(error)
            if code in TRANSIENT_ERRORS or code.startswith("http_5"):
                logger.warning(
                    "Slack: auth.test did not succeed (%s); /meetnow stays on, checking again "
                    "in %d s",
                    code,
                    TOKEN_RECHECK_SECONDS,
                )
                return False
            self.cards.refused = code
            logger.error(
                "Slack: the bot token was refused (%s); /meetnow is off until it is fixed", code
            )
            return True
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning(
                "Slack: the Web API could not be reached (%s); /meetnow stays on, checking again "
                "in %d s",
                type(error).__name__,
                TOKEN_RECHECK_SECONDS,
            )
            return False
        self.identity = AuthorizeResult.from_auth_test_response(
            auth_test_response=response, bot_token=self._token
        )
        scopes = response.headers.get("x-oauth-scopes") if response.headers else None
        if isinstance(scopes, str) and "calls:write" not in scopes.replace(" ", "").split(","):
            self.cards.calls.available = False
        transports = [
            name
            for name, on in (("HTTP", self.signing_secret), ("Socket Mode", self.app_token))
            if on
        ]
        logger.info(
            "Slack: connected; cards use %s; commands arrive over %s",
            "the Calls API" if self.cards.calls.available else "Block Kit (no calls:write scope)",
            " and ".join(transports) or "nothing (set a signing secret or an app token)",
        )
        return True

    async def _recheck_token(self) -> None:
        while True:
            await asyncio.sleep(TOKEN_RECHECK_SECONDS)
            if await self.check_token():
                return

    async def start_socket_mode(self) -> None:
        """Check the app-level token (one clear line if refused), then connect in the background:
        a Slack that can't be reached must not hold up the server's start."""
        url: str | None = None
        try:
            response = await asyncio.wait_for(
                self.client.apps_connections_open(app_token=self.app_token), STARTUP_SECONDS
            )
            url = str(response["url"])
        except SlackApiError as error:
            code = error_code(error)
            if code not in TRANSIENT_ERRORS and not code.startswith("http_5"):
                logger.error(
                    "Slack: the app-level token was refused (%s); Socket Mode is off until it "
                    "is fixed",
                    code,
                )
                return
            logger.warning("Slack: apps.connections.open failed (%s); retrying", code)
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning(
                "Slack: apps.connections.open failed (%s); retrying", type(error).__name__
            )
        self.socket_mode = AsyncSocketModeHandler(self.bolt, self.app_token, web_client=self.client)
        if url is not None:
            self.socket_mode.client.wss_uri = url  # use the URL just issued, not a second one
        self._spawn(self.socket_mode.connect_async())  # type: ignore[no-untyped-call]

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


SLACK = web.AppKey("meetnow_slack", SlackAdapter)
"""Where the adapter is kept on the aiohttp app (tests reach the cards through it)."""


BOLT_LOGGER = "slack_bolt.meetnow"
"""The logger given to the bolt app. Bolt copies its level onto every logger it makes (request
verification, listeners, the ``meetnow`` app logger), so it must be at WARNING before the app is
built; a level set on ``slack_bolt`` alone would not reach them."""


def quiet_slack_libraries() -> logging.Logger:
    """Hold slack-bolt and slack-sdk at WARNING or above, even when the server logs at DEBUG
    (``meetnow serve -v``): at INFO bolt logs the body of every request with a bad or stale
    signature (topic, user, channel and team ids, the ``response_url``) and slack-sdk the
    ``response_url`` of a retried post; at DEBUG both log whole requests and answers (the host
    link in an acknowledgement, names, topics). Returns the logger to give bolt."""
    restrain([*SLACK_LIBRARY_LOGGERS, BOLT_LOGGER])
    return logging.getLogger(BOLT_LOGGER)


def install_slack(app: web.Application, port: ChatPort, settings: SlackSettings) -> None:
    """Mount ``POST /slack/events`` (with a signing secret) and start Slack with the server."""
    adapter = SlackAdapter(port, settings)
    app[SLACK] = adapter
    if adapter.signing_secret:
        app.router.add_post("/slack/events", adapter.handle_http)
    elif not adapter.app_token:
        logger.error(
            "Slack: neither MEETNOW_SLACK_SIGNING_SECRET nor MEETNOW_SLACK_APP_TOKEN is set; "
            "Slack can't deliver /meetnow to this server"
        )
    app.cleanup_ctx.append(adapter.lifetime)
