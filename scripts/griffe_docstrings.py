"""A griffe extension for the API reference: reads this project's docstrings as Google style.

The docstrings are Google style with a few reStructuredText habits, which the site renders as
follows (the source stays as it is, so ``help()`` and the doctests are unchanged):

- an ``Example:`` section is read as ``Examples:`` (doctest blocks shown as code);
- ``.. code-block:: python`` followed by an indented block becomes a fenced Python block;
- ``:class:`X```, ``:func:`X``` and ``:meth:`X``` become inline code.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.M)
_ROLE = re.compile(r":(?:class|func|meth|attr|mod|exc|data|obj):`~?([^`]+)`")
_CODE_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. code-block::\s*(?P<lang>\w*)\s*\n")


def _fence_code_blocks(text: str) -> str:
    """Turn ``.. code-block:: LANG`` + indented lines into a fenced block at the same indent."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _CODE_BLOCK.match(lines[i] + "\n")
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent = match["indent"]
        lang = match["lang"] or "python"
        i += 1
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(indent)):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        cut = min((_indent(line) for line in body if line.strip()), default=0)
        out.append(f"{indent}```{lang}")
        out += [indent + line[cut:] if line.strip() else "" for line in body]
        out += [f"{indent}```", ""]
    return "\n".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


class GoogleWithRstHabits(Extension):
    """Rewrites each docstring's value before mkdocstrings parses it."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        """Normalise ``obj``'s docstring (see the module docstring)."""
        if obj.docstring is None:
            return
        text = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
        text = _ROLE.sub(r"`\1`", text)
        obj.docstring.value = _fence_code_blocks(text)
