"""The documentation site and its examples.

- The site builds (``mkdocs build --strict``, once per session, into a temporary folder), every
  name in the packages' ``__all__`` has an entry in the built API reference, every notebook has
  a page, and no page loads anything from the network (scripts, styles, fonts, images, frames).
- Every copyable example (``docs/examples/*.py``, which the pages include) runs offline as a
  program of its own, and the README's Python snippets are those example files, verbatim.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "mkdocs.yml"
EXAMPLES = sorted((REPO / "docs" / "examples").glob("*.py"))
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
PACKAGES = ["rerank_kit", "langchain_rerank_kit", "llamaindex_rerank_kit", "haystack_rerank_kit"]

pytestmark = pytest.mark.skipif(not CONFIG.is_file(), reason="no mkdocs.yml here (an sdist)")


def _name(path: Path) -> str:
    return path.name


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built from this checkout with ``mkdocs build --strict``."""
    pytest.importorskip("mkdocs", reason='the site needs the docs extra: pip install ".[docs]"')
    pytest.importorskip("material", reason='the site needs the docs extra: pip install ".[docs]"')
    pytest.importorskip(
        "mkdocstrings", reason='the site needs the docs extra: pip install ".[docs]"'
    )
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    return out


def _api_modules() -> list[str]:
    """The modules the site's reference is generated for (the build hook's own list)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        hooks = importlib.import_module("docs_hooks")
    finally:
        sys.path.remove(str(REPO / "scripts"))
    return list(hooks.API_MODULES)


def test_the_reference_covers_the_three_packages() -> None:
    modules = _api_modules()
    assert set(PACKAGES) <= set(modules)
    config = CONFIG.read_text(encoding="utf-8")
    for module in modules:
        assert f"api/{module}.md" in config, f"the API page of {module} is not in the nav"


@pytest.mark.parametrize("module", _api_modules())
def test_every_public_name_has_an_api_reference_entry(site: Path, module: str) -> None:
    """Read from the built page: mkdocstrings gives each documented object an id."""
    page = (site / "api" / f"{module}.html").read_text(encoding="utf-8")
    names = importlib.import_module(module).__all__
    assert names
    headings = set(re.findall(r'<h2 id="([^"]+)" class="doc doc-heading"', page))
    missing = [name for name in names if f"{module}.{name}" not in headings]
    assert not missing, f"no API reference entry (heading) for {missing} in api/{module}.html"
    # each entry holds a rendered body (signature, docstring or value), not only a heading
    assert page.count('class="doc doc-contents') >= len(names)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_name)
def test_every_notebook_has_a_page(site: Path, notebook: Path) -> None:
    page = site / "notebooks" / f"{notebook.stem}.html"
    assert page.is_file(), f"no page for {notebook.name}"
    html = page.read_text(encoding="utf-8")
    assert f'href="{notebook.name}"' in html, "the page links to the notebook to run it"
    assert (site / "notebooks" / notebook.name).is_file()
    assert f"notebooks/{notebook.stem}.md" in CONFIG.read_text(encoding="utf-8"), "not in the nav"
    import nbformat

    first_code = next(
        c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"
    )
    first_line = first_code.source.strip().splitlines()[0]
    assert first_line in _text(html), "the notebook's code is on its page"


def _text(page: str) -> str:
    """A page's text: tags (syntax highlighting's spans) removed, entities decoded."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", page))


class _Fetches(HTMLParser):
    """Collects what a page would load: src/href of script, link, img, iframe, ... elements."""

    LOADING: ClassVar[set[str]] = {
        "script",
        "link",
        "img",
        "iframe",
        "source",
        "video",
        "audio",
        "embed",
        "track",
    }

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.anchors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in self.LOADING:
            self.loads += [v for k, v in values.items() if k in {"src", "href", "srcset"} and v]
        elif tag == "object" and values.get("data"):
            self.loads.append(values["data"] or "")
        elif tag == "a" and values.get("href"):
            self.anchors.append(values["href"] or "")


_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.I)


def test_the_site_fetches_nothing_from_the_network(site: Path) -> None:
    """No page loads a script, style, font, image or frame from another host (plain links to
    external documentation are allowed), and no stylesheet imports or points at one."""
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    remote: list[str] = []
    for page in pages:
        parser = _Fetches()
        parser.feed(page.read_text(encoding="utf-8"))
        assert parser.loads, page  # every page loads the theme's own assets
        remote += [f"{page.relative_to(site)}: {url}" for url in parser.loads if _REMOTE.match(url)]
        inline = re.findall(r"@import\s+url\(['\"]?(?:https?:)?//[^)]*\)", page.read_text("utf-8"))
        remote += [f"{page.relative_to(site)}: {x}" for x in inline]
    for css in site.rglob("*.css"):
        text = css.read_text(encoding="utf-8")
        urls = re.findall(r"url\(\s*['\"]?((?:https?:)?//[^'\")]+)", text)
        urls += re.findall(r"@import\s+['\"]((?:https?:)?//[^'\"]+)", text)
        remote += [f"{css.relative_to(site)}: {url}" for url in urls]
    assert not remote, "the site would fetch:\n" + "\n".join(remote)
    # local search from file://: the index as a script (the offline plugin), its worker shim local
    assert (site / "search" / "search_index.js").is_file()
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'src="assets/javascripts/iframe-worker-shim.js"' in index
    assert "fonts.googleapis" not in index and "fonts.gstatic" not in index


