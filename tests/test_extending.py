"""Public extension points: a reranker family of one's own, and its spec prefix from a plugin.

The toy family is ``docs/examples/keyword_reranker.py`` (the guide's example, written as a user
would, on public names only). The plugin tests make it an installed distribution: the fast
ones write a ``.dist-info`` folder with ``entry_points.txt`` onto a folder put on ``sys.path``
(``importlib.metadata`` finds it as it finds any installed distribution); the slow one installs
a real throwaway distribution with pip into a fresh virtual environment.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rerank_kit
from rerank_kit import (
    PairScores,
    PipelineConfig,
    Reranker,
    RerankError,
    ScoreCache,
    WindowPlan,
    _plugins,
    load_pipeline,
    load_reranker,
    register_reranker,
)
from rerank_kit.testing import FakeReranker

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "docs" / "examples" / "keyword_reranker.py"
MODULE = "keyword_reranker"
PASSAGES = [
    "Reset a password in Settings > Security.",
    "Invoices are emailed on the first day of each month.",
    "Our office dog is called Biscuit. " * 8 + "To reset a password, open Settings.",
]
QUERY = "how do I reset my password"


@pytest.fixture(autouse=True)
def fresh_plugins() -> Iterator[None]:
    """Each test reads the entry points anew and registers nothing for the next one."""
    _plugins._reset()
    yield
    _plugins._reset()
    sys.modules.pop(MODULE, None)


def _distribution(
    root: Path, entry_points: dict[str, str], name: str = "toy-keywords", module: bool = True
) -> Path:
    """``root`` holding the toy module and a ``.dist-info`` that declares ``entry_points``."""
    root.mkdir(parents=True, exist_ok=True)
    if module:
        shutil.copy(TOY, root / f"{MODULE}.py")
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8"
    )
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[rerank_kit.rerankers]\n{lines}", encoding="utf-8")
    return root


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy family installed as a distribution declaring the ``keywords`` prefix."""
    root = _distribution(tmp_path / "site", {"keywords": f"{MODULE}:KeywordOverlapReranker"})
    monkeypatch.syspath_prepend(str(root))
    return root


def _toy() -> Any:
    return importlib.import_module(MODULE)


# ------------------------------------------------------------- the family, public names only


def _public(module: str, name: str) -> bool:
    if name.startswith("_") or any(part.startswith("_") for part in module.split(".")):
        return False
    return name in getattr(importlib.import_module(module), "__all__", ())


