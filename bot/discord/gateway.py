"""The gateway bot: a discord.py :class:`~discord.AutoShardedClient` (``MEETNOW_DISCORD_TOKEN``),
its ``/meetnow`` command, its Admit / Deny buttons, and its answers to both."""

from __future__ import annotations

import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import discord
from discord import app_commands

from bot.i18n import FALLBACK_LANGUAGE, language_for, text

from .cards import log_card
from .commands import (
    COMMAND_DESCRIPTION,
    COMMAND_NAME,
    FOR_DESCRIPTION,
    INVITE_DESCRIPTION,
    LOBBY_DESCRIPTION,
    TOPIC_DESCRIPTION,
    CallRequest,
    invite_url,
)
from .embeds import KNOCK_PATTERN, Edit, Knock
from .rest import describe
from .translator import CatalogTranslator

if TYPE_CHECKING:
    from .adapter import DiscordAdapter

__all__ = ["KnockButton", "MeetnowBot", "edit_view", "join_view", "quiet_discord_debug"]

# One logger for the whole adapter, whichever module logs (docs/discord.md shows its name).
logger = logging.getLogger("bot.discord")


class KnockButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=KNOCK_PATTERN
):
    """Admit / Deny for the gateway bot: a *dynamic item*, so discord.py routes every click on a
    button whose ``custom_id`` matches :data:`KNOCK_PATTERN` here, whichever message it is on,
    without keeping a View (and so anything about a room) per message."""

    def __init__(self, custom_id: str, label: str = "", *, row: int | None = None) -> None:
        admit = custom_id.split(":", 2)[1] == "admit"
        super().__init__(
            discord.ui.Button(
                label=label
                or text(FALLBACK_LANGUAGE, f"chat.discord.{'admit' if admit else 'deny'}"),
                style=discord.ButtonStyle.success if admit else discord.ButtonStyle.danger,
                custom_id=custom_id,
            ),
            row=row,
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> KnockButton:
        return cls(match.group(0), getattr(item, "label", None) or "")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        if isinstance(client, MeetnowBot):
            await answer_click(client.adapter, interaction, self.custom_id)


def join_view(
    url: str, knocks: tuple[Knock, ...] = (), *, language: str = FALLBACK_LANGUAGE
) -> discord.ui.View:
    """The card's components for discord.py: the Join link, then a row of Admit / Deny per
    knock (the same as :func:`bot.discord.embeds.join_components` and ``Knock.buttons``)."""
    view = discord.ui.View(timeout=None)
    join = text(language, "chat.discord.join")
    view.add_item(discord.ui.Button(label=join, url=url, style=discord.ButtonStyle.link, row=0))
    for row, knock in enumerate(knocks, start=1):
        view.add_item(KnockButton(knock.custom_id("admit"), knock.label("admit"), row=row))
        view.add_item(KnockButton(knock.custom_id("deny"), knock.label("deny"), row=row))
    return view


def edit_view(edit: Edit) -> discord.ui.View | None:
    """An edit's buttons for discord.py (None: the card has none left)."""
    return join_view(edit.join_url, edit.knocks, language=edit.language) if edit.join_url else None


class MeetnowBot(discord.AutoShardedClient):
    """The gateway client: sharded (it asks ``GET /gateway/bot`` how), guilds intent only."""

    def __init__(self, adapter: DiscordAdapter) -> None:
        # Voice is never used; keep discord.py from warning that its libraries are missing.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(
            intents=discord.Intents(guilds=True),
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            max_messages=None,
        )
        self.adapter = adapter
        self.tree: app_commands.CommandTree[MeetnowBot] = app_commands.CommandTree(self)
        self.tree.add_command(
            app_commands.Command(
                name=COMMAND_NAME,
                description=COMMAND_DESCRIPTION,
                callback=_meetnow_command,
                allowed_contexts=app_commands.AppCommandContext(guild=True),
                allowed_installs=app_commands.AppInstallationType(guild=True),
            )
        )
        # Admit / Deny clicks, on any card, reach KnockButton.callback (see KnockButton).
        self.add_dynamic_items(KnockButton)
        self._announced = False

    async def setup_hook(self) -> None:
        # /meetnow's descriptions in every catalog's language (Discord shows the user's).
        await self.tree.set_translator(CatalogTranslator())
        await register_commands(self)

    async def on_connect(self) -> None:
        if not self._announced and self.application_id is not None:
            self._announced = True
            logger.info(
                "discord: connected to the gateway (%d shard(s)); /meetnow arrives over it",
                self.shard_count or 1,
            )
            self.adapter.announce(invite_url(self.application_id))


@app_commands.describe(
    topic=TOPIC_DESCRIPTION,
    invite=INVITE_DESCRIPTION,
    lobby=LOBBY_DESCRIPTION,
    for_=FOR_DESCRIPTION,
)
@app_commands.rename(for_="for")
async def _meetnow_command(
    interaction: discord.Interaction[MeetnowBot],
    topic: str | None = None,
    invite: discord.User | None = None,
    lobby: bool | None = None,
    for_: str | None = None,
) -> None:
    request = CallRequest(
        user_id=interaction.user.id,
        guild_id=interaction.guild_id,
        topic=topic,
        invite_id=invite.id if invite is not None else None,
        lobby=bool(lobby),
        duration=for_,
        language=language_for(str(interaction.locale)),
        # Seen by the whole channel: the server's language if Discord says it (docs/discord.md).
        card_language=language_for(str(interaction.guild_locale or interaction.locale)),
    )
    await answer_command(interaction.client.adapter, interaction, request)


