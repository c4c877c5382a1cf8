"""Reranker recipes: the table, matching model folders, register_recipe, refusals, and the two
kinds of model the recipes make exact on every backend: a decoder sequence-classification
conversion (Qwen3-Reranker "seq-cls") and a two-label head.

References are written here from the model cards with plain transformers (the prompt built by
hand), never with rerank-kit's own rendering.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rerank_kit import (
    CrossEncoderReranker,
    OnnxCrossEncoderReranker,
    Recipe,
    RerankError,
    list_recipes,
    match_recipe,
    register_recipe,
)
from rerank_kit._recipe_table import BUILTIN_RECIPES
from rerank_kit.recipes import (
    KINDS,
    _unregister,
    folder_facts,
    relevant_label,
    render,
    resolve_recipe,
)

QUERY = "what is the capital of france"
TEXTS = [
    "paris is the capital of france",
    "berlin is the capital of germany",
    "the quick brown fox jumps over the lazy dog",
    "rerankers score a query and a passage together",
    "yes",
]
LONG = " ".join(["the capital of france is paris and berlin is in germany"] * 40)

# Qwen3-Reranker's model card (huggingface.co/Qwen/Qwen3-Reranker-0.6B), written out by hand.
CARD_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
    'the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
CARD_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
CARD_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
GENERIC_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
)
# A plain chat model's template (Qwen3's own keeps to these roles): it cannot carry a pair.
CHAT_ROLES_TEMPLATE = (
    "{% for m in messages %}{% if m.role in ['system', 'user', 'assistant'] %}"
    "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}"
)


# --------------------------------------------------------------------------- the table


def test_the_table_has_every_family_once_with_a_source() -> None:
    table = list_recipes()
    names = [r.name for r in table]
    assert len(names) == len(set(names))
    assert {
        "bert-cross-encoder",
        "electra-cross-encoder",
        "distilbert-cross-encoder",
        "xlm-roberta-cross-encoder",
        "modernbert-cross-encoder",
        "deberta-v2-cross-encoder",
        "qwen3-reranker",
        "qwen3-reranker-seq-cls",
        "mxbai-rerank-v2",
        "bge-reranker-v2-gemma",
    } <= set(names)
    for recipe in table:
        assert recipe.kind in KINDS
        assert recipe.source, recipe.name
        if recipe.kind == "yes-no":
            assert recipe.yes_token and recipe.architectures
    by_name = {r.name: r for r in table}
    assert by_name["xlm-roberta-cross-encoder"].position_offset == 2
    assert by_name["qwen3-reranker"].default_instruction == CARD_INSTRUCTION
    assert by_name["mxbai-rerank-v2"].default_instruction == ""  # optional, none by default
    assert (by_name["mxbai-rerank-v2"].yes_token, by_name["mxbai-rerank-v2"].no_token) == ("1", "0")
    assert by_name["bge-reranker-v2-gemma"].yes_token == "Yes"
    assert by_name["bert-cross-encoder"].default_instruction is None


def test_the_docs_page_lists_every_built_in_recipe() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "guides" / "recipes.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`"): line.split("|")[2].strip()
        for line in page.splitlines()
        if line.startswith("| `")
    }
    builtin = {r.name: r.kind for r in BUILTIN_RECIPES}
    assert rows == builtin


def test_rendering_follows_the_model_cards() -> None:
    by_name = {r.name: r for r in list_recipes()}
    card = f"{CARD_PREFIX}<Instruct>: {CARD_INSTRUCTION}\n<Query>: q\n<Document>: d{CARD_SUFFIX}"
    assert render(by_name["qwen3-reranker"], "q", "d") == card
    assert render(by_name["qwen3-reranker-seq-cls"], "q", "d") == card
    mxbai = render(by_name["mxbai-rerank-v2"], "q", "d")
    assert "\nquery: q\ndocument: d\nYou are a search relevance expert" in mxbai
    assert "instruction:" not in mxbai
    assert "instruction: find code\nquery: q\n" in render(
        by_name["mxbai-rerank-v2"], "q", "d", "find code"
    )
    gemma = render(by_name["bge-reranker-v2-gemma"], "q", "d")
    assert gemma.startswith("A: q\nB: d\nGiven a query A and a passage B")
    with pytest.raises(ValueError, match="takes no instruction"):
        render(Recipe(name="x", kind="seq-cls-template"), "q", "d", "an instruction")
    with pytest.raises(ValueError, match="plain cross-encoder"):
        render(by_name["bert-cross-encoder"], "q", "d")


def test_recipe_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="kind"):
        Recipe(name="x", kind="decoder")
    with pytest.raises(ValueError, match="activation"):
        Recipe(name="x", activation="relu")
    with pytest.raises(ValueError, match="yes_token"):
        Recipe(name="x", kind="yes-no")
    with pytest.raises(ValueError, match="document"):
        Recipe(name="x", kind="seq-cls-template", document_format="no placeholder")
    with pytest.raises(TypeError, match="tuple"):
        Recipe(name="x", architectures=["BertModel"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- matching


def _folder(root: Path, name: str, config: dict[str, Any], template: str | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    if template is not None:
        (folder / "chat_template.jinja").write_text(template)
    return folder


@pytest.mark.parametrize(
    ("model_type", "architecture", "expected"),
    [
        ("bert", "BertForSequenceClassification", "bert-cross-encoder"),
        ("electra", "ElectraForSequenceClassification", "electra-cross-encoder"),
        ("distilbert", "DistilBertForSequenceClassification", "distilbert-cross-encoder"),
        ("xlm-roberta", "XLMRobertaForSequenceClassification", "xlm-roberta-cross-encoder"),
        ("modernbert", "ModernBertForSequenceClassification", "modernbert-cross-encoder"),
        ("deberta-v2", "DebertaV2ForSequenceClassification", "deberta-v2-cross-encoder"),
    ],
)
def test_encoder_folders_match_their_family(
    tmp_path: Path, model_type: str, architecture: str, expected: str
) -> None:
    folder = _folder(tmp_path, "m", {"model_type": model_type, "architectures": [architecture]})
    recipe = match_recipe(folder)
    assert recipe is not None and recipe.name == expected
    assert resolve_recipe(folder) is recipe


def test_decoder_folders_match_by_name_or_template(tmp_path: Path) -> None:
    qwen3 = {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]}
    plain = _folder(tmp_path, "snapshot", qwen3, GENERIC_TEMPLATE)
    assert match_recipe(plain) is None
    named = match_recipe(plain, "Qwen/Qwen3-Reranker-4B")
    assert named is not None and named.name == "qwen3-reranker"
    marked = _folder(tmp_path, "st", qwen3, "<Instruct>: x <Query>: y <Document>: z")
    assert getattr(match_recipe(marked), "name", None) == "qwen3-reranker"
    seq = {"model_type": "qwen3", "architectures": ["Qwen3ForSequenceClassification"]}
    seq_folder = _folder(tmp_path, "Qwen3-Reranker-0.6B-seq-cls", seq)
    assert getattr(match_recipe(seq_folder), "name", None) == "qwen3-reranker-seq-cls"
    qwen2 = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}
    mxbai = _folder(tmp_path, "mxbai-rerank-base-v2", qwen2, GENERIC_TEMPLATE)
    assert getattr(match_recipe(mxbai), "name", None) == "mxbai-rerank-v2"
    gemma = {"model_type": "gemma", "architectures": ["GemmaForCausalLM"]}
    bge = _folder(tmp_path, "x", gemma)
    assert getattr(match_recipe(bge, "BAAI/bge-reranker-v2-gemma"), "name", None) == (
        "bge-reranker-v2-gemma"
    )
    facts = folder_facts(plain, "Qwen/Qwen3-Reranker-4B")
    assert facts.head == "causal-lm" and facts.chat_template == GENERIC_TEMPLATE


def test_unknown_decoders_are_refused_with_what_is_missing(tmp_path: Path) -> None:
    qwen2 = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}
    folder = _folder(tmp_path, "some-qwen2", qwen2)  # mxbai v2 shape, but nothing names it
    with pytest.raises(RerankError, match=r"Qwen2ForCausalLM.*register_recipe"):
        resolve_recipe(folder, "org/some-qwen2")
    seq = {"model_type": "qwen2", "architectures": ["Qwen2ForSequenceClassification"]}
    templated = _folder(tmp_path, "seq", seq, GENERIC_TEMPLATE)
    with pytest.raises(RerankError, match="a chat template"):
        resolve_recipe(templated)
    bare = _folder(tmp_path, "bare", seq)  # no template: a pair classifier, read as pairs
    assert resolve_recipe(bare) is None
    unknown_encoder = _folder(tmp_path, "enc", {"model_type": "nomic_bert"})
    assert resolve_recipe(unknown_encoder) is None


def test_register_recipe_adds_a_family_without_editing_the_package(tmp_path: Path) -> None:
    qwen2 = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}
    folder = _folder(tmp_path, "my-qwen2-judge", qwen2)
    mine = Recipe(
        name="test-my-qwen2-judge",
        kind="yes-no",
        architectures=("Qwen2ForCausalLM",),
        name_patterns=("*my-qwen2-judge*",),
        query_format="Q: {query}",
        separator="\n",
        document_format="D: {document}",
        suffix="\nRelevant:",
        yes_token=" yes",
        activation="yes-logit",
        source="this test",
    )
    try:
        assert register_recipe(mine) is mine
        assert list_recipes()[0] is mine
        assert resolve_recipe(folder) is mine
        with pytest.raises(ValueError, match="exists"):
            register_recipe(mine)
        with pytest.raises(ValueError, match="exists"):
            register_recipe(Recipe(name="bert-cross-encoder"))
        changed = Recipe(**{**mine.__dict__, "suffix": "\nOK?"})
        register_recipe(changed, replace=True)
        assert resolve_recipe(folder) is changed
        assert [r.name for r in list_recipes()].count(mine.name) == 1
        with pytest.raises(TypeError):
            register_recipe("not a recipe")  # type: ignore[arg-type]
    finally:
        _unregister(mine.name)
    with pytest.raises(RerankError, match="register_recipe"):
        resolve_recipe(folder)


def test_relevant_label_of_two_label_heads() -> None:
    assert relevant_label({"num_labels": 1}) == 0
    assert relevant_label({"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}) == 1
    assert relevant_label({"id2label": {"0": "relevant", "1": "not_relevant"}}) == 0
    assert relevant_label({"id2label": {"0": "Positive", "1": "Negative"}}) == 0
    assert relevant_label({"id2label": {"0": "irrelevant", "1": "other"}}) == 1  # the last
    assert relevant_label({"id2label": {0: "yes", 1: "no"}}) == 0  # int keys (transformers)


# --------------------------------------------------------------------------- tiny models

pytest_models = pytest.mark.models


@pytest.fixture(scope="session")
def causal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from rerank_kit.testing import make_causal_lm_reranker

    words = [*TEXTS, LONG, QUERY, "find the cities named in a passage"]
    return make_causal_lm_reranker(tmp_path_factory.mktemp("recipes") / "tiny-qwen3-lm", words)


@pytest.fixture(scope="session")
def seq_cls_dir(causal_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Qwen3ForSequenceClassification conversion: score = lm_head[yes] - lm_head[no]."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3ForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(causal_dir)
    lm = AutoModelForCausalLM.from_pretrained(causal_dir).eval()
    config = lm.config
    config.num_labels = 1
    config.tie_word_embeddings = False
    config.architectures = ["Qwen3ForSequenceClassification"]
    model = Qwen3ForSequenceClassification(config).eval()
    model.load_state_dict(lm.state_dict(), strict=False)
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    with torch.no_grad():
        model.score.weight.copy_((lm.lm_head.weight[yes] - lm.lm_head.weight[no])[None])
    out = tmp_path_factory.mktemp("recipes") / "tiny-qwen3-reranker-seq-cls"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def card_scores(causal: Path, query: str, texts: list[str], instruction: str) -> list[float]:
    """Qwen3-Reranker's card: softmax([no, yes]) of the causal LM's last logits, by hand."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(causal)
    model = AutoModelForCausalLM.from_pretrained(causal).eval()
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    out = []
    for text in texts:
        prompt = (
            f"{CARD_PREFIX}<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {text}"
            f"{CARD_SUFFIX}"
        )
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, -1]
        out.append(float(torch.softmax(torch.stack([logits[no], logits[yes]]), 0)[1]))
    return out


