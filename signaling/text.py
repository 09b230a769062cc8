"""User-typed text (display names, topics) as it may be shown to others."""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_MARKS_PER_CHARACTER", "clean_text"]

MAX_MARKS_PER_CHARACTER = 2
"""Combining marks kept after one base character: enough for Vietnamese, Thai or Devanagari
(after NFC composition), not for "Zalgo" text that spills over the lines around it."""

DEFAULT_IGNORABLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
"""Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt): characters a font
draws as nothing, Hangul fillers (U+3164, U+FFA0), the grapheme joiner (U+034F) and variation
selectors (U+FE0F) among them."""
BLANK_SYMBOLS = frozenset({"\u2800"})
"""Symbols drawn as an empty cell (the blank Braille pattern): read as a space."""
COMBINING = frozenset({"Mn", "Mc", "Me"})
VISIBLE = frozenset("LNPS")
"""Categories (first letter) that draw something: letters, digits, punctuation, symbols."""


def _ignorable(ch: str) -> bool:
    code = ord(ch)
    return any(start <= code <= end for start, end in DEFAULT_IGNORABLE)


def clean_text(text: str | None, max_length: int) -> str:
    """User-typed text as it may be shown: NFC, control characters folded to spaces, invisible
    characters dropped (format characters such as bidi overrides and zero-width joiners, which let
    a name pose as another; fillers and other default-ignorables; lone surrogates), at most
    :data:`MAX_MARKS_PER_CHARACTER` combining marks after a base character (none without one),
    blanks collapsed, trimmed and capped. Text with nothing visible left (no letter, digit,
    punctuation or symbol) comes back empty, so a name falls back to "Guest"."""
    if not text:
        return ""
    kept: list[str] = []
    marks = MAX_MARKS_PER_CHARACTER  # no base character yet: a mark here has nothing to sit on
    for ch in unicodedata.normalize("NFC", text):
        category = unicodedata.category(ch)
        if category in ("Cf", "Cs") or _ignorable(ch):
            continue
        if category == "Cc" or ch in BLANK_SYMBOLS or ch.isspace():
            kept.append(" ")
            marks = MAX_MARKS_PER_CHARACTER
        elif category in COMBINING:
            if marks < MAX_MARKS_PER_CHARACTER:
                kept.append(ch)
                marks += 1
        else:
            kept.append(ch)
            marks = 0
    cleaned = " ".join("".join(kept).split())[:max_length].strip()
    if not any(unicodedata.category(ch)[0] in VISIBLE for ch in cleaned):
        return ""
    return cleaned
