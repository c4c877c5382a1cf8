"""``instruction=`` reaches the score everywhere a reranker is named (issue 29, item 3).

Each place (engine, ``load_reranker`` specs, the score cache, ``PipelineConfig`` /
``load_pipeline``, both adapters and their ``from_config``, ``rerank-kit eval`` / ``tune`` /
``demo``) is checked against an independent reference: the Qwen3-Reranker model card's
"Transformers Usage" recipe run with plain transformers on a tiny random-weight Qwen3 causal LM
(``tiny_causal_reranker_dir``): prefix + ``<Instruct>: {instruction}\\n<Query>: {query}\\n
<Document>: {doc}`` + suffix, each tokenized as the card does, softmax over the last position's
[no, yes] logits. The ONNX and OpenVINO specs run the model's sequence-classification conversion
(score head = lm_head[yes] - lm_head[no], so its sigmoid is the card's score), built here.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from rerank_kit import PipelineConfig, Reranker, ScoreCache, load_pipeline, load_reranker
from rerank_kit.testing import FakeReranker

# the Qwen3-Reranker model card (https://huggingface.co/Qwen/Qwen3-Reranker-0.6B), verbatim
CARD_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
CARD_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
CARD_DEFAULT = "Given a web search query, retrieve relevant passages that answer the query"
INSTRUCTION = "Find the help-desk passage that solves the user's problem"
OTHER = "Judge whether the passage mentions a city"

QUERY = "my laptop gets hot and the fan is loud"
DOCS = [
    "Clean the air vents and update the BIOS to fix an overheating laptop.",
    "Paris is the capital of France and Berlin is the capital of Germany.",
    "Reset your password from the account page.",
]
FP32 = 1e-5

Reference = Callable[[str, Sequence[str], str], list[float]]


@pytest.fixture(scope="module")
def card(tiny_causal_reranker_dir: Path) -> Reference:
    """``card(query, docs, instruction)``: the model card's scores, with plain transformers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_causal_reranker_dir), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(tiny_causal_reranker_dir)).eval()
    prefix = tokenizer.encode(CARD_PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(CARD_SUFFIX, add_special_tokens=False)
    yes = tokenizer.convert_tokens_to_ids("yes")
    no = tokenizer.convert_tokens_to_ids("no")

    def scores(query: str, docs: Sequence[str], instruction: str) -> list[float]:
        out = []
        for doc in docs:
            body = f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"
            ids = prefix + tokenizer(body, add_special_tokens=False)["input_ids"] + suffix
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            pair = torch.stack([logits[no], logits[yes]])
            out.append(float(torch.softmax(pair.float(), dim=0)[1]))
        return out

    # the test means something only if the instruction moves the scores
    moved = max(
        abs(a - b)
        for a, b in zip(
            scores(QUERY, DOCS, INSTRUCTION), scores(QUERY, DOCS, CARD_DEFAULT), strict=True
        )
    )
    assert moved > 1e-3, moved
    return scores


@pytest.fixture(scope="module")
def seq_cls_dir(tiny_causal_reranker_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sequence-classification conversion of the tiny Qwen3 reranker (template included)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3ForSequenceClassification

    lm = AutoModelForCausalLM.from_pretrained(str(tiny_causal_reranker_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_causal_reranker_dir))
    config = lm.config
    config.num_labels = 1
    config.architectures = ["Qwen3ForSequenceClassification"]
    config.pad_token_id = tokenizer.pad_token_id
    config.tie_word_embeddings = False
    model = Qwen3ForSequenceClassification(config).eval()
    model.model.load_state_dict(lm.model.state_dict())
    head = lm.get_output_embeddings().weight
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    with torch.no_grad():
        model.score.weight.copy_((head[yes] - head[no]).unsqueeze(0))
    out = tmp_path_factory.mktemp("models") / "tiny-qwen3-reranker-seq-cls"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _close(got: Sequence[float], want: Sequence[float], tol: float = FP32) -> None:
    assert len(got) == len(want)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= tol, (got, want)


# -- the engine and load_reranker ------------------------------------------------------------


@pytest.mark.models
@pytest.mark.parametrize("instruction", [None, INSTRUCTION])
def test_engine_scores_with_the_instruction(
    tiny_causal_reranker_dir: Path, card: Reference, instruction: str | None
) -> None:
    from rerank_kit import CrossEncoderReranker

    r = CrossEncoderReranker(
        str(tiny_causal_reranker_dir), backend="torch", instruction=instruction
    )
    assert r.instruction == (instruction or CARD_DEFAULT)
    _close(r.score(QUERY, DOCS), card(QUERY, DOCS, instruction or CARD_DEFAULT))


@pytest.mark.models
@pytest.mark.parametrize("kind", ["cross-encoder", "onnx", "openvino"])
def test_load_reranker_passes_the_instruction(
    tiny_causal_reranker_dir: Path, seq_cls_dir: Path, card: Reference, kind: str
) -> None:
    folder = tiny_causal_reranker_dir if kind == "cross-encoder" else seq_cls_dir
    if kind == "openvino":
        pytest.importorskip("openvino")
    spec = f"{kind}:{folder}"
    r = load_reranker(spec, instruction=INSTRUCTION)
    assert r.instruction == INSTRUCTION
    want = card(QUERY, DOCS, INSTRUCTION)
    # OpenVINO may run bf16 kernels on CPUs that have them ("auto" precision): a wider band
    _close(r.score(QUERY, DOCS), want, FP32 if kind != "openvino" else 1e-2)
    assert load_reranker(spec).instruction == CARD_DEFAULT


def test_load_reranker_refuses_an_instruction_for_families_without_one() -> None:
    for spec in ("flashrank:ms-marco-TinyBERT-L-2-v2", "bi-encoder:x", "cohere:rerank-v3.5"):
        with pytest.raises(ValueError, match="instruction= applies to cross-encoder specs"):
            load_reranker(spec, instruction=INSTRUCTION)
    with pytest.raises(ValueError, match="single-model specs"):
        load_reranker("onnx:a@2 >> onnx:b", instruction=INSTRUCTION)


@pytest.mark.models
def test_a_plain_cross_encoder_takes_none_and_keeps_its_cache_key(tiny_ce_dir: Path) -> None:
    with pytest.raises(ValueError, match="takes no instruction"):
        load_reranker(f"cross-encoder:{tiny_ce_dir}", instruction=INSTRUCTION)
    plain = load_reranker(f"cross-encoder:{tiny_ce_dir}")
    assert plain.instruction is None
    assert plain._score_identity() == plain.name  # old cache files keep working


# -- the score cache ---------------------------------------------------------------------------


def test_score_identity_names_a_non_default_instruction_only() -> None:
    r = FakeReranker("m")
    assert r._score_identity() == "m"
    r.instruction = ""  # takes one, none given (mxbai-rerank v2's default)
    assert r._score_identity() == "m"
    r.instruction = INSTRUCTION
    first = r._score_identity()
    assert first.startswith("m [instruction=") and INSTRUCTION not in first
    r.instruction = OTHER
    assert r._score_identity() not in (first, "m")
    r.recipe = type("Recipe", (), {"default_instruction": OTHER})()  # type: ignore[attr-defined]
    assert r.default_instruction == OTHER and r._score_identity() == "m"
    r._score_rule = "rule/1"  # type: ignore[attr-defined]
    r.instruction = INSTRUCTION
    assert r._score_identity() == first.replace("m ", "m [scores=rule/1] ")


@pytest.mark.models
def test_the_score_cache_keeps_two_instructions_apart(
    tiny_causal_reranker_dir: Path, card: Reference, tmp_path: Path
) -> None:
    from rerank_kit import CrossEncoderReranker

    path = tmp_path / "scores.jsonl"
    cache = ScoreCache(100, path=path)
    made = {}
    for instruction in (None, INSTRUCTION, OTHER):
        made[instruction] = r = CrossEncoderReranker(
            str(tiny_causal_reranker_dir), backend="torch", instruction=instruction
        )
        r.set_score_cache(cache)
        _close(r.score(QUERY, DOCS), card(QUERY, DOCS, instruction or CARD_DEFAULT))
    assert cache.info()["hits"] == 0 and cache.info()["size"] == 3 * len(DOCS)
    keys = {json.loads(line)[0] for line in path.read_text().splitlines()}
    assert keys == {r._score_identity() for r in made.values()}
    assert made[None]._score_identity() == made[None].name  # the default keeps the plain key
    # a new process reads the file: each instruction gets its own scores back, unscored
    again = CrossEncoderReranker(
        str(tiny_causal_reranker_dir), backend="torch", instruction=OTHER, score_cache=str(path)
    )
    _close(again.score(QUERY, DOCS), card(QUERY, DOCS, OTHER))
    assert again.cache_info()["hits"] == len(DOCS)


# -- PipelineConfig and load_pipeline ---------------------------------------------------------


def test_pipeline_config_round_trip(tmp_path: Path) -> None:
    config = PipelineConfig("cross-encoder:m", "bm25", 20, 0.5, instruction=INSTRUCTION)
    data = config.to_dict()
    assert data["instruction"] == INSTRUCTION
    assert PipelineConfig.from_dict(data) == config
    assert PipelineConfig.load(config.save(tmp_path / "p.json")) == config
    plain = PipelineConfig("cross-encoder:m", "bm25", 20)
    assert "instruction" not in plain.to_dict()  # left out when unset: older readers
    old = {k: v for k, v in plain.to_dict().items()}
    assert PipelineConfig.from_dict(old).instruction is None
    for bad in ("", "  ", 3):
        with pytest.raises(ValueError, match="instruction must be a non-empty string"):
            PipelineConfig.from_dict({**data, "instruction": bad})


@pytest.mark.models
def test_load_pipeline_passes_the_instruction(
    tiny_causal_reranker_dir: Path, card: Reference, tmp_path: Path
) -> None:
    spec = f"cross-encoder:{tiny_causal_reranker_dir}"
    path = PipelineConfig(spec, top_n=None, instruction=INSTRUCTION).save(tmp_path / "p.json")
    pipeline = load_pipeline(path, backend="torch")
    assert pipeline.reranker.instruction == INSTRUCTION
    ranked = pipeline.rerank(QUERY, DOCS)
    got = [s for _, s in sorted((x.index, x.score) for x in ranked)]
    _close(got, card(QUERY, DOCS, INSTRUCTION))
    with pytest.raises(ValueError, match="instruction is given twice"):
        load_pipeline(path, instruction=OTHER)
    # a file without one takes it as a keyword argument
    plain = PipelineConfig(spec).save(tmp_path / "plain.json")
    assert load_pipeline(plain, instruction=OTHER, backend="torch").reranker.instruction == OTHER


# -- the adapters ------------------------------------------------------------------------------


@pytest.mark.models
def test_langchain_cross_encoder_takes_the_instruction(
    tiny_causal_reranker_dir: Path, card: Reference, tmp_path: Path
) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document

    from langchain_rerank_kit import CrossEncoderRerank, from_config

    docs = [Document(page_content=d, metadata={"i": i}) for i, d in enumerate(DOCS)]
    want = card(QUERY, DOCS, INSTRUCTION)
    rerank = CrossEncoderRerank(
        model=str(tiny_causal_reranker_dir), backend="torch", instruction=INSTRUCTION, top_n=None
    )
    assert rerank.reranker.instruction == INSTRUCTION
    out = rerank.compress_documents(docs, QUERY)
    _close(
        [d.metadata["relevance_score"] for d in sorted(out, key=lambda d: d.metadata["i"])], want
    )
    assert docs[0].metadata == {"i": 0}  # never mutated
    # the old spelling inside model_kwargs is an engine argument too
    old = CrossEncoderRerank(
        model=str(tiny_causal_reranker_dir), model_kwargs={"backend": "torch", "instruction": OTHER}
    )
    assert old.reranker.instruction == OTHER
    path = PipelineConfig(
        f"cross-encoder:{tiny_causal_reranker_dir}", top_n=None, instruction=INSTRUCTION
    ).save(tmp_path / "p.json")
    tuned = from_config(path, backend="torch")
    out = tuned.compress_documents(docs, QUERY)
    _close(
        [d.metadata["relevance_score"] for d in sorted(out, key=lambda d: d.metadata["i"])], want
    )


@pytest.mark.models
def test_llamaindex_cross_encoder_takes_the_instruction(
    tiny_causal_reranker_dir: Path, card: Reference, tmp_path: Path
) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from llamaindex_rerank_kit import CrossEncoderRerank, from_config

    nodes = [
        NodeWithScore(node=TextNode(text=d, id_=str(i)), score=1.0) for i, d in enumerate(DOCS)
    ]
    want = card(QUERY, DOCS, INSTRUCTION)

    def scores(post: Any) -> list[float]:
        out = post.postprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))
        return [n.score for n in sorted(out, key=lambda n: int(n.node.node_id))]

    rerank = CrossEncoderRerank(
        model=str(tiny_causal_reranker_dir),
        backend="torch",
        instruction=INSTRUCTION,
        top_n=None,
        metadata_mode="none",
    )
    assert rerank.reranker.instruction == INSTRUCTION
    _close(scores(rerank), want)
    path = PipelineConfig(
        f"cross-encoder:{tiny_causal_reranker_dir}", top_n=None, instruction=INSTRUCTION
    ).save(tmp_path / "p.json")
    _close(scores(from_config(path, backend="torch")), want)