def _pre_exported(source: Path, cache: Path, root: Path) -> Path:
    """A Hub-style folder: the export's graph in onnx/, the model's config and tokenizer files."""
    graph = next(cache.rglob("model.onnx"))
    folder = root / f"{source.name}-onnx"
    (folder / "onnx").mkdir(parents=True)
    shutil.copy(graph, folder / "onnx" / "model.onnx")
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (source / name).is_file():
            shutil.copy(source / name, folder / name)
    return folder


def _assert_close(got: list[float], want: list[float], tol: float) -> None:
    import numpy as np

    a, b = np.asarray(got), np.asarray(want)
    assert np.abs(a - b).max() <= tol, (a, b)
    assert list(np.argsort(-a, kind="stable")) == list(np.argsort(-b, kind="stable"))


def _batch_dependence(reranker: Any, texts: list[str]) -> float:
    together = reranker.score(QUERY, texts)
    alone = [reranker.score(QUERY, [t])[0] for t in texts]
    return max(abs(a - b) for a, b in zip(together, alone, strict=True))


@pytest_models
def test_seq_cls_torch_matches_the_card(causal_dir: Path, seq_cls_dir: Path) -> None:
    pytest.importorskip("sentence_transformers")
    reranker = CrossEncoderReranker(str(seq_cls_dir), backend="torch")
    assert reranker.recipe is not None and reranker.recipe.name == "qwen3-reranker-seq-cls"
    assert reranker.instruction == CARD_INSTRUCTION
    _assert_close(
        reranker.score(QUERY, TEXTS), card_scores(causal_dir, QUERY, TEXTS, CARD_INSTRUCTION), 1e-5
    )
    assert _batch_dependence(reranker, TEXTS) <= 1e-5
    told = CrossEncoderReranker(str(seq_cls_dir), backend="torch", instruction="find cities")
    want = card_scores(causal_dir, QUERY, TEXTS, "find cities")
    _assert_close(told.score(QUERY, TEXTS), want, 1e-5)