def test_the_theme_uses_no_web_fonts_and_no_analytics() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert config["theme"]["name"] == "material"
    assert config["theme"]["font"] is False  # no Google Fonts
    assert "analytics" not in config.get("extra", {})
    plugins = [p if isinstance(p, str) else next(iter(p)) for p in config["plugins"]]
    assert "search" in plugins and "offline" in plugins  # search from file://, in the page
    assert not {"social", "privacy"} & set(plugins)  # (these fetch at build time)


# ---------------------------------------------------------------- the examples


def _included(example: Path) -> list[Path]:
    """Pages that show ``example``: by a snippet include, or inlined under its file's title."""
    marker = f'--8<-- "docs/examples/{example.name}"'
    return [
        p
        for p in (REPO / "docs").rglob("*.md")
        if marker in p.read_text(encoding="utf-8") or f"docs/examples/{example.name}" in _inlined(p)
    ]


#: A fenced Python block titled with the example file it shows.
_TITLED = re.compile(r'^```python title="(docs/examples/[^"]+)"\n(.*?)\n```$', re.S | re.M)


def _inlined(page: Path) -> dict[str, str]:
    """``{example path: the code shown}`` for the blocks a page inlines under an example title."""
    return {
        name: code
        for name, code in _TITLED.findall(page.read_text(encoding="utf-8"))
        if not code.startswith("--8<--")
    }


