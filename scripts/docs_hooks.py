"""MkDocs hooks: pages generated at build time (``hooks:`` in ``mkdocs.yml``).

- ``api/<module>.md``: one mkdocstrings entry (``::: module.name``) per name in the module's
  ``__all__``, read by importing the module from this checkout, so a name added to ``__all__``
  gets its reference entry without editing a page.
- ``notebooks/<name>.md``: each committed (output-free) notebook as a page, its markdown cells
  as they are and its code cells as Python blocks, with a link to the ``.ipynb`` (copied next to
  the page) to run it; ``notebooks/index.md`` from ``notebooks/README.md``.

Nothing here fetches anything: the notebooks are converted with nbformat alone.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mkdocs.structure.files import Files

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"

#: module -> (page title, one-line description) of its API reference page.
API_MODULES: dict[str, tuple[str, str]] = {
    "rerank_kit": ("rerank_kit", "The engine: rerankers, specs, fusion, caches, pipelines."),
    "rerank_kit.models": ("rerank_kit.models", "The bundled trained cross-encoder."),
    "rerank_kit.evaluation": (
        "rerank_kit.evaluation",
        "Datasets, first stages, metrics and `compare` (`rerank-kit eval`).",
    ),
    "rerank_kit.learning": (
        "rerank_kit.learning",
        "Judgments from feedback, `tune` and `train` (`rerank-kit tune|train`).",
    ),
    "rerank_kit.adapters": (
        "rerank_kit.adapters",
        "The framework-neutral adapter core a framework adapter is built on.",
    ),
    "langchain_rerank_kit": (
        "langchain_rerank_kit",
        "LangChain: document compressors, `RerankRetriever`, `RerankMiddleware`.",
    ),
    "llamaindex_rerank_kit": (
        "llamaindex_rerank_kit",
        "LlamaIndex: node postprocessors.",
    ),
    "haystack_rerank_kit": (
        "haystack_rerank_kit",
        "Haystack: ranker components for pipelines (`run`, `run_async`, YAML).",
    ),
}


#: Options of each name's entry: a level-2 heading with the name, then its docstring.
ENTRY_OPTIONS = [
    "      heading_level: 2",
    "      show_root_heading: true",
    "      show_root_full_path: false",
]


def public_names(module: str) -> list[str]:
    """The module's ``__all__``, imported from this checkout."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return list(importlib.import_module(module).__all__)


def api_page(module: str) -> str:
    """The reference page of one module: its docstring, then one entry per ``__all__`` name."""
    title, blurb = API_MODULES[module]
    lines = [
        f"# `{title}`",
        "",
        blurb,
        "",
        f"::: {module}",
        "    options:",
        "      members: false",
        "      show_root_heading: false",
        "      show_root_toc_entry: false",
        "",
    ]
    for name in public_names(module):
        lines += [f"::: {module}.{name}", "    options:", *ENTRY_OPTIONS, ""]
    return "\n".join(lines)


def notebook_page(path: Path) -> str:
    """One notebook as Markdown: markdown cells as they are, code cells as Python blocks."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    run = (
        f'!!! tip "Run this notebook"\n    Download [`{path.name}`]({path.name}) (or open '
        f"`notebooks/{path.name}` in your checkout) and run it with "
        f"`jupyter lab notebooks/{path.name}`; [how to set it up](index.md#running-them). "
        "It is stored without outputs: CI executes it offline on every change. In a checkout, "
        '`pip install ".[all]"` installs what its install line calls `rerank-kit[all]`.\n'
    )
    parts: list[str] = []
    for i, cell in enumerate(nb.cells):
        source = cell.source.rstrip()
        if cell.cell_type == "markdown":
            parts.append(source)
        elif cell.cell_type == "code" and source:
            parts.append(f"```python\n{source}\n```")
        if i == 0:
            parts.append(run)
    return "\n\n".join(parts) + "\n"


def notebook_index() -> str:
    """``notebooks/README.md``, its links to ``.ipynb`` files pointed at their pages."""
    text = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    return re.sub(r"\]\((\d\d_[\w-]+)\.ipynb\)", r"](\1.md)", text)


def on_files(files: Files, config: Any) -> Files:
    """Add the generated API and notebook pages (and the notebooks themselves)."""
    from mkdocs.structure.files import File

    for module in API_MODULES:
        files.append(File.generated(config, f"api/{module}.md", content=api_page(module)))
    files.append(File.generated(config, "notebooks/index.md", content=notebook_index()))
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        files.append(
            File.generated(config, f"notebooks/{path.stem}.md", content=notebook_page(path))
        )
        files.append(File.generated(config, f"notebooks/{path.name}", abs_src_path=str(path)))
    return files
