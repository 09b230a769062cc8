"""French (and any other catalog's) words for ``/meetnow`` registered through discord.py's
``app_commands`` (the gateway bot): a :class:`discord.app_commands.Translator` set on the command
tree, which discord.py asks for every locale when it syncs the command. The HTTP endpoint's
command JSON carries the same words (``bot.discord.commands.COMMAND``)."""

from __future__ import annotations

from discord import Locale, app_commands

from bot.i18n import FALLBACK_LANGUAGE, catalog, language_for, text

__all__ = ["CatalogTranslator"]

_TRANSLATED = frozenset(
    {
        app_commands.TranslationContextLocation.command_description,
        app_commands.TranslationContextLocation.parameter_description,
    }
)
"""Descriptions only: the command's and options' names stay as typed (``/meetnow topic:``)."""


def english_key(message: str) -> str | None:
    """The ``chat.discord.*`` key whose English is ``message`` (the command's words are defined
    from the English catalog, so each has one)."""
    for key, english in catalog(FALLBACK_LANGUAGE).items():
        if key.startswith("chat.discord.") and english == message:
            return key
    return None


class CatalogTranslator(app_commands.Translator):
    """Each description in the catalog of the asked locale; None (Discord shows the English)
    for English, a language without a catalog, or words that are not the catalog's."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if context.location not in _TRANSLATED:
            return None
        language = language_for(locale.value)
        key = english_key(string.message)
        if language == FALLBACK_LANGUAGE or key is None:
            return None
        return text(language, key)