@pytest.mark.parametrize("framework", ["langchain_rerank_kit", "llamaindex_rerank_kit"])
def test_only_cross_encoder_adapters_offer_it(framework: str) -> None:
    import importlib

    from pydantic import ValidationError

    module = pytest.importorskip(framework)
    assert "instruction" in module.CrossEncoderRerank.model_fields
    for name in ("FlashRankRerank", "BiEncoderRerank", "RemoteRerank"):
        assert "instruction" not in getattr(module, name).model_fields, name
    with pytest.raises(ValidationError, match="instruction"):
        module.FlashRankRerank(model="/no/such/folder", instruction=INSTRUCTION)
    assert importlib.import_module(framework) is module


# -- the command line ------------------------------------------------------------------------


def test_every_command_that_names_a_reranker_parses_it() -> None:
    import argparse

    from rerank_kit import demo
    from rerank_kit.evaluation import _cli as eval_cli
    from rerank_kit.learning import _cli as learning_cli

    for add, argv in (
        (eval_cli.add_arguments, ["data", "--reranker", "onnx:m"]),
        (learning_cli.add_arguments, ["data", "--reranker", "onnx:m"]),
        (demo.add_arguments, ["--reranker", "onnx:m"]),
    ):
        parser = argparse.ArgumentParser()
        add(parser)
        assert parser.parse_args([*argv, "--instruction", INSTRUCTION]).instruction == INSTRUCTION
        assert parser.parse_args(argv).instruction is None


