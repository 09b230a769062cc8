"""The house rules of docs/architecture.md that code can check: which part may import which,
the core naming no chat platform, and files small enough to read.

Each rule is a function over a directory that returns what breaks it, so each is tested twice:
on the repository (no violation), and on a small bad tree written for the purpose (the
violation is reported), so a checker that cannot fail would be caught.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent

RELAY_MODULES = (
    "signaling.server",
    "signaling.connection",
    "signaling.relay",
    "signaling.forwarding",
    "signaling.workers",
    "signaling.relay_worker",
    "signaling.aiortc_hooks",
)
"""What no chat adapter may import: the web server and everything of the relay (adapters get
:class:`bot.port.ChatPort`; the room core's types are fine)."""
CHAT_PLATFORM_WORDS = ("slack", "discord")
MAX_LINES = 500


def _python_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if "__pycache__" not in path.parts)


def _module_name(path: Path, package_root: Path) -> str:
    relative = path.relative_to(package_root.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, package_root: Path) -> set[str]:
    """Every module a file imports, anywhere in it (``TYPE_CHECKING`` blocks and functions
    included), relative imports resolved; ``from a import b`` counts as ``a`` and ``a.b``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module_name(path, package_root).split(".")
    if path.name != "__init__.py":
        here = here[:-1]  # the package the module is in
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _is_or_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def forbidden_imports(package_root: Path, forbidden: tuple[str, ...]) -> list[str]:
    """``file: module`` for each import of a forbidden module (or one inside it)."""
    problems = []
    for path in _python_files(package_root):
        for module in sorted(imported_modules(path, package_root)):
            if any(_is_or_under(module, banned) for banned in forbidden):
                problems.append(f"{path.relative_to(package_root.parent)}: {module}")
    return problems


def _docstring_positions(tree: ast.AST) -> set[tuple[int, int]]:
    """Where each bare string statement starts: module, class and function docstrings, and the
    attribute docstrings under fields."""
    return {
        (node.lineno, node.col_offset)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def words_in_code(package_root: Path, words: tuple[str, ...]) -> list[str]:
    """``file:line: token`` for each name or string (docstrings and comments aside) that
    contains one of ``words``, case-insensitively."""
    problems = []
    for path in _python_files(package_root):
        source = path.read_text(encoding="utf-8")
        docstrings = _docstring_positions(ast.parse(source, filename=str(path)))
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE):
                continue
            if token.type == tokenize.STRING and token.start in docstrings:
                continue
            if any(word in token.string.lower() for word in words):
                where = path.relative_to(package_root.parent)
                problems.append(f"{where}:{token.start[0]}: {token.string[:60]}")
    return problems


def long_files(roots: list[tuple[Path, str]], max_lines: int) -> list[str]:
    """``file (N lines)`` for each file over ``max_lines``, from (directory, glob) pairs."""
    problems = []
    for root, pattern in roots:
        for path in sorted(root.rglob(pattern)):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            count = len(path.read_text(encoding="utf-8").splitlines())
            if count > max_lines:
                problems.append(f"{path.relative_to(REPO)} ({count} lines)")
    return problems


# The rules, on the repository ---------------------------------------------------------------


def test_signaling_never_imports_the_chat_adapters() -> None:
    assert forbidden_imports(REPO / "signaling", ("bot", "meetnow")) == []


def test_signaling_code_names_no_chat_platform() -> None:
    assert words_in_code(REPO / "signaling", CHAT_PLATFORM_WORDS) == []


def test_chat_adapters_never_import_the_server_or_the_relay() -> None:
    assert forbidden_imports(REPO / "bot", RELAY_MODULES) == []


SOURCE_TREES = [
    (REPO / "signaling", "*.py"),
    (REPO / "bot", "*.py"),
    (REPO / "meetnow", "*.py"),
    (REPO / "web_client" / "js", "*.js"),
]


def test_no_source_file_is_over_500_lines() -> None:
    assert long_files(SOURCE_TREES, MAX_LINES) == []


# Tests of the checkers: each must report a bad tree -----------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_import_check_sees_type_checking_relative_and_late_imports(tmp_path: Path) -> None:
    core = tmp_path / "core"
    _write(
        core,
        {
            "__init__.py": "",
            "clean.py": "import json\nfrom core.rooms import Room\n",
            "typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import bot\n",
            "late.py": "def f() -> None:\n    from bot.slack import install_slack\n",
            "inner/__init__.py": "",
            "inner/relative.py": "from ..server import App\nfrom .. import relay\n",
        },
    )
    assert forbidden_imports(core, ("bot",)) == [
        "core/late.py: bot.slack",
        "core/late.py: bot.slack.install_slack",
        "core/typed.py: bot",
    ]
    assert forbidden_imports(core, ("core.server", "core.relay")) == [
        "core/inner/relative.py: core.relay",
        "core/inner/relative.py: core.server",
        "core/inner/relative.py: core.server.App",
    ]
    assert forbidden_imports(core, ("bo",)) == []  # a prefix of a name is another module


def test_the_platform_name_check_skips_only_comments_and_docstrings(tmp_path: Path) -> None:
    core = tmp_path / "core"
    _write(
        core,
        {
            "ok.py": '"""Slack or Discord, in a docstring."""\n\n'
            "# A comment may say Slack.\n"
            "class A:\n"
            '    """Discord too."""\n\n'
            "    field: int = 1\n"
            '    """An attribute docstring about slack."""\n',
            "bad.py": 'PLATFORM = "slack"\nDiscordThing = 1\nprint(f"{1} DISCORD")\n',
        },
    )
    reported = words_in_code(core, CHAT_PLATFORM_WORDS)
    assert reported[:2] == ['core/bad.py:1: "slack"', "core/bad.py:2: DiscordThing"]
    assert [line.split(": ")[0] for line in reported[2:]] == ["core/bad.py:3"]  # the f-string


def test_the_length_check_reports_long_files() -> None:
    tree = REPO / "tests" / "support"  # a real tree with files of every size: a low cap
    reported = long_files([(tree, "*.py")], 5)
    assert reported and all(line.startswith("tests/support/") for line in reported)
    assert long_files([(tree, "*.py")], 100_000) == []
