"""The catalogs (web_client/i18n/<lang>.json): every language has every key of the English
reference and no other, with the same placeholders; every key the code names exists; and no
user-visible words are written outside them, in the pages' HTML, the web client's modules or the
chat adapters (all of bot/ but bot/i18n.py and the operators' settings summaries)."""

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

OPERATOR_MODULES = frozenset({"bot/discord_settings.py", "bot/slack_settings.py"})
"""The adapters' start-up summary and setting warnings: read by whoever runs the server, in
English like the logs; no chat user sees them."""
NOT_PROSE = frozenset({"meetnow", "Socket Mode"})
"""Words that are the same in every language (the product's name, Slack's name for a transport)."""


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
            # Log lines (the logger, or a helper named for logging) and exceptions: operators'.
            if "log" in called or called[:1].isupper():
                skipped.update(id(inner) for inner in ast.walk(node))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skipped
        and node.value not in NOT_PROSE
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
    for module in sorted((root / "bot").rglob("*.py")):
        name = module.relative_to(root).as_posix()
        if name != "bot/i18n.py" and name not in OPERATOR_MODULES:
            found[name] = untranslated_python(module)
    return {name: words for name, words in found.items() if words}


def test_no_words_are_written_outside_the_catalogs() -> None:
    assert untranslated(REPO) == {}


def test_the_scanner_finds_planted_english(tmp_path: Path) -> None:
    """Test of the test: English planted in a copy of a page, a module and an adapter module,
    each in a place the scanner covers, is reported; the copy without it is clean."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(WEB, tmp_path / "web_client", ignore=ignore)
    shutil.copytree(REPO / "bot", tmp_path / "bot", ignore=ignore)
    assert untranslated(tmp_path) == {}

    page = tmp_path / "web_client" / "404.html"
    page.write_text(
        page.read_text().replace("</main>", '<p>Go back home</p><img alt="Company logo"></main>')
    )
    module = tmp_path / "web_client" / "js" / "speakers.js"
    module.write_text(module.read_text() + '\nexport const PLANTED = "Speaker left the call";\n')
    adapter = tmp_path / "bot/discord/commands.py"
    adapter.write_text(adapter.read_text() + '\nPLANTED = "Your meeting is ready"\n')
    blocks = tmp_path / "bot/slack/blocks.py"
    blocks.write_text(
        blocks.read_text()
        + '\n\ndef planted(n: int) -> str:\n    return f"Waiting for {n} people"\n'
        # Not reported: a log line, an exception, and an operator module's summary.
        + 'logger.info("Slack: a log line in English")\n'
        + 'ERROR = ValueError("An exception for the operator")\n'
    )
    settings = tmp_path / "bot/slack_settings.py"
    settings.write_text(settings.read_text() + '\nSUMMARY = "Slack is on for operators"\n')
    assert untranslated(tmp_path) == {
        "404.html": ["'Go back home'", "<img alt='Company logo'>"],
        "speakers.js": ["Speaker left the call"],
        "bot/discord/commands.py": ["Your meeting is ready"],
        "bot/slack/blocks.py": ["Waiting for "],
    }


def test_the_adapters_read_the_catalogs() -> None:
    assert available_languages()[0] == "en" and set(languages()) == set(available_languages())
    assert language_for("fr") == "fr" and language_for("fr-CA") == "fr"
    assert language_for("de") == "en" and language_for(None) == "en"
    assert text("fr", "chat.discord.invited", mention="<@1>").startswith("<@1>, vous")
    assert text("en", "chat.discord.invited", mention="<@1>") == (
        "<@1> you're invited to join this call."
    )


# --- every key the code names exists ---------------------------------------------------------

JS_KEY = re.compile(r"""\bt\(\s*["'](page\.[\w.]+)["']""")
PY_KEY = re.compile(r"""["'](chat\.[a-z_]+\.[\w.]+)["']""")
"""Literal keys (``t("page.x.y")``, ``"chat.x.y"``); keys built at run time (one per device kind,
``f"chat.discord.{name}_description"``) are checked by the tests that show those words."""


def unknown_keys(root: Path) -> dict[str, list[str]]:
    """Literal keys the web client or the adapters name that en.json lacks, by file."""
    english = json.loads((root / "web_client/i18n/en.json").read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}
    sources = [*(root / "web_client/js").glob("*.js"), *(root / "bot").rglob("*.py")]
    for source in sorted(sources):
        pattern = JS_KEY if source.suffix == ".js" else PY_KEY
        missing = [key for key in pattern.findall(source.read_text()) if key not in english]
        if missing:
            found[source.relative_to(root).as_posix()] = missing
    return found


def test_every_key_the_code_names_is_in_the_catalogs() -> None:
    assert unknown_keys(REPO) == {}


def test_the_key_check_finds_a_missing_key(tmp_path: Path) -> None:
    """Test of the test: a key typed wrong in a module and in an adapter is reported."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(WEB, tmp_path / "web_client", ignore=ignore)
    shutil.copytree(REPO / "bot", tmp_path / "bot", ignore=ignore)
    assert unknown_keys(tmp_path) == {}
    module = tmp_path / "web_client/js/media.js"
    module.write_text(
        module.read_text().replace('t("page.media.blocked")', 't("page.media.blockd")')
    )
    adapter = tmp_path / "bot/slack/blocks.py"
    adapter.write_text(adapter.read_text().replace('"chat.slack.join"', '"chat.slack.joinn"'))
    assert unknown_keys(tmp_path) == {
        "web_client/js/media.js": ["page.media.blockd"],
        "bot/slack/blocks.py": ["chat.slack.joinn"],
    }