def test_instructed_builds_only_cross_encoder_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    import rerank_kit._registry as registry
    from rerank_kit.evaluation._cli import instructed

    built: list[tuple[str, dict[str, Any]]] = []

    def fake_load(spec: str, **kwargs: Any) -> FakeReranker:
        built.append((spec, kwargs))
        return FakeReranker(spec)

    monkeypatch.setattr(registry, "load_reranker", fake_load)
    specs = ["flashrank:a", "onnx:b", "cross-encoder:c", "openvino:d", "bi-encoder:e"]
    assert instructed(specs, None) == specs and not built
    cache = ScoreCache(10)
    out = instructed(specs, INSTRUCTION, long_documents="truncate", score_cache=cache)
    assert [x if isinstance(x, str) else x.name for x in out] == specs
    assert [s for s, _ in built] == ["onnx:b", "cross-encoder:c", "openvino:d"]
    assert all(k == {"instruction": INSTRUCTION} for _, k in built)
    with pytest.raises(ValueError, match="cascade"):
        instructed(["flashrank:a@5 >> onnx:b"], INSTRUCTION)
    assert instructed(["flashrank:a@5 >> bi-encoder:b"], INSTRUCTION) == [
        "flashrank:a@5 >> bi-encoder:b"
    ]


def test_instruction_and_dask_are_refused_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rerank_kit.cli import main

    for command in ("eval", "tune"):
        argv = [command, str(tmp_path), "--reranker", "onnx:m", "--instruction", INSTRUCTION]
        assert main([*argv, "--dask", "127.0.0.1:1"]) == 2  # before any scheduler or model
        assert "--instruction cannot be combined with --dask" in capsys.readouterr().err