@pytest_models
def test_seq_cls_without_a_chat_template_reads_the_recipe_on_torch(
    causal_dir: Path, seq_cls_dir: Path, tmp_path: Path
) -> None:
    """A Hub-named conversion whose folder has no chat template: the recipe renders the pair."""
    pytest.importorskip("sentence_transformers")
    folder = tmp_path / "Qwen3-Reranker-0.6B-seq-cls"
    shutil.copytree(seq_cls_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    tok_config = json.loads((folder / "tokenizer_config.json").read_text())
    tok_config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config))
    reranker = CrossEncoderReranker(str(folder), backend="torch", instruction="find cities")
    assert reranker._template_mode == "pairs"
    want = card_scores(causal_dir, QUERY, TEXTS, "find cities")
    _assert_close(reranker.score(QUERY, TEXTS), want, 1e-5)


@pytest_models
@pytest.mark.parametrize(
    "options",
    [{}, {"backend": "openvino", "openvino_precision": "f32"}],
    ids=["onnx-fp32", "openvino-f32"],
)
def test_seq_cls_onnx_reads_the_template(
    causal_dir: Path, seq_cls_dir: Path, tmp_path: Path, options: dict[str, Any]
) -> None:
    pytest.importorskip("onnxruntime")
    if options:
        pytest.importorskip("openvino")
    cache = tmp_path / "onnx"
    reranker = OnnxCrossEncoderReranker(str(seq_cls_dir), cache_dir=cache, **options)
    assert reranker.recipe is not None and reranker.recipe.kind == "seq-cls-template"
    want = card_scores(causal_dir, QUERY, TEXTS, CARD_INSTRUCTION)
    _assert_close(reranker.score(QUERY, TEXTS), want, 1e-5)
    assert _batch_dependence(reranker, TEXTS) <= 1e-5
    told = OnnxCrossEncoderReranker(
        str(seq_cls_dir), cache_dir=cache, instruction="find cities", **options
    )
    assert told.instruction == "find cities"
    _assert_close(
        told.score(QUERY, TEXTS), card_scores(causal_dir, QUERY, TEXTS, "find cities"), 1e-5
    )
    # a pre-exported folder of the same graph reads the template too
    folder = _pre_exported(seq_cls_dir, cache, tmp_path)
    pre = OnnxCrossEncoderReranker(str(folder), cache_dir=cache, **options)
    assert pre.pre_exported
    _assert_close(pre.score(QUERY, TEXTS), want, 1e-5)