def test_the_toy_family_imports_only_public_rerank_kit_names() -> None:
    tree = ast.parse(TOY.read_text(encoding="utf-8"))
    used: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rerank_kit"):
            used += [(node.module or "", alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("rerank_kit.") for a in node.names), "import a.b"
    assert {name for _, name in used} >= {"Reranker", "PairScores", "WindowPlan", "ScoreCache"}
    private = [f"{module}.{name}" for module, name in used if not _public(module, name)]
    assert not private, f"the toy family uses non-public names: {private}"
    # and it reaches into no private member of rerank-kit's objects (its own hooks aside)
    hooks = {"_score_pairs", "_ascore_pairs", "_window_plan", "__init__"}
    members = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not {m for m in members if m.startswith("_") and m not in hooks}


def test_the_toy_family_keeps_a_score_cache_through_the_base_class(installed: Path) -> None:
    toy = _toy()
    calls: list[int] = []

    class Counted(toy.KeywordOverlapReranker):  # type: ignore[name-defined]
        def _score_pairs(self, query: str, texts: list[str]) -> PairScores:
            calls.append(len(texts))
            return super()._score_pairs(query, texts)

    cache = ScoreCache(100)
    cached = Counted("count", score_cache=cache)
    plain = toy.KeywordOverlapReranker("count")
    for _ in range(2):
        assert cached.rerank(QUERY, PASSAGES) == plain.rerank(QUERY, PASSAGES)
    assert asyncio.run(cached.arerank(QUERY, PASSAGES)) == plain.rerank(QUERY, PASSAGES)
    assert calls == [3]  # the later calls, async too, were answered by the cache
    assert cached.score_cache is cache and cache.info()["hits"] == 6
    assert cache.get("keywords:count", QUERY, PASSAGES[:1]) == [(2.0, False)]  # keyed by name
    share = toy.KeywordOverlapReranker("share", score_cache=cache)
    assert share.score(QUERY, PASSAGES[:1]) == [pytest.approx(2 / 6)]  # not count's 2.0
    toy.KeywordOverlapReranker("count").set_score_cache(10)  # after construction too


def test_the_toy_family_scores_long_passages_in_windows(installed: Path) -> None:
    toy = _toy()
    cut = toy.KeywordOverlapReranker(max_words=20)
    windows = toy.KeywordOverlapReranker(max_words=20, long_documents="max")
    truncated = cut.rerank(QUERY, PASSAGES)
    assert {r.index: r.truncated for r in truncated}[2] is True
    assert cut.score(QUERY, PASSAGES)[2] == 0.0  # the answer is past the first 20 words
    assert windows.score(QUERY, PASSAGES)[2] == 2.0  # a window holds it
    assert not any(r.truncated for r in windows.rerank(QUERY, PASSAGES))
    assert windows.name == "keywords:count [long_documents=max]"


def test_score_cache_needs_a_family_that_keeps_one() -> None:
    class Plain(Reranker):
        def _score_pairs(self, query: str, texts: list[str]) -> list[float]:
            return [0.0] * len(texts)

        def __init__(self, score_cache: Any = None) -> None:
            super().__init__(score_cache=score_cache)

    assert Plain().score_cache is None and Plain(score_cache=0).score_cache is None
    with pytest.raises(ValueError, match="Plain keeps no score cache"):
        Plain(score_cache=10)
    with pytest.raises(ValueError, match="keeps no score cache"):
        Plain().set_score_cache(10)

    class Kept(Plain):
        keeps_score_cache = True

    assert Kept(score_cache=10).cache_info()["max_size"] == 10
    with pytest.raises(ValueError, match="score_cache must be an int"):
        Kept(score_cache=-1)


def test_window_plans_are_checked_and_built_from_tokenizers() -> None:
    with pytest.raises(TypeError, match="budget must be an int"):
        WindowPlan("10", lambda texts: [])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reports no character offsets"):
        WindowPlan.from_tokenizer(10, object())
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"a": 0, "b": 1}, unk_token="a"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    assert WindowPlan.from_tokenizer(3, tok).offsets(["a b"]) == [[(0, 1), (2, 3)]]


# --------------------------------------------------------------- spec prefixes from plugins


def test_an_installed_plugin_prefix_works_in_load_reranker_cascades_and_pipelines(
    installed: Path,
) -> None:
    reranker = load_reranker("keywords:share", score_cache=50)
    assert type(reranker).__name__ == "KeywordOverlapReranker" and reranker.name == "keywords:share"
    assert reranker.cache_info()["max_size"] == 50  # kwargs reach the family
    assert load_reranker(" Keywords:count ").rerank(QUERY, PASSAGES)[0].index == 0
    cascade = load_reranker("keywords:share@2 >> keywords:count")
    assert cascade.name == "keywords:share@2 >> keywords:count"
    pipeline = load_pipeline(PipelineConfig("keywords:count", "bm25", top_n=1))
    assert [r.index for r in pipeline.rerank(QUERY, PASSAGES)] == [0]
    with pytest.raises(ValueError, match="the model is 'count' or 'share'"):
        load_reranker("keywords:tfidf")  # the family's own error, unchanged
    assert _plugins.installed_plugins() == {
        "keywords": f"{MODULE}:KeywordOverlapReranker, from toy-keywords 0.1"
    }