def _dataset(folder: Path) -> Path:
    from rerank_kit.demo import CORPUS, QUERIES

    folder.mkdir()
    with (folder / "corpus.jsonl").open("w") as f:
        for doc_id, text in CORPUS:
            f.write(json.dumps({"id": doc_id, "text": text}) + "\n")
    with (folder / "judgments.jsonl").open("w") as f:
        for query, answer in QUERIES[:4]:
            f.write(json.dumps({"query": query, "relevant": [answer]}) + "\n")
    return folder


def _cached(path: Path) -> dict[str, list[tuple[str, str, float]]]:
    """The score cache file's entries, by model key."""
    out: dict[str, list[tuple[str, str, float]]] = {}
    for line in path.read_text().splitlines():
        model, query, passage, score, _ = json.loads(line)
        out.setdefault(model, []).append((query, passage, score))
    return out


def _check_cached(entries: list[tuple[str, str, float]], card: Reference) -> None:
    assert entries
    for query, passage, score in entries[:6]:  # the reference costs a forward pass each
        _close([score], card(query, [passage], INSTRUCTION))


@pytest.mark.models
def test_eval_and_tune_score_with_the_instruction(
    tiny_causal_reranker_dir: Path, card: Reference, tmp_path: Path
) -> None:
    from rerank_kit.cli import main

    data = _dataset(tmp_path / "data")
    spec = f"cross-encoder:{tiny_causal_reranker_dir}"
    instructed = load_reranker(spec, instruction=INSTRUCTION)._score_identity()
    scores = tmp_path / "eval-scores.jsonl"
    report = tmp_path / "eval.json"
    argv = ["eval", str(data), "--reranker", spec, "--depth", "4", "--no-progress"]
    options = ["--instruction", INSTRUCTION, "--score-cache", str(scores), "--json", str(report)]
    assert main([*argv, *options]) == 0
    entries = _cached(scores)
    assert set(entries) == {instructed}
    _check_cached(entries[instructed], card)
    assert json.loads(report.read_text())["settings"]["instruction"] == INSTRUCTION
    # a cascade cannot take it; an instruction for a plain cross-encoder is refused
    assert main([*argv[:3], f"flashrank:x@2 >> {spec}", "--instruction", INSTRUCTION]) == 2

    tuned = tmp_path / "tune-scores.jsonl"
    config = tmp_path / "pipeline.json"
    argv = ["tune", str(data), "--reranker", spec, "--depth", "4", "--folds", "2"]
    argv += ["--no-progress", "--instruction", INSTRUCTION, "--score-cache", str(tuned)]
    assert main([*argv, "--config", str(config)]) == 0
    entries = _cached(tuned)
    assert set(entries) == {instructed}
    _check_cached(entries[instructed], card)
    saved = PipelineConfig.load(config)
    if not saved.first_stage_only:  # tune may find that no reranker helps on 4 queries
        assert (saved.reranker, saved.instruction) == (spec, INSTRUCTION)


