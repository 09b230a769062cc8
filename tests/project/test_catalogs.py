"""The catalogs (web_client/i18n/<lang>.json): every language has every key of the English
reference and no other, with the same placeholders; and no user-visible words are written outside
them, in the pages' HTML, the web client's modules or the translated chat-adapter modules."""

from __future__ import annotations

import ast
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.i18n import available_languages, language_for, text

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web_client"
CATALOGS = WEB / "i18n"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
TRANSLATED_ATTRIBUTES = ("aria-label", "title", "placeholder", "alt")

TRANSLATED_BOT_MODULES = ("bot/discord/commands.py",)
"""Chat-adapter modules whose replies come from the ``chat.*`` keys (the rest: still English)."""
NOT_PROSE = frozenset({"meetnow"})
"""Words that are the same in every language (the product's name)."""


def load(language: str) -> dict[str, str]:
    words = json.loads((CATALOGS / f"{language}.json").read_text(encoding="utf-8"))
    assert isinstance(words, dict)
    return words


def languages() -> list[str]:
    return sorted(path.stem for path in CATALOGS.glob("*.json"))


@pytest.mark.parametrize("language", [name for name in languages() if name != "en"])
def test_every_catalog_has_the_same_keys_and_placeholders(language: str) -> None:
    english, other = load("en"), load(language)
    assert sorted(set(english) - set(other)) == [], f"missing in {language}.json"
    assert sorted(set(other) - set(english)) == [], f"in {language}.json but not en.json"
    for key, words in english.items():
        assert set(PLACEHOLDER.findall(words)) == set(PLACEHOLDER.findall(other[key])), key
        assert other[key].strip(), f"{language}.json: {key} is empty"


def test_keys_are_sectioned_by_prefix() -> None:
    assert [key for key in load("en") if not key.startswith(("page.", "chat."))] == []


# --- the scanner: words written outside the catalogs ------------------------------------------


class _PageScanner(HTMLParser):
    """Text and translated attributes of an HTML page that its element does not take from a
    catalog (``data-i18n`` for its text, ``data-i18n-attr`` for the attribute)."""

    VOID = frozenset({"meta", "link", "input", "img", "br", "hr", "source", "track", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[dict[str, str | None]] = []
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        named = attributes.get("data-i18n-attr") or ""
        for attribute in TRANSLATED_ATTRIBUTES:
            value = attributes.get(attribute)
            if value and is_prose(value) and f"{attribute}=" not in named:
                self.found.append(f"<{tag} {attribute}={value!r}>")
        if tag not in self.VOID:
            self.stack.append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        words = data.strip()
        if not words or words in NOT_PROSE or not re.search(r"[A-Za-z]", words):
            return
        if not self.stack or not self.stack[-1].get("data-i18n"):
            self.found.append(repr(words))


def is_prose(value: str) -> bool:
    """Words a person reads: letters, starting with a capital or a digit-free word."""
    return value not in NOT_PROSE and bool(re.match(r"[A-Z][a-z']", value))


def untranslated_html(path: Path) -> list[str]:
    scanner = _PageScanner()
    scanner.feed(path.read_text(encoding="utf-8"))
    return scanner.found


JS_COMMENTS = re.compile(r"/\*.*?\*/|^\s*//.*?$|\s//\s.*?$", re.DOTALL | re.MULTILINE)
JS_STRING = re.compile(r"\"((?:[^\"\\\n]|\\.)*)\"|'((?:[^'\\\n]|\\.)*)'|`((?:[^`\\]|\\.)*)`")
JS_PROSE = re.compile(r"^[A-Z][a-z']+[ ,.:…]+\S")
"""A capitalised word and more words: "Share screen", "Connecting… again" (not "NotAllowedError")."""


def untranslated_js(path: Path) -> list[str]:
    source = JS_COMMENTS.sub("", path.read_text(encoding="utf-8"))
    found = []
    for match in JS_STRING.finditer(source):
        literal = next(group for group in match.groups() if group is not None)
        if JS_PROSE.match(literal):
            found.append(literal)
    return found


def untranslated_python(path: Path) -> list[str]:
    """String constants that read as prose, outside docstrings, log calls and exceptions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant):
                skipped.add(id(body[0].value))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skipped.add(id(node.value))  # attribute docstrings
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if called.startswith("logger.") or called[:1].isupper():
                skipped.update(id(inner) for inner in ast.walk(node))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skipped
        and JS_PROSE.match(node.value)
    ]


def untranslated(root: Path) -> dict[str, list[str]]:
    """Everything the scanner finds under a copy of the repository's layout, by file."""
    found: dict[str, list[str]] = {}
    for page in sorted((root / "web_client").glob("*.html")):
        found[page.name] = untranslated_html(page)
    for module in sorted((root / "web_client" / "js").glob("*.js")):
        if module.name != "i18n.js":
            found[module.name] = untranslated_js(module)
    for name in TRANSLATED_BOT_MODULES:
        found[name] = untranslated_python(root / name)
    return {name: words for name, words in found.items() if words}


def test_no_words_are_written_outside_the_catalogs() -> None:
    assert untranslated(REPO) == {}


def test_the_scanner_finds_planted_english(tmp_path: Path) -> None:
    """Test of the test: English planted in a copy of a page, a module and an adapter module,
    each in a place the scanner covers, is reported; the copy without it is clean."""
    shutil.copytree(WEB, tmp_path / "web_client", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "bot" / "discord").mkdir(parents=True)
    shutil.copy(REPO / "bot/discord/commands.py", tmp_path / "bot/discord/commands.py")
    assert untranslated(tmp_path) == {}

    page = tmp_path / "web_client" / "404.html"
    page.write_text(
        page.read_text().replace("</main>", '<p>Go back home</p><img alt="Company logo"></main>')
    )
    module = tmp_path / "web_client" / "js" / "speakers.js"
    module.write_text(module.read_text() + '\nexport const PLANTED = "Speaker left the call";\n')
    adapter = tmp_path / "bot/discord/commands.py"
    adapter.write_text(adapter.read_text() + '\nPLANTED = "Your meeting is ready"\n')
    assert untranslated(tmp_path) == {
        "404.html": ["'Go back home'", "<img alt='Company logo'>"],
        "speakers.js": ["Speaker left the call"],
        "bot/discord/commands.py": ["Your meeting is ready"],
    }


def test_the_adapters_read_the_catalogs() -> None:
    assert available_languages()[0] == "en" and set(languages()) == set(available_languages())
    assert language_for("fr") == "fr" and language_for("fr-CA") == "fr"
    assert language_for("de") == "en" and language_for(None) == "en"
    assert text("fr", "chat.discord.invited", mention="<@1>").startswith("<@1>, vous")
    assert text("en", "chat.discord.invited", mention="<@1>") == (
        "<@1> you're invited to join this call."
    )
