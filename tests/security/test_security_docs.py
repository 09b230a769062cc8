"""docs/security.md cites, for every threat, the tests that fail if the defence goes away: each
cited test must exist where the page says, and none may be a known failure (xfail)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CITATION = re.compile(r"`(?:(test_\w+\.py)::|::)(test_\w+)`")
"""``file.py::test_name``, or ``::test_name`` for another test of the file cited just before."""


def cited_tests(markdown: str) -> list[tuple[str, str]]:
    """(file, test) for every test the page cites; ``::name`` belongs to the file before it."""
    cited = []
    for paragraph in re.split(r"\|", markdown):  # a table cell or the text between cells
        file = None
        for match in CITATION.finditer(paragraph):
            file = match.group(1) or file
            cited.append((file or "?", match.group(2)))
    return cited


def find_test_file(tests: Path, name: str) -> Path | None:
    """The test file called ``name`` in the test tree (files are cited by name: the tree is laid
    out by area, and each name is unique in it)."""
    found = sorted(tests.rglob(name))
    return found[0] if found else None


def missing_tests(cited: list[tuple[str, str]], tests: Path) -> list[str]:
    """The citations that name no test function of that file."""
    missing = []
    for file, name in cited:
        path = find_test_file(tests, file)
        source = path.read_text(encoding="utf-8") if path is not None else ""
        if not re.search(rf"^(async )?def {name}\(", source, re.MULTILINE):
            missing.append(f"{file}::{name}")
    return missing


def test_every_test_the_security_page_cites_exists_in_the_file_it_names() -> None:
    page = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    cited = cited_tests(page)
    assert len(cited) > 40
    assert missing_tests(cited, ROOT / "tests") == []
    # Every test name written in backquotes is a citation with its file.
    bare = re.findall(r"(?<![:\w])`(test_\w+)`", page)
    assert bare == [], "cite tests as file.py::test_name"


def test_no_cited_security_test_is_a_known_failure() -> None:
    page = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert "xfail" not in page.lower() and "known bug" not in page.lower()
    for file in sorted({file for file, _ in cited_tests(page)}):
        path = find_test_file(ROOT / "tests", file)
        assert path is not None, file
        assert "xfail" not in path.read_text(encoding="utf-8"), file


def test_the_citation_check_finds_a_test_that_is_not_there() -> None:
    page = (
        "| threat | defence | `test_security_docs.py::test_no_cited_security_test_is_a_known_failure`,"
        " `::test_that_was_renamed`; `test_nowhere.py::test_x` |"
    )
    cited = cited_tests(page)
    assert cited == [
        ("test_security_docs.py", "test_no_cited_security_test_is_a_known_failure"),
        ("test_security_docs.py", "test_that_was_renamed"),
        ("test_nowhere.py", "test_x"),
    ]
    assert missing_tests(cited, ROOT / "tests") == [
        "test_security_docs.py::test_that_was_renamed",
        "test_nowhere.py::test_x",
    ]