def test_tune_writes_the_spec_and_instruction_of_the_chosen_reranker() -> None:
    from rerank_kit.learning._cli import _with_instruction

    model = FakeReranker("cross-encoder:/m")
    built: list[tuple[str, str | Reranker]] = [("flashrank:a", "flashrank:a")]
    built.append(("cross-encoder:m", model))
    chosen = _with_instruction(PipelineConfig("cross-encoder:/m", top_n=3), built, INSTRUCTION)
    assert (chosen.reranker, chosen.instruction, chosen.top_n) == (
        "cross-encoder:m",
        INSTRUCTION,
        3,
    )
    other = PipelineConfig("flashrank:a")
    assert _with_instruction(other, built, INSTRUCTION) == other
    none = PipelineConfig("none")
    assert _with_instruction(none, built, INSTRUCTION) == none


@pytest.mark.models
def test_demo_reranks_with_the_instruction(tiny_causal_reranker_dir: Path, card: Reference) -> None:
    pytest.importorskip("chromadb")
    import argparse

    from rerank_kit import demo

    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    spec = f"cross-encoder:{tiny_causal_reranker_dir}"
    args = parser.parse_args(
        [
            "--reranker",
            spec,
            "--query",
            QUERY,
            "--candidates",
            "4",
            "--top-n",
            "4",
            "--instruction",
            INSTRUCTION,
        ]
    )
    out = io.StringIO()
    assert demo.run(args, out) == 0
    text = out.getvalue()
    assert f"instruction: {INSTRUCTION}" in text
    after = text.split("after")[1]
    shown = [float(line.split("[")[1].split("]")[0]) for line in after.splitlines()[1:5]]
    passages = {text: doc_id for doc_id, text in demo.CORPUS}
    ids = [line.split("]")[1].split()[0] for line in after.splitlines()[1:5]]
    by_id = {doc_id: text for text, doc_id in passages.items()}
    want = card(QUERY, [by_id[i] for i in ids], INSTRUCTION)
    assert all(math.isclose(s, w, abs_tol=6e-4) for s, w in zip(shown, want, strict=True))
