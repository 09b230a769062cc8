"""Discord in the user's language, against the local fake Discord with the real discord.py client
(gateway bot) and the HTTP interactions endpoint: an interaction whose ``locale`` is ``fr`` gets
French replies (the exact French of the catalog), an ``en-US`` one English; the card, which the
whole channel sees, follows the server's ``guild_locale`` (docs/discord.md); ``/meetnow`` is
registered with French localizations in both modes."""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.discord import COMMAND
from bot.i18n import text

from ..fakes.discord import GUILD_ID
from .test_discord import (
    STARTER,
    STRANGER,
    Env,
    answered,
    discord_env,
    embed_of,
    knock,
    knock_rows,
    signed_post,
)

FR_HOST_LINK_START = "Votre lien d'hôte — gardez-le pour vous : "
EN_HOST_LINK_START = "Your host link — keep it to yourself: "


def card_words(message: dict[str, Any]) -> dict[str, Any]:
    """What a card says, apart from names and links: its description's first line, its fields'
    names, the Join button's label."""
    embed = embed_of(message)
    return {
        "title": embed["title"],
        "started": embed["description"].split("\n")[0],
        "fields": [(field["name"], field["value"]) for field in embed.get("fields", [])],
        "join": message["components"][0]["components"][0]["label"],
    }


async def host_link_message(env: Env, payload: dict[str, Any]) -> str:
    """The ephemeral follow-up with the host link on the author's own interaction webhook."""
    call = await env.fake.wait_for(
        lambda: next(
            (
                c
                for c in env.fake.calls_to("followup")
                if c.status == 200 and payload["token"] in c.path and "#host=" in c.body["content"]
            ),
            None,
        )
    )
    content: str = call.body["content"]
    return content


async def test_a_french_interaction_gets_french_and_an_english_one_english() -> None:
    async with discord_env() as env:
        payload, message = await answered(env, locale="fr", guild_locale="fr")
        starter = f"<@{STARTER['id']}>"
        assert card_words(message) == {
            "title": "Réunion immédiate",
            "started": f"Lancée par {starter}",
            "fields": [("Dans l'appel", "Personne pour le moment")],
            "join": "Rejoindre",
        }
        french_link = await host_link_message(env, payload)
        assert french_link.startswith(FR_HOST_LINK_START)
        assert "Quiconque le possède est hôte lui aussi." in french_link

        payload, message = await answered(env, locale="en-US", guild_locale="en-US")
        assert card_words(message) == {
            "title": "Meet now",
            "started": f"Started by {starter}",
            "fields": [("In the call", "Nobody yet")],
            "join": "Join",
        }
        english_link = await host_link_message(env, payload)
        assert english_link.startswith(EN_HOST_LINK_START)
        # The check tells the languages apart: the English reply fails the French expectation.
        assert not english_link.startswith(FR_HOST_LINK_START)


async def test_the_card_follows_the_server_and_the_reply_the_user() -> None:
    """A French user on an English server: the card (the whole channel's) in English, the
    host link (theirs alone) in French; with no ``guild_locale``, the card is theirs: French."""
    async with discord_env() as env:
        payload, message = await answered(env, locale="fr", guild_locale="en-US")
        assert card_words(message)["join"] == "Join"
        assert (await host_link_message(env, payload)).startswith(FR_HOST_LINK_START)

        payload, message = await answered(env, locale="fr", guild_locale=None)
        assert card_words(message)["join"] == "Rejoindre"


async def test_a_french_user_is_told_in_french_what_was_wrong() -> None:
    async with discord_env() as env:
        _, refusal = await answered(env, topic="Point", duration="n'importe", locale="fr")
        assert refusal["flags"] & 64
        assert refusal["content"] == (
            "`for` indique combien de temps le lien fait entrer, par ex. `2h`, `90m` ou `1h30m` "
            "(7 jours au plus, `7d`). Aucune réunion n'a été lancée."
        )
        _, refusal = await answered(env, topic="--bogus Point", locale="fr")
        assert refusal["content"].startswith("Les options sont `--lobby` et `--for <durée>`. ")


async def test_over_http_the_host_link_and_a_refused_click_speak_french() -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw().hex()
    async with discord_env(gateway=False, discord_public_key=public) as env:
        fake, post = env.fake, signed_post(env, key)
        payload = fake.interaction_payload(
            topic="Point", lobby=True, locale="fr", guild_locale="fr"
        )
        message = fake.create_answer(payload, await post(payload))
        assert embed_of(message)["description"].split("\n")[1] == (
            "Salle d'attente activée : l'hôte fait entrer les gens."
        )
        # _send_host_link: the follow-up after the answer, in the author's language.
        assert (await host_link_message(env, payload)).startswith(FR_HOST_LINK_START)

        url = message["components"][0]["components"][0]["url"]
        ada = await knock(env, url, "Ada")
        await fake.wait_for(lambda: knock_rows(message))
        ((admit, deny),) = knock_rows(message)
        assert (admit["label"], deny["label"]) == ("Faire entrer Ada", "Refuser Ada")
        refused = await post(fake.component_payload(message, admit["custom_id"], STRANGER, "fr"))
        assert refused["data"]["content"] == "Seul l'hôte peut faire entrer quelqu'un."
        refused = await post(fake.component_payload(message, admit["custom_id"], STRANGER))
        assert refused["data"]["content"] == "Only the host can admit people."
        await ada.close()


async def test_meetnow_is_registered_with_french_in_both_modes() -> None:
    french = {
        "": text("fr", "chat.discord.command_description"),
        "topic": text("fr", "chat.discord.topic_description"),
        "invite": text("fr", "chat.discord.invite_description"),
        "lobby": text("fr", "chat.discord.lobby_description"),
        "for": text("fr", "chat.discord.for_description"),
    }
    assert french[""] != text("en", "chat.discord.command_description")

    def localizations(command: dict[str, Any]) -> dict[str, Any]:
        found = {"": command["description_localizations"].get("fr")}
        for option in command["options"]:
            found[option["name"]] = option["description_localizations"].get("fr")
        return found

    # The HTTP-only setup registers COMMAND as JSON (docs/discord.md's curl).
    assert localizations(json.loads(json.dumps(COMMAND))) == french
    # The gateway bot registers through discord.py's app_commands and the CatalogTranslator.
    async with discord_env() as env:
        await env.fake.wait_for(lambda: env.fake.commands.get(GUILD_ID))
        (registered,) = env.fake.commands[GUILD_ID]
        assert localizations(registered) == french
