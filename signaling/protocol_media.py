"""The messages of screen sharing and of who is speaking.

``screen_share`` (client to server) starts or stops publishing a screen; ``speakers`` (server to
client) says who speaks now and who holds the floor. ``protocol.py`` puts them in its unions;
``docs/protocol.md`` is their written form.
"""

from __future__ import annotations

from typing import Literal

from .protocol_base import ClientWireMessage, WireMessage

__all__ = ["SCREEN_SOURCES", "ScreenShareMessage", "Source", "SpeakersMessage"]

Source = Literal["camera", "microphone", "screen", "screen_audio"]
"""What an m-line carries: a camera or a screen (kind ``video``), a microphone or a screen's tab
audio (kind ``audio``)."""

SCREEN_SOURCES: tuple[Source, Source] = ("screen", "screen_audio")


class ScreenShareMessage(ClientWireMessage):
    """Start or stop publishing a screen. Starting, the server sends a new ``offer`` with the
    m-line(s) to publish it on (``tracks`` entries with the client's own id and source ``screen``,
    and ``screen_audio`` when ``audio``); stopping, those m-lines go inactive everywhere.
    The current state again is a no-op."""

    type: Literal["screen_share"] = "screen_share"
    sharing: bool
    audio: bool = False
    """The screen comes with tab audio (an m-line of source ``screen_audio``)."""


class SpeakersMessage(WireMessage):
    """Who is speaking: sent to everyone in the call whenever it changes (at most a few times a
    second), and once after ``joined`` if anyone is speaking."""

    type: Literal["speakers"] = "speakers"
    dominant: str | None
    """The participant who holds the floor (changes only after a sustained challenge, and stays
    through short pauses); None before anyone has spoken, or once they left or were muted."""
    speaking: list[str]
    """Participants whose microphone is above speech level now (with a short hold)."""