def _readme_snippets() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)\n```", readme, re.S)


@pytest.mark.parametrize("example", EXAMPLES, ids=_name)
def test_every_example_is_shown(example: Path) -> None:
    """Each example file is a page's (or the README's) code, so what runs here is what is shown."""
    source = example.read_text(encoding="utf-8").rstrip("\n")
    assert _included(example) or source in _readme_snippets(), f"{example.name} is on no page"
    assert source.startswith('# pip install ".['), "the first line says how to install it"


def test_the_readme_snippets_are_example_files() -> None:
    snippets = _readme_snippets()
    assert len(snippets) >= 3  # LangChain, LlamaIndex, the engine
    sources = {p.read_text(encoding="utf-8").rstrip("\n"): p.name for p in EXAMPLES}
    strays = [s.splitlines()[0] for s in snippets if s not in sources]
    assert not strays, f"README Python blocks that are not a docs/examples file: {strays}"
    assert {sources[s] for s in snippets} >= {
        "readme_langchain.py",
        "readme_llamaindex.py",
        "readme_engine.py",
    }


def test_the_readme_is_short_and_starts_with_the_set_up_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    blocks = re.findall(r"```(\w*)\n(.*?)\n```", readme, re.S)
    assert [lang for lang, _ in blocks[:2]] == ["bash", "bash"]
    assert blocks[0][1].endswith("rerank-kit demo") and "pytest" in blocks[1][1]
    assert "mkdocs serve" in readme and "mkdocs build" in readme


#: A line the README examples print (they print rather than assert, to stay short).
_PRINTS = {
    "readme_langchain.py": "Reset a password in Settings > Security. 0.9",
    "readme_llamaindex.py": "Reset a password in Settings > Security. 0.9",
    "readme_engine.py": "1 0.9",
}


@pytest.mark.models
@pytest.mark.parametrize("example", EXAMPLES, ids=_name)
def test_example_runs_offline(example: Path, tmp_path: Path) -> None:
    """Run as a user would: its own process, another working directory, no Hub."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, str(example)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"{example.name} failed:\n{run.stdout}\n{run.stderr}"
    assert run.stdout.strip(), f"{example.name} printed nothing"
    if example.name in _PRINTS:
        lines = run.stdout.splitlines()
        assert any(line.startswith(_PRINTS[example.name]) for line in lines), run.stdout


# ------------------------------------------------ pages read in the checkout, and what they run

PAGES = sorted((REPO / "docs").rglob("*.md"))


def test_the_quickstarts_show_code_in_the_checkout_too() -> None:
    """GitHub and editors do not expand ``--8<--`` includes: the quickstarts inline the code."""
    pages = sorted((REPO / "docs" / "quickstart").glob("*.md"))
    assert len(pages) >= 3
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "--8<--" not in text, f"{page.name} includes code the checkout shows as a line"
        assert _inlined(page), f"{page.name} shows no example"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO / "docs")))
def test_an_inlined_example_is_its_file_verbatim(page: Path) -> None:
    """An inlined block (titled with its file) equals ``docs/examples/*.py``, which CI runs."""
    for name, code in _inlined(page).items():
        source = (REPO / name).read_text(encoding="utf-8").rstrip("\n")
        assert code == source, f"{page.name}: the block titled {name} differs from the file"


_IMAGE = re.compile(r"\.(png|jpe?g|gif|svg|webp)$", re.I)


def test_every_image_under_docs_is_shown_on_a_page() -> None:
    """An image the site copies but no page shows is dead weight (or a missing figure)."""
    images = [p for p in (REPO / "docs").rglob("*") if _IMAGE.search(p.name)]
    assert images
    text = "\n".join(p.read_text(encoding="utf-8") for p in PAGES)
    shown = set(re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text))
    shown |= set(re.findall(r'<img[^>]+src="([^"]+)"', text))
    names = {Path(s).name for s in shown}
    unshown = [str(p.relative_to(REPO)) for p in images if p.name not in names]
    assert not unshown, f"images under docs/ shown on no page: {unshown}"


# A fenced ``bash`` block right after a ``<!-- runnable -->`` line is run by
# ``test_a_runnable_block_runs_as_written``: offline, with only what the ``pip install`` lines
# of the block install (every other installed distribution made unimportable, as in a fresh
# virtual environment), from a folder beside which ``../shared`` is this checkout's
# ``../shared`` (the judged collections in ``../shared/data``). Keep such blocks few and fast
# (under ~30 s each). A block not marked runnable says what it needs: its first line is a
# ``pip install`` or a ``# needs: ...`` comment.
_RUNNABLE = "<!-- runnable -->"
_BASH = re.compile(r"^```bash\n(.*?)\n```$", re.S | re.M)
#: Pages whose every shell block is either runnable or says what it needs.
_SAYS_WHAT_IT_NEEDS = ["evaluation.md", "install.md", "quickstart"]


def _bash_blocks(page: Path) -> list[tuple[bool, str]]:
    """``(marked runnable, code)`` for each fenced bash block of ``page``."""
    text = page.read_text(encoding="utf-8")
    out = []
    for match in _BASH.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        out.append((before == _RUNNABLE, match[1]))
    return out


_RUNNABLE_BLOCKS = [
    pytest.param(code, id=f"{page.relative_to(REPO / 'docs')}#{i}")
    for page in PAGES
    for i, (runnable, code) in enumerate(_bash_blocks(page))
    if runnable
]


def test_some_blocks_are_runnable_and_few() -> None:
    assert 1 <= len(_RUNNABLE_BLOCKS) <= 5, "keep the runnable blocks few (each < ~30 s)"


@pytest.mark.parametrize(
    "page",
    [
        p
        for p in PAGES
        if any(part in str(p.relative_to(REPO / "docs")) for part in _SAYS_WHAT_IT_NEEDS)
    ],
    ids=lambda p: str(p.relative_to(REPO / "docs")),
)
def test_a_block_that_is_not_run_says_what_it_needs(page: Path) -> None:
    for runnable, code in _bash_blocks(page):
        first = code.strip().splitlines()[0]
        assert runnable or first.startswith(("pip install", "# needs:")), (
            f"{page.name}: a shell block neither marked {_RUNNABLE} nor saying what it needs "
            f"(a first line 'pip install ...' or '# needs: ...'): {first!r}"
        )


@pytest.mark.models
@pytest.mark.parametrize("code", _RUNNABLE_BLOCKS)
def test_a_runnable_block_runs_as_written(code: str, tmp_path: Path) -> None:
    from installs import blocked_modules, blocker_source, parse_pip_line

    # ../shared beside the checkout (RERANK_KIT_SHARED names it elsewhere, e.g. for a worktree)
    shared = Path(os.environ.get("RERANK_KIT_SHARED", REPO.parent / "shared"))
    if "../shared" in code and not (shared / "data").is_dir():
        pytest.skip(f"the block reads ../shared/data, absent here ({shared / 'data'})")
    lines = code.replace("\\\n", " ").splitlines()
    installs = [line for line in lines if line.strip().startswith("pip install")]
    assert installs, "a runnable block names its install"
    extras: set[str] = set()
    others: list[str] = []
    for line in installs:
        e, o = parse_pip_line(line)
        extras |= e
        others += o
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(blocker_source(blocked_modules(extras, others)))
    work = tmp_path / "work"
    work.mkdir()
    if shared.is_dir():
        (tmp_path / "shared").symlink_to(shared)
    script = "\n".join(line for line in lines if line not in installs)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"the block failed:\n{code}\n{run.stdout}\n{run.stderr}"
    assert "Traceback" not in run.stderr, run.stderr
