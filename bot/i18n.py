"""The chat adapters' words, from the web client's catalogs (``web_client/i18n/<lang>.json``, the
``chat.*`` keys): one file per language for the pages and the adapters alike, English the reference.

Read through :mod:`importlib.resources` from the installed ``web_client`` package, so it works the
same from a checkout and from a wheel (``pyproject.toml`` ships ``i18n/*.json`` as package data).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

__all__ = [
    "FALLBACK_LANGUAGE",
    "available_languages",
    "catalog",
    "language_for",
    "localized",
    "server_text",
    "text",
]

FALLBACK_LANGUAGE = "en"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@cache
def available_languages() -> tuple[str, ...]:
    """Every language with a catalog, English first."""
    folder = resources.files("web_client") / "i18n"
    found = sorted(
        entry.name.removesuffix(".json")
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    )
    return (FALLBACK_LANGUAGE, *(name for name in found if name != FALLBACK_LANGUAGE))


@cache
def catalog(language: str) -> dict[str, str]:
    """One language's catalog (every key, ``page.*`` included)."""
    raw = (resources.files("web_client") / "i18n" / f"{language}.json").read_text(encoding="utf-8")
    words = json.loads(raw)
    if not isinstance(words, dict):
        raise ValueError(f"web_client/i18n/{language}.json is not an object of strings")
    return {str(key): str(value) for key, value in words.items()}


def language_for(locale: str | None) -> str:
    """The catalog for a platform's locale (``fr``, ``fr-FR``, ``fr_CA`` -> ``fr``); English for
    none or for a language without a catalog."""
    primary = re.split(r"[-_]", (locale or "").strip().lower())[0]
    return primary if primary in available_languages() else FALLBACK_LANGUAGE


def text(language: str, key: str, **params: object) -> str:
    """The words for ``key`` in ``language`` (English if that catalog lacks it), placeholders
    filled. An unknown key is a programming error: it raises, so a test finds it."""
    words = catalog(language) if language in available_languages() else {}
    template = words.get(key) or catalog(FALLBACK_LANGUAGE)[key]
    return _PLACEHOLDER.sub(lambda match: str(params.get(match.group(1), match.group(0))), template)


def server_text(language: str, message: str) -> str:
    """A refusal the room service wrote (in English, e.g. a rate limit) in ``language``: the
    ``chat.server.*`` key whose English is ``message``; ``message`` itself if none is."""
    for key, english in catalog(FALLBACK_LANGUAGE).items():
        if key.startswith("chat.server.") and english == message:
            return text(language, key)
    return message


def localized(key: str) -> dict[str, str]:
    """The other languages' words for ``key``, by language (for Discord's ``*_localizations``)."""
    return {
        language: catalog(language)[key]
        for language in available_languages()
        if language != FALLBACK_LANGUAGE and key in catalog(language)
    }
