"""Block Kit rendering: the card, its lobby, and the small blocks they are made of.

Untrusted text (topics, names) only goes out as ``plain_text`` or escaped mrkdwn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from signaling.rooms import Room, iso_utc

from ..core import CallSummary
from ..i18n import FALLBACK_LANGUAGE, text
from .card import SlackCard

__all__ = [
    "ADMIT_ACTION",
    "DENY_ACTION",
    "JOIN_ACTION",
    "context_plain",
    "join_button",
    "lobby_message",
    "mrkdwn_escape",
    "render",
]

JOIN_ACTION = "meetnow_join"
"""``action_id`` of every Join button. A link button still sends Slack an interaction, which must
be acknowledged (or Slack shows a warning next to the button)."""
ADMIT_ACTION = "meetnow_admit"
DENY_ACTION = "meetnow_deny"
"""``action_id`` of the lobby's buttons; their ``value`` is ``<room id>:<participant id>``."""
MAX_KNOCKS_SHOWN = 10
"""People waiting shown with buttons (two blocks each; Slack allows 50 blocks a message)."""
MAX_NAMES_ON_CARD = 20
"""Names listed on a Block Kit card; more show as "and N more"."""


def render(
    card: SlackCard, room: Room, summary: CallSummary | None = None
) -> tuple[list[dict[str, Any]], str]:
    """The card's blocks and its notification text. Untrusted text (topic, names) only goes
    out as ``plain_text`` or escaped."""
    language = card.language
    title = mrkdwn_escape(card.title)
    mention = f"<@{card.user}>"
    notification = text(
        language, "chat.slack.started_call", mention=mention, title=title, url=card.url
    )
    if card.mode == "call" and card.call_id is not None:
        blocks: list[dict[str, Any]] = [{"type": "call", "call_id": card.call_id}]
        if summary is not None:
            blocks.append(context_plain(summary.text(language)))
            return blocks, f"{title}: {summary.text(language)}"
        notes = [invited_line(card.invitees, language)] if card.invitees else []
        if room.join_deadline is not None:
            notes.append(open_until(room.join_deadline, language))
        if notes:
            blocks.append(context_mrkdwn(" · ".join(notes)))
        return blocks, notification
    header = {"type": "header", "text": plain(card.title[:150])}
    if summary is not None:
        blocks = [header, {"type": "section", "text": plain(summary.text(language))}]
        return blocks, f"{title}: {summary.text(language)}"
    started = text(language, "chat.slack.started_by", mention=mention)
    if card.invitees:
        started += f" · {invited_line(card.invitees, language)}"
    if room.join_deadline is not None:
        started += f" · {open_until(room.join_deadline, language)}"
    blocks = [
        header,
        {"type": "section", "text": {"type": "mrkdwn", "text": started}},
        context_plain(who_is_in(room, language)),
        join_button(card.url, language),
        *lobby_blocks(room, language),
    ]
    if card.invitees:
        notification += f" ({invited_line(card.invitees, language)})"
    return blocks, notification


def mrkdwn_escape(text: str) -> str:
    """Untrusted text made inert in Slack's mrkdwn (no mentions, no links, no ``<!channel>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text or " ", "emoji": False}


def context_plain(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [plain(text)]}


def context_mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def invited_line(invitees: Sequence[str], language: str = FALLBACK_LANGUAGE) -> str:
    mentions = " ".join(f"<@{user_id}>" for user_id in invitees)
    return text(language, "chat.slack.invited", mentions=mentions)


def join_button(url: str, language: str = FALLBACK_LANGUAGE) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": JOIN_ACTION,
                "text": plain(text(language, "chat.slack.join")),
                "url": url,
                "style": "primary",
            }
        ],
    }


def who_is_in(room: Room, language: str = FALLBACK_LANGUAGE) -> str:
    names = [p.name for p in room.participants.values()]
    if not names:
        return text(language, "chat.slack.nobody_yet")
    shown = ", ".join(names[:MAX_NAMES_ON_CARD])
    more = len(names) - MAX_NAMES_ON_CARD
    if more > 0:
        shown = text(language, "chat.slack.and_more", names=shown, more=more)
    return text(language, "chat.slack.in_call", count=len(names), names=shown)


def lobby_message(room: Room, language: str = FALLBACK_LANGUAGE) -> dict[str, Any]:
    """A message of its own for the lobby: who waits, with buttons, or that nobody does. Its
    notification text carries no name (names only go out as ``plain_text``)."""
    blocks = lobby_blocks(room, language)
    if not blocks:
        nobody = text(language, "chat.slack.nobody_waiting")
        return {"text": nobody, "blocks": [context_plain(nobody)]}
    return {"text": text(language, "chat.slack.someone_waiting"), "blocks": blocks}


def lobby_blocks(room: Room, language: str = FALLBACK_LANGUAGE) -> list[dict[str, Any]]:
    """ "<name> is waiting" (plain text: names are untrusted) and *Admit* / *Deny* for each
    person in the lobby; empty when nobody waits."""
    blocks: list[dict[str, Any]] = []
    waiting = list(room.waiting.values())
    for participant in waiting[:MAX_KNOCKS_SHOWN]:
        value = f"{room.id}:{participant.id}"
        blocks.append(
            {
                "type": "section",
                "block_id": f"knock_{participant.id}",
                "text": plain(text(language, "chat.slack.is_waiting", name=participant.name)),
            }
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"knock_{participant.id}_answer",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ADMIT_ACTION,
                        "text": plain(text(language, "chat.slack.admit")),
                        "value": value,
                        "style": "primary",
                    },
                    {
                        "type": "button",
                        "action_id": DENY_ACTION,
                        "text": plain(text(language, "chat.slack.deny")),
                        "value": value,
                        "style": "danger",
                    },
                ],
            }
        )
    more = len(waiting) - MAX_KNOCKS_SHOWN
    if more > 0:
        blocks.append(context_plain(text(language, "chat.slack.more_waiting", more=more)))
    return blocks


def open_until(deadline: float, language: str = FALLBACK_LANGUAGE) -> str:
    """mrkdwn: when the link stops letting people in, in each reader's own time zone (Slack
    fills in ``{date_short_pretty}`` and ``{time}``; the catalog places them)."""
    stamp = int(deadline)
    shown = text(language, "chat.slack.date_format")
    return text(language, "chat.slack.open_until", date=f"<!date^{stamp}^{shown}|{iso_utc(stamp)}>")