async def answer_command(
    adapter: DiscordAdapter, interaction: discord.Interaction[MeetnowBot], request: CallRequest
) -> None:
    """``/meetnow`` over the gateway: the card (or a refusal), then the host link."""
    room, reply = adapter.start_call(request)
    card = None
    if room is not None:
        card = adapter.open_card(
            room,
            request.user_id,
            interaction.application_id,
            interaction.channel_id,
            interaction.token,
            interaction,
            language=request.card_language,
            reply_language=request.language,
        )
    try:
        if reply.embed is None:
            await interaction.response.send_message(reply.content or "", ephemeral=True)
            return
        assert reply.join_url is not None
        callback = await interaction.response.send_message(
            reply.content,
            embed=reply.embed,
            view=join_view(reply.join_url, language=reply.language),
            allowed_mentions=reply.allowed_mentions(),
        )
    except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
        logger.error("discord: could not answer /meetnow: %s", describe(error))
        if card is not None:
            card.dead = True
            card.posted.set()
        return
    assert card is not None and room is not None
    card.message_id = callback.message_id
    card.posted.set()
    if card.message_id is None:
        with contextlib.suppress(discord.HTTPException, aiohttp.ClientError, TimeoutError):
            card.message_id = (await interaction.original_response()).id
    adapter.cards.keep_address(room, card)  # so it is still edited after a restart
    try:
        await interaction.followup.send(
            adapter.host_link_text(room, request.language),
            ephemeral=True,
            suppress_embeds=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )
    except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
        log_card(card, "host_link", "could not send the host link", error)
    await adapter.warn_if_blind(card, interaction.app_permissions.value)


async def answer_click(
    adapter: DiscordAdapter, interaction: discord.Interaction[Any], custom_id: str
) -> None:
    """Answer a click over the gateway: update the message (type 7) or refuse (ephemeral)."""
    try:
        message = interaction.message
        answer = await adapter.click(
            interaction.user.id,
            message.id if message else None,
            custom_id,
            language_for(str(interaction.locale)),
        )
        if answer.edit is not None:
            await interaction.response.edit_message(
                embed=answer.edit.embed,
                view=edit_view(answer.edit),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        else:
            await interaction.response.send_message(answer.text or "", ephemeral=True)
    except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
        logger.warning("discord: could not answer a button click: %s", describe(error))
    except Exception as error:
        # Never let it reach discord.py: its log line would print the button's custom_id.
        logger.error("discord: a button click failed: %s", type(error).__name__)


async def register_commands(client: MeetnowBot) -> None:
    """Register ``/meetnow``: in each configured guild (shows at once), else globally."""
    guild_ids = client.adapter.settings.discord_guild_ids
    targets: list[discord.Object | None] = (
        [discord.Object(id=g) for g in guild_ids] if guild_ids else [None]
    )
    for guild in targets:
        try:
            if guild is not None:
                client.tree.copy_global_to(guild=guild)
            await client.tree.sync(guild=guild)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            where = f"in guild {guild.id}" if guild is not None else "globally"
            logger.error(
                "discord: could not register /meetnow %s: %s (was the bot invited with "
                "the invite URL?)",
                where,
                describe(error),
            )
        else:
            if guild is not None:
                logger.info("discord: /meetnow registered in guild %s", guild.id)
            else:
                logger.info("discord: /meetnow registered globally (may take a while to show)")


async def run_gateway(client: MeetnowBot, token: str) -> None:
    """Run the bot until it stops; a refused token or a lost gateway turns the bot off alone."""
    try:
        await client.start(token)
    except discord.LoginFailure:
        logger.error(
            "discord: the bot token was refused at login (401); the Discord bot is off, "
            "the rest of meetnow keeps running. Check MEETNOW_DISCORD_TOKEN."
        )
    except discord.PrivilegedIntentsRequired:
        logger.error("discord: the gateway refused our intents; the Discord bot is off")
    except (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError) as error:
        logger.error(
            "discord: the Discord bot stopped (%s); the rest of meetnow keeps running",
            describe(error),
        )
    finally:
        if not client.is_closed():
            with contextlib.suppress(Exception):
                await client.close()


class _NoDebugPayloads(logging.Filter):
    """discord.py logs whole payloads and URLs at DEBUG: interaction tokens, names, topics and
    room links. Those records are dropped; its INFO and above carry none of them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_PAYLOAD_LOGGERS: Final = (
    "discord.http",
    "discord.webhook.async_",
    "discord.gateway",
    "discord.state",
    "discord.client",
    "discord.shard",
)


def quiet_discord_debug() -> None:
    for name in _PAYLOAD_LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, _NoDebugPayloads) for f in log.filters):
            log.addFilter(_NoDebugPayloads())