@pytest_models
def test_seq_cls_int8_and_bf16_stay_in_band(
    causal_dir: Path, seq_cls_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    reranker = CrossEncoderReranker(
        str(seq_cls_dir), backend="onnx", quantize="int8", cache_dir=tmp_path / "onnx"
    )
    want = card_scores(causal_dir, QUERY, TEXTS, CARD_INSTRUCTION)
    got = reranker.score(QUERY, TEXTS)
    # measured here: int8 1.0e-3 (scores 0.013-0.025), bf16 3.7e-4; batch dependence 0
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 0.01
    assert _batch_dependence(reranker, TEXTS) <= 1e-5
    bf16 = OnnxCrossEncoderReranker(
        str(seq_cls_dir), backend="openvino", openvino_precision="bf16", cache_dir=tmp_path / "o"
    )
    got = bf16.score(QUERY, TEXTS)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 0.005
    assert _batch_dependence(bf16, TEXTS) <= 1e-5


@pytest_models
def test_seq_cls_truncation_cuts_only_the_document(seq_cls_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("sentence_transformers")
    from tokenizers import Tokenizer

    from rerank_kit._core.windows import make_windows

    reranker = OnnxCrossEncoderReranker(
        str(seq_cls_dir), cache_dir=tmp_path / "onnx", max_length=128
    )
    model = reranker._model
    encoded, cut = model._encode(QUERY, [LONG, "short"])
    assert cut == [True, False]
    assert len(encoded[0].ids) == 128
    tokenizer = Tokenizer.from_file(str(seq_cls_dir / "tokenizer.json"))
    suffix = tokenizer.encode(CARD_SUFFIX, add_special_tokens=False).ids
    head = tokenizer.encode(
        f"{CARD_PREFIX}<Instruct>: {CARD_INSTRUCTION}\n<Query>: {QUERY}\n<Document>:",
        add_special_tokens=False,
    ).ids
    assert encoded[0].ids[-len(suffix) :] == suffix  # the prompt's end is kept
    assert encoded[0].ids[: len(head)] == head  # and so are its start and the query
    # windows fit beside the prompt: none is cut again
    windows, _, split = make_windows([LONG], model.window_plan(QUERY))
    assert split == [True] and len(windows) > 1
    assert not any(model._encode(QUERY, windows)[1])
    windowed = OnnxCrossEncoderReranker(
        str(seq_cls_dir), cache_dir=tmp_path / "onnx", max_length=128, long_documents="max"
    )
    assert len(windowed.score(QUERY, [LONG])) == 1
    # torch (sentence-transformers: the rendered prompt cut, its suffix restored) cuts the same
    torch_ce = CrossEncoderReranker(str(seq_cls_dir), backend="torch", max_length=128)
    result = torch_ce._score_pairs(QUERY, [LONG, "short"])
    assert result.truncated == [True, False]
    _assert_close(result.scores, reranker.score(QUERY, [LONG, "short"]), 1e-5)
    torch_plan = torch_ce._window_plan(QUERY)
    assert torch_plan is not None
    torch_windows, _, _ = make_windows([LONG], torch_plan)
    assert not any(torch_ce._score_pairs(QUERY, torch_windows).truncated or [])


@pytest_models
def test_unknown_decoder_seq_cls_is_refused_then_registered(
    seq_cls_dir: Path, causal_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    folder = tmp_path / "tiny-judge-seq-cls"
    shutil.copytree(seq_cls_dir, folder)
    (folder / "chat_template.jinja").write_text(GENERIC_TEMPLATE)
    cache = tmp_path / "onnx"
    with pytest.raises(RerankError, match=r"Qwen3ForSequenceClassification.*register_recipe"):
        OnnxCrossEncoderReranker(str(folder), cache_dir=cache)
    with pytest.raises(RerankError, match="register_recipe"):
        CrossEncoderReranker(str(folder), backend="torch")
    assert not cache.exists() or not any(cache.iterdir())  # refused before any export
    qwen = next(r for r in list_recipes() if r.name == "qwen3-reranker-seq-cls")
    mine = Recipe(**{**qwen.__dict__, "name": "test-judge", "name_patterns": ("*tiny-judge*",)})
    register_recipe(mine)
    try:
        reranker = OnnxCrossEncoderReranker(str(folder), cache_dir=cache)
        assert reranker.recipe is mine
        want = card_scores(causal_dir, QUERY, TEXTS, CARD_INSTRUCTION)
        _assert_close(reranker.score(QUERY, TEXTS), want, 1e-5)
    finally:
        _unregister(mine.name)


@pytest_models
def test_unknown_causal_lm_is_refused_on_torch(causal_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    folder = tmp_path / "tiny-chat-lm"
    shutil.copytree(causal_dir, folder)
    (folder / "chat_template.jinja").write_text(GENERIC_TEMPLATE)
    with pytest.raises(RerankError, match=r"Qwen3ForCausalLM.*recipe.*register_recipe"):
        CrossEncoderReranker(str(folder), backend="torch")


@pytest_models
def test_instruction_for_a_plain_cross_encoder_is_refused(
    tiny_ce_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=rf"{tiny_ce_dir.name}.*takes no instruction"):
        CrossEncoderReranker(str(tiny_ce_dir), backend="torch", instruction="find code")
    with pytest.raises(ValueError, match="takes no instruction"):
        OnnxCrossEncoderReranker(str(tiny_ce_dir), cache_dir=tmp_path, instruction="find code")
    plain = OnnxCrossEncoderReranker(str(tiny_ce_dir), cache_dir=tmp_path)
    assert plain.instruction is None and plain.recipe is not None
    assert plain.recipe.name == "bert-cross-encoder"


# --------------------------------------------------------------------------- two-label heads

LABELS = {
    "named-first": {0: "relevant", 1: "not_relevant"},
    "default-names": {0: "LABEL_0", 1: "LABEL_1"},
}


@pytest.fixture(scope="session", params=sorted(LABELS))
def two_label_dir(
    request: pytest.FixtureRequest, tiny_ce_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, int]:
    import torch
    from transformers import AutoConfig, BertForSequenceClassification

    id2label = LABELS[request.param]
    config = AutoConfig.from_pretrained(tiny_ce_dir)
    config.num_labels = 2
    config.id2label = dict(id2label)
    config.label2id = {v: k for k, v in id2label.items()}
    config.initializer_range = 0.1
    torch.manual_seed(3)
    model = BertForSequenceClassification(config).eval()
    out = tmp_path_factory.mktemp("two-label") / f"tiny-two-label-{request.param}"
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (tiny_ce_dir / name).is_file():
            shutil.copy(tiny_ce_dir / name, out / name)
    relevant = 0 if request.param == "named-first" else 1
    return out, relevant


def two_label_reference(folder: Path, relevant: int) -> list[float]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = tokenizer([QUERY] * len(TEXTS), TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(model(**batch).logits, dim=-1)
    return probs[:, relevant].tolist()


@pytest_models
def test_two_label_heads_score_the_relevant_label(
    two_label_dir: tuple[Path, int], tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    folder, relevant = two_label_dir
    want = two_label_reference(folder, relevant)
    cache = tmp_path / "onnx"
    paths: dict[str, Any] = {
        "torch": CrossEncoderReranker(str(folder), backend="torch"),
        "onnx": CrossEncoderReranker(str(folder), backend="onnx", cache_dir=cache),
    }
    try:
        import openvino  # noqa: F401

        paths["openvino"] = CrossEncoderReranker(
            str(folder),
            backend="openvino",
            cache_dir=cache,
            model_kwargs={"openvino_precision": "f32"},
        )
    except ImportError:
        pass
    for name, reranker in paths.items():
        _assert_close(reranker.score(QUERY, TEXTS), want, 1e-5)
        assert _batch_dependence(reranker, TEXTS) <= 1e-5, name
    pre = OnnxCrossEncoderReranker(str(_pre_exported(folder, cache, tmp_path)), cache_dir=cache)
    assert pre.pre_exported
    _assert_close(pre.score(QUERY, TEXTS), want, 1e-5)
    # measured here: int8 1.6e-3, OpenVINO bf16 7.2e-4 (both label namings); batch dependence 0
    bands: dict[str, tuple[dict[str, Any], float]] = {"int8": ({"quantize": "int8"}, 0.01)}
    if "openvino" in paths:
        bands["bf16"] = ({"backend": "openvino", "openvino_precision": "bf16"}, 0.005)
    for name, (options, band) in bands.items():
        reranker = OnnxCrossEncoderReranker(str(folder), cache_dir=cache, **options)
        got = reranker.score(QUERY, TEXTS)
        assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= band, name
        assert _batch_dependence(reranker, TEXTS) <= 1e-5, name


@pytest_models
def test_three_label_heads_are_still_refused(tiny_ce_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoConfig, BertForSequenceClassification

    config = AutoConfig.from_pretrained(tiny_ce_dir)
    config.num_labels = 3
    folder = tmp_path / "three"
    BertForSequenceClassification(config).save_pretrained(folder)
    shutil.copy(tiny_ce_dir / "tokenizer.json", folder / "tokenizer.json")
    shutil.copy(tiny_ce_dir / "tokenizer_config.json", folder / "tokenizer_config.json")
    with pytest.raises(ValueError, match="3 output labels"):
        OnnxCrossEncoderReranker(str(folder), cache_dir=tmp_path / "onnx")


@pytest_models
def test_a_long_query_after_a_normal_call_scores(tiny_ce_dir: Path, tmp_path: Path) -> None:
    """The tokenizer's truncation from one call never carries into the next (issue 29)."""
    pytest.importorskip("onnxruntime")
    reranker = OnnxCrossEncoderReranker(str(tiny_ce_dir), cache_dir=tmp_path)
    reranker.score(QUERY, TEXTS)
    long_query = " ".join(["what is the capital of france"] * 120)  # > 510 tokens
    scores = reranker.score(long_query, ["paris", "berlin"])
    assert len(scores) == 2
    assert reranker._model.window_plan(long_query).budget < 0


@pytest_models
def test_a_published_conversion_with_a_plain_chat_template_scores_as_the_card(
    causal_dir: Path, seq_cls_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Hub seq-cls conversions keep Qwen3's chat template, which drops query/document roles."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("onnxruntime")
    folder = tmp_path / "Qwen3-Reranker-0.6B-seq-cls"
    shutil.copytree(seq_cls_dir, folder)
    (folder / "chat_template.jinja").write_text(CHAT_ROLES_TEMPLATE)
    want = card_scores(causal_dir, QUERY, TEXTS, "find cities")
    with caplog.at_level("WARNING"):
        for reranker in (
            CrossEncoderReranker(str(folder), backend="torch", instruction="find cities"),
            OnnxCrossEncoderReranker(str(folder), cache_dir=tmp_path, instruction="find cities"),
        ):
            _assert_close(reranker.score(QUERY, TEXTS), want, 1e-5)
    assert not [r for r in caplog.records if "chat template" in r.getMessage()]


@pytest_models
def test_a_chat_template_that_differs_from_the_recipe_is_warned(
    seq_cls_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every backend renders the recipe; a folder template that says otherwise is said once."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("jinja2")
    pytest.importorskip("sentence_transformers")
    cache = tmp_path / "onnx"
    with caplog.at_level("WARNING"):
        OnnxCrossEncoderReranker(str(seq_cls_dir), cache_dir=cache)
    assert not [r for r in caplog.records if "chat template" in r.getMessage()]
    folder = tmp_path / "tiny-qwen3-reranker-seq-cls-edited"
    shutil.copytree(seq_cls_dir, folder)
    template = (folder / "chat_template.jinja").read_text()
    (folder / "chat_template.jinja").write_text(template.replace("Given a web", "Given any web"))
    with caplog.at_level("WARNING"):
        onnx = OnnxCrossEncoderReranker(str(folder), cache_dir=cache)
        torch_ce = CrossEncoderReranker(str(folder), backend="torch")
    said = [r.getMessage() for r in caplog.records if "chat template" in r.getMessage()]
    assert len(said) == 2  # once per reranker
    assert "qwen3-reranker-seq-cls" in said[0] and "Given any web" in said[0]
    # both follow the recipe, so they agree with each other
    _assert_close(torch_ce.score(QUERY, TEXTS), onnx.score(QUERY, TEXTS), 1e-5)


@pytest_models
def test_template_encoder_cuts_the_side_the_recipe_names(seq_cls_dir: Path) -> None:
    from dataclasses import replace

    from tokenizers import Tokenizer

    from rerank_kit._runtime.templated import TemplateEncoder

    tokenizer = Tokenizer.from_file(str(seq_cls_dir / "tokenizer.json"))
    qwen = next(r for r in list_recipes() if r.name == "qwen3-reranker-seq-cls")
    document = "first words here " + " ".join(["paris"] * 200) + " last words there"
    whole = tokenizer.encode(render(qwen, QUERY, document), add_special_tokens=False).ids
    suffix = tokenizer.encode(CARD_SUFFIX, add_special_tokens=False).ids
    start = f"{CARD_PREFIX}<Instruct>: {CARD_INSTRUCTION}\n<Query>: {QUERY}\n<Document>:"
    head = tokenizer.encode(start, add_special_tokens=False).ids[:-1]  # clear of the seam
    for side, kept, gone in (
        ("right", "first words", "last words"),
        ("left", "last words", "first words"),
    ):
        encoder = TemplateEncoder(tokenizer, replace(qwen, truncation_side=side), CARD_INSTRUCTION)
        (encoded,), (cut,) = encoder.encode(QUERY, [document], max_length=120)
        ids = encoded.ids
        assert cut and len(ids) == 120 < len(whole)
        assert ids[: len(head)] == head and ids[-len(suffix) :] == suffix  # the prompt stays
        text = tokenizer.decode(ids)
        assert kept in text and gone not in text
    (encoded,), (cut,) = TemplateEncoder(tokenizer, qwen, None).encode(QUERY, ["short"], 120)
    assert not cut
    assert (
        encoded.ids == tokenizer.encode(render(qwen, QUERY, "short"), add_special_tokens=False).ids
    )