def test_the_cli_finds_a_plugin_prefix(
    installed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("bm25s", reason='rerank-kit eval and tune need the eval extra: ".[eval]"')
    from rerank_kit.cli import main
    from rerank_kit.demo import CORPUS, QUERIES

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in CORPUS))
    judgments = tmp_path / "qs.jsonl"
    judgments.write_text(
        "".join(json.dumps({"query": q, "relevant": [a]}) + "\n" for q, a in QUERIES)
    )
    data = [str(judgments), "--corpus", str(corpus), "--no-progress", "--depth", "5"]
    out = tmp_path / "eval.json"
    assert main(["eval", *data, "--reranker", "keywords:count", "--json", str(out)]) == 0
    systems = [s["name"] for s in json.loads(out.read_text())["systems"]]
    assert "bm25 >> keywords:count" in systems
    config = tmp_path / "pipeline.json"
    tuned = ["tune", *data, "--reranker", "keywords:share", "--folds", "2", "--config", str(config)]
    assert main(tuned) == 0
    assert "keywords:share over bm25" in capsys.readouterr().out  # it was among the candidates
    assert PipelineConfig.load(config).reranker in ("none", "keywords:share")


def test_the_demo_finds_a_plugin_prefix(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("chromadb", reason='rerank-kit demo needs the demo extra: ".[demo]"')
    from rerank_kit.cli import main

    assert main(["demo", "--reranker", "keywords:share"]) == 0
    assert "stage 2: keywords:share" in capsys.readouterr().out


def test_an_unknown_prefix_names_the_installed_plugins(installed: Path) -> None:
    with pytest.raises(ValueError, match=r"plugin prefixes: keywords \(keyword_reranker:"):
        load_reranker("nope:model")
    _plugins._reset()
    register_reranker("fake", FakeReranker)
    with pytest.raises(ValueError, match=r"fake \(rerank_kit.testing:FakeReranker, registered\)"):
        rerank_kit._registry.build_reranker("nope", "model")


def test_no_plugins_installed_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [])
    with pytest.raises(ValueError, match=r"no plugin prefixes are installed .*rerank_kit\.rerank"):
        load_reranker("nope:model")


def test_built_in_prefixes_win_over_plugins_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = _distribution(
        tmp_path / "site",
        {"onnx": f"{MODULE}:KeywordOverlapReranker", "keywords": f"{MODULE}:nope"},
        name="greedy",
    )
    monkeypatch.syspath_prepend(str(root))
    with caplog.at_level(logging.WARNING, logger="rerank_kit._plugins"):
        plugins = _plugins.installed_plugins()
        _plugins.installed_plugins()  # read once: warned once
    assert "onnx" not in plugins and "keywords" in plugins
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "claims the built-in spec prefix 'onnx'" in warned[0]
    assert "from greedy 0.1" in warned[0]
    with pytest.raises(RerankError, match=r"'keywords' \(keyword_reranker:nope, from greedy"):
        load_reranker("keywords:count")  # the object is missing from the module


def test_a_plugin_that_fails_to_import_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _distribution(tmp_path / "site", {"broken": "no_such_module:Thing"}, module=False)
    monkeypatch.syspath_prepend(str(root))
    with pytest.raises(RerankError, match=r"'broken' \(no_such_module:Thing, from toy-keywords"):
        load_reranker("broken:x")


def test_register_reranker_checks_its_arguments_and_the_factory_result() -> None:
    with pytest.raises(ValueError, match="built-in reranker spec prefix"):
        register_reranker("onnx", FakeReranker)
    with pytest.raises(ValueError, match="lower-case letters"):
        register_reranker("My:Prefix", FakeReranker)
    with pytest.raises(TypeError, match="needs a callable"):
        register_reranker("fake", "FakeReranker")  # type: ignore[arg-type]
    register_reranker("fake", lambda model, **kwargs: FakeReranker(f"fake:{model}"))
    assert load_reranker("fake:").name == "fake:"  # the model part may be empty
    register_reranker("fake", lambda model, **kwargs: "not a reranker")  # type: ignore[arg-type]
    with pytest.raises(RerankError, match=r"returned str, not a rerank_kit\.Reranker"):
        load_reranker("fake:x")


