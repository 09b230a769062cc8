"""The Discord adapter's settings (``MEETNOW_DISCORD_*``), and what ``meetnow serve`` says about them.

Read with the rest of meetnow's settings (the environment or ``.env``); the composition root
(``meetnow``) decides from :meth:`DiscordSettings.discord_enabled` whether to install the adapter.
This module does not import discord.py: reading settings must stay cheap.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["DISCORD_EXAMPLES", "DiscordSettings"]

DISCORD_EXAMPLES: dict[str, str] = {
    "discord_guild_ids": "comma-separated numeric ids, e.g. 123456789012345678",
}
"""What a valid value looks like, for settings errors (field -> example)."""


class DiscordSettings(BaseSettings):
    """The Discord adapter's configuration. Each field is read from ``MEETNOW_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="MEETNOW_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    discord_token: SecretStr | None = None
    """Discord bot token: turns the gateway bot on."""
    discord_api_url: str = "https://discord.com/api/v10"
    """Discord REST base; the gateway is discovered through it (``GET /gateway/bot``)."""
    discord_guild_ids: Annotated[list[int], NoDecode] = []
    """Guilds to register ``/meetnow`` in (at once), comma-separated; empty: globally."""
    discord_public_key: str | None = None
    """Discord application public key (hex): turns ``POST /discord/interactions`` on."""
    discord_application_id: str | None = None
    """Discord application id, for the HTTP interactions endpoint's follow-ups."""

    @field_validator("discord_guild_ids", mode="before")
    @classmethod
    def _split_guild_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    def discord_enabled(self) -> bool:
        """Whether the Discord adapter runs: a bot token (gateway) or a public key (HTTP)."""
        return self.discord_token is not None or self.discord_public_key is not None

    def discord_summary(self) -> str | None:
        """The ``chat:`` part of the start-up summary for Discord; None when it is off."""
        if not self.discord_enabled():
            return None
        ways = [
            way
            for way, on in (
                ("gateway", self.discord_token is not None),
                ("interactions at /discord/interactions", self.discord_public_key is not None),
            )
            if on
        ]
        return f"Discord ({', '.join(ways)})"

    def discord_warnings(self) -> list[str]:
        """Discord settings that will not do what they seem to, each naming the variable."""
        warnings = []
        if self.discord_public_key and not self.discord_application_id:
            warnings.append(
                "Discord interactions need the application id for their replies: set "
                "MEETNOW_DISCORD_APPLICATION_ID"
            )
        if (
            self.discord_token is None
            and not self.discord_public_key
            and (self.discord_application_id or self.discord_guild_ids)
        ):
            warnings.append(
                "Discord is off: set MEETNOW_DISCORD_TOKEN (gateway bot) or "
                "MEETNOW_DISCORD_PUBLIC_KEY (interactions endpoint) to turn it on"
            )
        return warnings
