"""Slack in the user's language, against the local fake Slack with the real bolt app: the card of
a French user (``users.info`` with ``include_locale``, asked after the acknowledgement) is in
French, and a failing ``users.info`` (no ``users:read`` scope) leaves it English. The
acknowledgement (the host link) stays English: Slack's command payload carries no locale
(docs/slack.md)."""

from __future__ import annotations

from typing import Any

from ..fakes.slack import ApiCall, FakeSlack, block_actions
from .test_slack import Factory, ack_text, fake, knock, make_meetnow

__all__ = ["fake", "make_meetnow"]  # the fixtures, imported for pytest

BLOCK_KIT_SCOPES = "commands,chat:write,chat:write.public,im:write,users:read"
"""No calls:write: the Block Kit card, whose words are meetnow's own."""


def card_words(post: ApiCall) -> dict[str, Any]:
    """What a Block Kit card says, apart from names and links."""
    blocks = post.params["blocks"]
    section = next(block for block in blocks if block["type"] == "section")
    context = next(block for block in blocks if block["type"] == "context")
    actions = next(block for block in blocks if block["type"] == "actions")
    return {
        "title": blocks[0]["text"]["text"],
        "started": section["text"]["text"],
        "who": context["elements"][0]["text"],
        "join": actions["elements"][0]["text"]["text"],
    }


async def test_a_french_user_gets_a_french_card(make_meetnow: Factory, fake: FakeSlack) -> None:
    fake.scopes = BLOCK_KIT_SCOPES
    fake.locales = {"U0ADA": "fr-FR", "U0BOB": "en-US"}
    meetnow = await make_meetnow()

    status, body = await meetnow.command("--lobby", user_id="U0ADA")
    assert status == 200
    assert ack_text(body).startswith("Your host link — keep it to yourself: ")
    [post] = await fake.wait_calls("chat.postMessage")
    [lookup] = fake.calls_to("users.info")
    assert lookup.params["user"] == "U0ADA" and lookup.params["include_locale"] in ("1", "true")
    assert card_words(post) == {
        "title": "Réunion immédiate",
        "started": "Lancée par <@U0ADA>",
        "who": "Personne n'a encore rejoint l'appel",
        "join": "Rejoindre",
    }
    assert post.params["text"].startswith("<@U0ADA> a lancé un appel vidéo : Réunion immédiate.")

    # Its lobby and the replies around it are French too: a stranger's Admit is refused.
    url = next(b for b in post.params["blocks"] if b["type"] == "actions")["elements"][0]["url"]
    await knock(meetnow, url.rsplit("/", 1)[1], "Léa")

    def lobby_update() -> ApiCall | None:
        updates = fake.calls_to("chat.update")
        return next((c for c in updates if "Léa attend" in str(c.params)), None)

    await fake.wait_for(lambda: lobby_update() is not None, what="the lobby in French")
    update = lobby_update()
    assert update is not None
    admit, deny = next(
        b for b in update.params["blocks"] if b.get("block_id", "").endswith("_answer")
    )["elements"]
    assert (admit["text"]["text"], deny["text"]["text"]) == ("Faire entrer", "Refuser")
    stranger = block_actions(
        "meetnow_admit", admit["value"], user_id="U0EVE", response_url=fake.response_url("eve")
    )
    assert await fake.click(meetnow.events_url, stranger) == 200
    await fake.wait_responses()
    assert fake.responses[-1][1]["text"] == "Seul l'hôte peut faire entrer quelqu'un."

    # An English user on the same server: English.
    await meetnow.command("Standup", user_id="U0BOB")
    posts = await fake.wait_calls("chat.postMessage", 2)
    assert card_words(posts[1])["join"] == "Join"
    assert card_words(posts[1])["started"] == "Started by <@U0BOB>"


async def test_a_failing_users_info_leaves_the_card_english(
    make_meetnow: Factory, fake: FakeSlack
) -> None:
    """No users:read scope (Slack answers missing_scope): English, and the card still posts."""
    fake.scopes = BLOCK_KIT_SCOPES
    fake.locales = {"U0ADA": "fr-FR"}
    fake.fail("users.info", "missing_scope")
    meetnow = await make_meetnow()
    await meetnow.command("Standup", user_id="U0ADA")
    [post] = await fake.wait_calls("chat.postMessage")
    assert fake.calls_to("users.info", ok_only=False)[0].error == "missing_scope"
    assert card_words(post) == {
        "title": "Standup",
        "started": "Started by <@U0ADA>",
        "who": "Nobody has joined yet",
        "join": "Join",
    }
    # The check tells the languages apart: this English card fails the French expectation.
    assert card_words(post)["join"] != "Rejoindre"