def test_entry_points_are_read_once(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real = importlib.metadata.entry_points

    def counted(group: str) -> Any:
        reads.append(group)
        return real(group=group)

    monkeypatch.setattr(importlib.metadata, "entry_points", counted)
    with pytest.raises(ValueError, match="names no model"):
        load_reranker("cross-encoder:")  # a built-in prefix never reads the group
    assert reads == []
    for _ in range(3):
        load_reranker("keywords:count")
    assert reads == ["rerank_kit.rerankers"]


# ------------------------------------------------------------------ a real pip installation


def _pip_install_toy(tmp_path: Path) -> Path:
    """A fresh venv (seeing this environment's packages) with the toy distribution pip-installed."""
    project = tmp_path / "toy-keywords"
    (project / "src" / "toy_keywords").mkdir(parents=True)
    shutil.copy(TOY, project / "src" / "toy_keywords" / "__init__.py")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "toy-keywords"\nversion = "0.1"\n'
        '[project.entry-points."rerank_kit.rerankers"]\n'
        'keywords = "toy_keywords:KeywordOverlapReranker"\n',
        encoding="utf-8",
    )
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # this environment's packages (rerank-kit, setuptools) seen from the venv, after its own
    here = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "zz_outer.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
    run = subprocess.run(
        [*pip, "--no-build-isolation", "--no-index", str(project)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return python


@pytest.mark.slow
def test_a_pip_installed_distribution_registers_its_prefix(tmp_path: Path) -> None:
    python = _pip_install_toy(tmp_path)
    script = (
        "from rerank_kit import PipelineConfig, load_pipeline, load_reranker\n"
        "r = load_reranker('keywords:count', score_cache=10, long_documents='max', max_words=20)\n"
        f"print(type(r).__module__, r.score({QUERY!r}, {PASSAGES!r}))\n"
        "p = load_pipeline(PipelineConfig('keywords:share', 'bm25', top_n=1))\n"
        f"print(p.rerank({QUERY!r}, {PASSAGES!r})[0].index)\n"
    )
    # PYTHONPATH: this checkout's rerank_kit before any installed copy
    env = {**os.environ, "PYTHONPATH": str(Path(rerank_kit.__file__).parents[1])}
    out = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["toy_keywords [2.0, 0.0, 2.0]", "0"]
    cli = subprocess.run(
        [str(python), "-m", "rerank_kit.cli", "eval", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert cli.returncode == 0
    unknown = subprocess.run(
        [str(python), "-c", "from rerank_kit import load_reranker; load_reranker('nope:x')"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "keywords (toy_keywords:KeywordOverlapReranker, from toy-keywords 0.1)" in (
        unknown.stderr
    )


# ------------------------------------------------------------ the bi-encoder's score cache


@pytest.mark.models
def test_the_bi_encoder_keeps_a_score_cache_keyed_by_its_identity(minilm_path: str) -> None:
    from rerank_kit import BiEncoderReranker

    cache = ScoreCache(100)
    plain = BiEncoderReranker(minilm_path)
    cached = BiEncoderReranker(minilm_path, score_cache=cache)
    first = cached.score(QUERY, PASSAGES)
    assert first == pytest.approx(plain.score(QUERY, PASSAGES), abs=1e-6)
    assert cached.score(QUERY, PASSAGES) == first and cache.info()["hits"] == 3
    assert all(hit is not None for hit in cache.get(f"bi-encoder:{minilm_path}", QUERY, PASSAGES))
    # another prompt (or model) shares the cache but never its entries
    prompted = BiEncoderReranker(minilm_path, score_cache=cache, query_prompt="query: ")
    assert prompted._score_identity().startswith(f"bi-encoder:{minilm_path} [query_prompt=")
    assert prompted.score(QUERY, PASSAGES) != first and cache.info()["size"] == 6
    cached.clear_cache()  # embeddings and scores
    assert cache.info()["size"] == 0 and cached.cache_info()["size"] == 0


@pytest.mark.models
@pytest.mark.parametrize("framework", ["langchain_rerank_kit", "llamaindex_rerank_kit"])
def test_the_bi_encoder_adapters_take_a_score_cache(minilm_path: str, framework: str) -> None:
    fw = pytest.importorskip(framework)
    adapter = fw.BiEncoderRerank(model=minilm_path, score_cache=10)
    assert adapter.reranker.score_cache is not None
    assert adapter.reranker.score_cache.info()["max_size"] == 10
