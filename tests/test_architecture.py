"""``docs/architecture.md`` matches the tree: every module it lists exists, every module is listed.

The tree is the first fenced block after "## The tree": one entry per line, indented two spaces
per level, a name ending in ``/`` for a folder (which stands for its ``__init__.py``); text after
the name, and lines whose first word is not a file or folder name, are description.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
PACKAGES = ("rerank_kit", "langchain_rerank_kit", "llamaindex_rerank_kit", "haystack_rerank_kit")
ENTRY = re.compile(r"^(?P<indent> *)(?P<name>[A-Za-z_][\w]*(?:\.py|\.tsv|/))(?:\s|$)")

pytestmark = pytest.mark.skipif(not DOC.is_file(), reason="no docs/ here (an sdist)")


def listed_paths(text: str) -> list[str]:
    """The paths (relative to the repository, folders ending in ``/``) of the tree block."""
    after = text.split("## The tree", 1)[1]
    block = after.split("```", 2)[1]
    stack: list[str] = []
    paths: list[str] = []
    for line in block.splitlines()[1:]:  # the rest of the opening fence's line
        match = ENTRY.match(line)
        if match is None:
            continue
        indent, name = len(match["indent"]), match["name"]
        assert indent % 2 == 0, f"odd indentation in the tree: {line!r}"
        depth = indent // 2
        assert depth <= len(stack), f"{line!r} is indented below no folder"
        del stack[depth:]
        paths.append("".join(stack) + name)
        if name.endswith("/"):
            stack.append(name)
    return paths


def package_modules() -> set[str]:
    """Every Python module of the three packages, relative to the repository."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            found.add(path.relative_to(REPO).as_posix())
    return found


def test_the_parser_reads_nesting_and_skips_description_lines() -> None:
    text = "## The tree\n\n```\na/\n  b.py   x\n         run c.py then\n  d/\n    e.py\nf.py\n```\n"
    assert listed_paths(text) == ["a/", "a/b.py", "a/d/", "a/d/e.py", "f.py"]


def test_every_listed_path_exists() -> None:
    listed = listed_paths(DOC.read_text(encoding="utf-8"))
    assert {p.split("/", 1)[0] + "/" for p in listed} >= {f"{p}/" for p in PACKAGES}
    missing = [p for p in listed if not (REPO / p).exists()]
    assert not missing, f"docs/architecture.md lists paths that do not exist: {missing}"
    folders = [p for p in listed if p.endswith("/")]
    assert all((REPO / p).is_dir() for p in folders)
    assert len(listed) == len(set(listed)), "a path is listed twice"


def test_every_module_is_listed() -> None:
    listed = set(listed_paths(DOC.read_text(encoding="utf-8")))
    covered = listed | {p + "__init__.py" for p in listed if p.endswith("/")}
    unlisted = sorted(package_modules() - covered)
    assert not unlisted, f"modules missing from docs/architecture.md's tree: {unlisted}"


def test_no_module_is_over_500_lines() -> None:
    """The project's rule: one concern per module, none over 500 lines."""
    packages = (
        "rerank_kit",
        "langchain_rerank_kit",
        "llamaindex_rerank_kit",
        "haystack_rerank_kit",
    )
    long = {
        str(path.relative_to(REPO)): n
        for package in packages
        for path in sorted((REPO / package).rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert not long, f"modules over 500 lines: {long}"
