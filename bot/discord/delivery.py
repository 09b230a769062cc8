"""Card edits: through the interaction while its token is fresh (15 minutes), then through the
bot's channel message API (discord.py's client where the gateway bot is logged in, else REST with
the bot token: on Redis the gateway runs on one node only); each failure logged once per card."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

import aiohttp
import discord

from bot.i18n import text as words

from .cards import DiscordCard, log_card
from .commands import EMBED_LINKS, VIEW_CHANNEL
from .embeds import EPHEMERAL, Edit
from .gateway import edit_view
from .rest import DiscordApiError, snowflake

if TYPE_CHECKING:
    from .adapter import DiscordAdapter

__all__ = ["deliver", "warn_if_blind"]

# One logger for the whole adapter, whichever module logs (docs/discord.md shows its name).
logger = logging.getLogger("bot.discord")

TOKEN_FRESH_SECONDS: Final = 14 * 60
"""Interaction tokens last 15 minutes; stop using one a minute early."""
POSTED_TIMEOUT: Final = 15.0
"""How long a card update waits for the answer to the command to be sent."""


async def deliver(adapter: DiscordAdapter, card: DiscordCard, edit: Edit) -> None:
    """Show ``edit`` on ``card``: through the interaction while its token is fresh, then
    through the bot's channel message API. Failures are logged once per card and kind."""
    if not card.posted.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(card.posted.wait(), POSTED_TIMEOUT)
    if card.dead or not card.posted.is_set():
        return
    if card.via_interaction and adapter.clock() - card.issued_at < TOKEN_FRESH_SECONDS:
        try:
            await _edit_original(adapter, card, edit)
            return
        except DiscordApiError as error:
            if not error.token_expired:
                _edit_failed(card, error)
                return
    card.via_interaction = False
    token = adapter.settings.discord_token
    if card.channel_id is None or card.message_id is None or token is None:
        card.dead = True
        if token is None:
            adapter.log_once(
                "no_bot_token",
                "discord: a call message is no longer updated: its interaction token "
                "expired (15 minutes) and no bot token is set (MEETNOW_DISCORD_TOKEN)",
            )
        else:
            log_card(card, "no_bot_path", "a call message is no longer updated", None)
        return
    client = adapter.ready_client()
    try:
        if client is not None:
            await _edit_in_channel(client, card.channel_id, card.message_id, edit)
        else:
            # The gateway bot is logged in on one node only (or not yet): the same edit over
            # REST with the bot token, which needs no gateway.
            path = f"/channels/{card.channel_id}/messages/{card.message_id}"
            await _edit_with_bot_token(adapter, token.get_secret_value(), path, edit)
    except DiscordApiError as error:
        _edit_failed(card, error)


async def _edit_with_bot_token(
    adapter: DiscordAdapter, bot_token: str, path: str, edit: Edit
) -> None:
    try:
        await adapter.rest.call("PATCH", path, edit.data(), bot_token=bot_token)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise DiscordApiError(0) from error


async def _edit_original(adapter: DiscordAdapter, card: DiscordCard, edit: Edit) -> None:
    try:
        if card.interaction is not None:
            message = await card.interaction.edit_original_response(
                embed=edit.embed,
                view=edit_view(edit),
                allowed_mentions=discord.AllowedMentions.none(),
            )
            if card.message_id is None:
                card.message_id = message.id
            return
        data = await adapter.rest.call(
            "PATCH",
            f"/webhooks/{card.application_id}/{card.token}/messages/@original",
            edit.data(),
        )
        if card.message_id is None and isinstance(data, dict):
            card.message_id = snowflake(data, "id")
    except discord.HTTPException as error:
        raise DiscordApiError.wrap(error) from None
    except (aiohttp.ClientError, TimeoutError) as error:
        raise DiscordApiError(0) from error


async def _edit_in_channel(
    client: discord.Client, channel_id: int, message_id: int, edit: Edit
) -> None:
    message = client.get_partial_messageable(channel_id).get_partial_message(message_id)
    try:
        await message.edit(
            embed=edit.embed, view=edit_view(edit), allowed_mentions=discord.AllowedMentions.none()
        )
    except discord.HTTPException as error:
        raise DiscordApiError.wrap(error) from None
    except (aiohttp.ClientError, TimeoutError) as error:
        raise DiscordApiError(0) from error


def _edit_failed(card: DiscordCard, error: DiscordApiError) -> None:
    if error.message_gone:
        card.dead = True
        log_card(card, "gone", "a call message was deleted; no more updates", None)
    elif error.forbidden:
        log_card(
            card,
            "forbidden",
            "cannot update a call message: missing permissions in its channel "
            "(the bot needs View Channel and Embed Links there)",
            error,
        )
    elif error.status == 429:
        log_card(card, "rate_limited", "call message update rate limited", error)
    else:
        log_card(card, f"failed:{error.status}", "call message update failed", error)


async def warn_if_blind(
    adapter: DiscordAdapter, card: DiscordCard, permissions: int | None
) -> None:
    """After 15 minutes the bot edits with its own token: tell the user now (ephemeral) if it
    cannot see the channel, while the interaction can still answer."""
    if adapter.settings.discord_token is None or permissions is None:
        return
    needed = VIEW_CHANNEL | EMBED_LINKS
    if permissions & needed == needed:
        return
    logger.warning("discord: the bot lacks View Channel or Embed Links where /meetnow was used")
    text = words(card.reply_language, "chat.discord.blind")
    try:
        if card.interaction is not None:
            await card.interaction.followup.send(text, ephemeral=True)
        else:
            await adapter.rest.call(
                "POST",
                f"/webhooks/{card.application_id}/{card.token}",
                {"content": text, "flags": EPHEMERAL, "allowed_mentions": {"parse": []}},
            )
    except (discord.HTTPException, DiscordApiError, aiohttp.ClientError, TimeoutError) as error:
        log_card(card, "warn", "could not send the permissions warning", error)
