"""Every setting of meetnow: the server's and each chat platform's, read together.

The same ``MEETNOW_*`` variables (environment or ``.env``) as ever; each part declares its own
(:class:`signaling.settings.Settings`, :class:`bot.slack_settings.SlackSettings`,
:class:`bot.discord_settings.DiscordSettings`) and this class is all of them at once, so one
object can be handed to the server and to each adapter as that part's settings.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from bot.discord_settings import DISCORD_EXAMPLES, DiscordSettings
from bot.slack_settings import SlackSettings
from signaling.settings import Settings

__all__ = ["SETTING_EXAMPLES", "MeetnowSettings"]

SETTING_EXAMPLES: dict[str, str] = {**DISCORD_EXAMPLES}
"""What a valid value looks like, for the chat platforms' settings (the server's own are in
:data:`signaling.startup.EXAMPLES`)."""


class MeetnowSettings(Settings, SlackSettings, DiscordSettings):
    """meetnow's whole configuration: the server's settings and every chat platform's."""

    model_config = SettingsConfigDict(
        env_prefix="MEETNOW_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    def chat_summary(self) -> list[str]:
        """The chat platforms that run, as the start-up summary names them."""
        return [line for line in (self.slack_summary(), self.discord_summary()) if line is not None]

    def chat_warnings(self) -> list[str]:
        """Half-configured chat platforms, each warning naming the variable to set."""
        return [*self.slack_warnings(), *self.discord_warnings()]
