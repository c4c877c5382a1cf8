"""Generative (causal-LM) rerankers scored as each model card's own code scores them (issue 29).

Three tiny random-weight causal LMs, built once per session: a Qwen3 with Qwen3-Reranker's chat
template, a Qwen2 without a sentence-transformers config (mxbai-rerank-v2's layout) and a Gemma
with a BOS token (bge-reranker-v2-gemma's). Each is compared with a reference written here from
its family's published code with plain transformers (no rerank-kit code): the Qwen3-Reranker
model card, mixedbread-ai/mxbai-rerank ``mxbai_rerank_v2.py`` and FlagEmbedding's
``decoder_only/base.py``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")

from conftest import TRAIN_TEXTS

from rerank_kit import CrossEncoderReranker, RerankError, load_reranker
from rerank_kit._core.windows import make_windows
from rerank_kit.recipes import Recipe, _unregister, register_recipe

pytestmark = [
    pytest.mark.models,
    # the references pad as the families' code does (FlagEmbedding filters this warning too)
    pytest.mark.filterwarnings("ignore:`max_length` is ignored when `padding`=`True`"),
]

QUERY = "what is the capital of france"
TEXTS = [
    "paris is the capital of france",
    "berlin is the capital of germany",
    "the quick brown fox jumps over the lazy dog",
    "rerankers score a query and a passage together",
    "Zürich, Kraków, São Paulo, 東京 and Москва are cities",
]
LONG = " ".join(["the capital of france is paris and berlin is in germany"] * 30)
INSTRUCTION = "Given a question about a city, find the passage that names its country"

# Qwen3-Reranker model card (https://huggingface.co/Qwen/Qwen3-Reranker-0.6B)
QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
    'the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
# mixedbread-ai/mxbai-rerank, mxbai_rerank/mxbai_rerank_v2.py (MxbaiRerankV2)
MXBAI_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. "
    "For each query-document pair, carefully analyze the semantic relationship between them, "
    "then provide your binary relevance judgment (0 for not relevant, 1 for relevant).\n"
    "Relevance:"
)
MXBAI_PREFIX = (
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\n<|im_start|>user\n"
)
MXBAI_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"
# FlagOpen/FlagEmbedding, FlagEmbedding/inference/reranker/decoder_only/base.py
BGE_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the "
    "query by providing a prediction of either 'Yes' or 'No'."
)

Reference = tuple[list[float], list[bool], list[int]]  # scores, cut, prompt lengths


@functools.lru_cache(maxsize=8)
def _load(folder: str, padding_side: str | None = None) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"padding_side": padding_side} if padding_side else {}
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return tokenizer, model


def prepare_for_model(first: list[int], second: list[int], max_length: int) -> list[int]:
    """``tokenizer.prepare_for_model(first, second, truncation="only_second", max_length=...,
    add_special_tokens=False)`` as transformers 4 ran it (transformers 5 dropped the method from
    fast tokenizers): the end of the second sequence is cut so that both fit."""
    over = len(first) + len(second) - max_length
    if over > 0:
        assert over < len(second), "transformers 4 refuses to cut more than the second holds"
        second = second[: len(second) - over]
    return first + second


def qwen3_card(
    folder: Path, query: str, texts: list[str], instruction: str | None, max_length: int
) -> Reference:
    """The Qwen3-Reranker card's format_instruction / process_inputs / compute_logits."""
    import torch

    tokenizer, model = _load(str(folder), "left")
    if instruction is None:
        instruction = QWEN3_INSTRUCTION
    prefix = tokenizer.encode(QWEN3_PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(QWEN3_SUFFIX, add_special_tokens=False)
    pairs = [f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {t}" for t in texts]
    inputs = tokenizer(
        pairs,
        padding=False,
        truncation="longest_first",
        return_attention_mask=False,
        max_length=max_length - len(prefix) - len(suffix),
    )
    whole = tokenizer(pairs, padding=False, return_attention_mask=False)["input_ids"]
    cut = [len(a) < len(b) for a, b in zip(inputs["input_ids"], whole, strict=True)]
    for i, ele in enumerate(inputs["input_ids"]):
        inputs["input_ids"][i] = prefix + ele + suffix
    lengths = [len(ids) for ids in inputs["input_ids"]]
    inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    with torch.no_grad():
        batch_scores = model(**inputs).logits[:, -1, :]
    pair = torch.stack([batch_scores[:, no], batch_scores[:, yes]], dim=1)
    scores = torch.nn.functional.log_softmax(pair, dim=1)[:, 1].exp().tolist()
    return scores, cut, lengths


def mxbai_v2(
    folder: Path, query: str, texts: list[str], instruction: str | None, max_length: int
) -> Reference:
    """MxbaiRerankV2.prepare_inputs / forward (its own max_length leaves the template out)."""
    import torch

    tokenizer, model = _load(str(folder))
    tokenizer.padding_side = "left"

    def ids(x: str) -> list[int]:
        return tokenizer(x, return_tensors=None, add_special_tokens=False)["input_ids"]

    yes, no = ids("1")[0], ids("0")[0]
    task, sep, prefix, suffix = ids(MXBAI_TASK), ids("\n"), ids(MXBAI_PREFIX), ids(MXBAI_SUFFIX)
    predefined = len(prefix) + len(task) + len(suffix) + len(sep)
    model_max = tokenizer.model_max_length
    if max_length + predefined > model_max:
        max_length = model_max - predefined
    instruction_prompt = f"instruction: {instruction}" if instruction else None
    items, cut = [], []
    for document in texts:
        query_prompt = f"query: {query}"
        if instruction_prompt:
            query_prompt = "".join([instruction_prompt, "\n", query_prompt])
        query_inputs = tokenizer(
            query_prompt,
            return_tensors=None,
            add_special_tokens=False,
            max_length=max_length * 3 // 4,
            truncation=True,
        )
        doc_maxlen = min(model_max - len(query_inputs["input_ids"]) - predefined, max_length)
        document_inputs = tokenizer(
            f"document: {document}",
            return_tensors=None,
            add_special_tokens=False,
            max_length=doc_maxlen,
            truncation=True,
        )
        pair = prepare_for_model(
            query_inputs["input_ids"], sep + document_inputs["input_ids"], max_length
        )
        item = {"input_ids": prefix + pair + sep + task + suffix}
        item["attention_mask"] = [1] * len(item["input_ids"])
        items.append(item)
        whole = len(ids(query_prompt)) + len(sep) + len(ids(f"document: {document}"))
        cut.append(len(item["input_ids"]) < whole + predefined)
    lengths = [len(item["input_ids"]) for item in items]
    inputs = tokenizer.pad(items, padding="longest", pad_to_multiple_of=8, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    scores = logits.logits[:, -1, yes] - logits.logits[:, -1, no]
    return scores.tolist(), cut, lengths


def bge_gemma(
    folder: Path, query: str, texts: list[str], instruction: str | None, max_length: int
) -> Reference:
    """BaseLLMReranker.compute_score_single_gpu (query "A: ", passage "B: ", prompt last)."""
    import torch

    tokenizer, model = _load(str(folder))
    yes_loc = tokenizer("Yes", add_special_tokens=False)["input_ids"][0]
    pairs = [("A: " + query, "B: " + t) for t in texts]  # get_detailed_inputs
    query_max_length = max_length * 3 // 4
    queries = tokenizer(
        [p[0] for p in pairs],
        return_tensors=None,
        add_special_tokens=False,
        max_length=query_max_length,
        truncation=True,
    )["input_ids"]
    passages = tokenizer(
        [p[1] for p in pairs],
        return_tensors=None,
        add_special_tokens=False,
        max_length=max_length,
        truncation=True,
    )["input_ids"]
    prompt = BGE_PROMPT if instruction is None else instruction
    prompt_inputs = tokenizer(prompt, return_tensors=None, add_special_tokens=False)["input_ids"]
    sep_inputs = tokenizer("\n", return_tensors=None, add_special_tokens=False)["input_ids"]
    encode_max_length = max_length + len(sep_inputs) + len(prompt_inputs)
    bos = tokenizer.bos_token_id
    assert bos is not None and bos != tokenizer.pad_token_id
    items, cut = [], []
    for (q_text, p_text), q_ids, p_ids in zip(pairs, queries, passages, strict=True):
        pair = prepare_for_model([bos, *q_ids], sep_inputs + p_ids, encode_max_length)
        item = {"input_ids": pair + sep_inputs + prompt_inputs}
        item["attention_mask"] = [1] * len(item["input_ids"])
        items.append(item)
        whole = 1 + len(tokenizer(q_text, add_special_tokens=False)["input_ids"])
        whole += 2 * len(sep_inputs) + len(prompt_inputs)
        whole += len(tokenizer(p_text, add_special_tokens=False)["input_ids"])
        cut.append(len(item["input_ids"]) < whole)
    lengths = [len(item["input_ids"]) for item in items]
    batch = tokenizer.pad(
        items, padding=True, max_length=encode_max_length, pad_to_multiple_of=8, return_tensors="pt"
    )
    with torch.no_grad():
        logits = model(**batch, output_hidden_states=True).logits
    mask = batch["attention_mask"]
    if bool(mask[:, -1].sum() == mask.shape[0]):  # last_logit_pool
        last = logits[:, -1, :]
    else:
        ends = mask.sum(dim=1) - 1
        last = torch.stack([logits[i, ends[i], :] for i in range(logits.shape[0])], dim=0)
    return last[:, yes_loc].tolist(), cut, lengths


def _mxbai_overhead(folder: Path) -> int:
    tokenizer, _ = _load(str(folder))
    pieces = (MXBAI_PREFIX, MXBAI_TASK, MXBAI_SUFFIX, "\n")
    return sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in pieces)


def _bge_overhead(folder: Path, instruction: str | None) -> int:
    tokenizer, _ = _load(str(folder))
    prompt = BGE_PROMPT if instruction is None else instruction
    # FlagEmbedding caps [bos]+query+sep+passage at max_length + sep + prompt, then adds both
    pieces = ("\n", prompt)
    return 2 * sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in pieces)


@pytest.fixture(scope="session")
def mxbai_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank_kit.testing import make_qwen2_reranker

    folder = tmp_path_factory.mktemp("decoders") / "tiny-mxbai-rerank-base-v2"
    return make_qwen2_reranker(folder, TRAIN_TEXTS * 3)


@pytest.fixture(scope="session")
def gemma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank_kit.testing import make_gemma_reranker

    folder = tmp_path_factory.mktemp("decoders") / "tiny-bge-reranker-v2-gemma"
    return make_gemma_reranker(folder, TRAIN_TEXTS * 3)


# family -> (fixture, reference, the family's own max_length for rerank-kit's, recipe, default)
FAMILIES: dict[str, tuple[str, Callable[..., Reference], Callable[..., int], str, int]] = {
    "qwen3": ("tiny_causal_reranker_dir", qwen3_card, lambda f, n, i: n, "qwen3-reranker", 8192),
    "mxbai-v2": (
        "mxbai_dir",
        mxbai_v2,
        lambda f, n, i: n - _mxbai_overhead(f),
        "mxbai-rerank-v2",
        8192,
    ),
    "bge-gemma": (
        "gemma_dir",
        bge_gemma,
        lambda f, n, i: n - _bge_overhead(f, i),
        "bge-reranker-v2-gemma",
        512,
    ),
}


@pytest.fixture(params=sorted(FAMILIES))
def family(request: pytest.FixtureRequest) -> tuple[str, Path]:
    return request.param, request.getfixturevalue(FAMILIES[request.param][0])


@functools.lru_cache(maxsize=16)
def _reranker(folder: str, **kwargs: Any) -> CrossEncoderReranker:
    return CrossEncoderReranker(folder, **kwargs)


def _reference(
    name: str, folder: Path, texts: list[str], instruction: str | None, max_length: int | None
) -> Reference:
    _, reference, own, _, default = FAMILIES[name]
    limit = default if max_length is None else own(folder, max_length, instruction)
    return reference(folder, QUERY, texts, instruction, limit)


def _order(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def test_scores_are_the_model_card_scores(family: tuple[str, Path]) -> None:
    name, folder = family
    reranker = _reranker(str(folder))
    assert reranker.generative and reranker.recipe is not None
    assert reranker.recipe.name == FAMILIES[name][3]
    expected, cut, _ = _reference(name, folder, TEXTS, None, None)
    got = reranker._scored(QUERY, TEXTS)
    assert got.scores == pytest.approx(expected, abs=1e-5)
    assert _order(got.scores) == _order(expected)
    assert max(expected) - min(expected) > 1e-3  # random weights still separate the pairs
    assert got.truncated == cut == [False] * len(TEXTS)
    by_spec = load_reranker(f"cross-encoder:{folder}")  # what the CLI builds
    assert by_spec.score(QUERY, TEXTS[:2]) == pytest.approx(expected[:2], abs=1e-5)


def test_cut_pairs_are_cut_as_the_family_cuts_them(family: tuple[str, Path]) -> None:
    name, folder = family
    limit = 300
    reranker = _reranker(str(folder), max_length=limit)
    texts = [TEXTS[0], LONG, LONG[:700], TEXTS[1]]
    expected, cut, lengths = _reference(name, folder, texts, None, limit)
    got = reranker._scored(QUERY, texts)
    assert got.scores == pytest.approx(expected, abs=1e-5)
    assert got.truncated == cut
    assert cut[1] and not cut[0] and not cut[3]
    assert max(lengths) <= limit
    flags = {r.index: r.truncated for r in reranker.rerank(QUERY, texts)}
    assert [flags[i] for i in range(len(texts))] == cut


def test_instruction_reaches_the_prompt_and_the_score(family: tuple[str, Path]) -> None:
    name, folder = family
    default = _reranker(str(folder))
    instructed = _reranker(str(folder), instruction=INSTRUCTION)
    assert instructed.instruction == INSTRUCTION
    assert default.instruction == default.recipe.default_instruction  # type: ignore[union-attr]
    expected, _, _ = _reference(name, folder, TEXTS, INSTRUCTION, None)
    got = instructed.score(QUERY, TEXTS)
    assert got == pytest.approx(expected, abs=1e-5)
    assert max(abs(a - b) for a, b in zip(got, default.score(QUERY, TEXTS), strict=True)) > 1e-4
    ids = instructed.model.encode(QUERY, TEXTS[:1])[0].ids
    assert INSTRUCTION in instructed.model.tokenizer.decode(ids)


def test_scores_do_not_depend_on_the_batch(family: tuple[str, Path]) -> None:
    _, folder = family
    texts = [*TEXTS, LONG[:400], "yes", "paris"]
    together = _reranker(str(folder)).score(QUERY, texts)
    small = _reranker(str(folder), batch_size=3)
    alone = [small.score(QUERY, [t])[0] for t in texts]
    shuffled = small.score(QUERY, texts[::-1])[::-1]
    assert max(abs(a - b) for a, b in zip(alone, together, strict=True)) <= 1e-5
    assert max(abs(a - b) for a, b in zip(shuffled, together, strict=True)) <= 1e-5


def test_long_document_windows_fit_beside_the_prompt(family: tuple[str, Path]) -> None:
    name, folder = family
    limit = 256
    reranker = _reranker(str(folder), max_length=limit, long_documents="max")
    got = reranker._scored(QUERY, [LONG, TEXTS[0]])
    assert got.truncated == [False, False]  # every window fitted, prompt included
    plan = reranker._window_plan(QUERY)
    assert plan is not None
    windows, owner, split = make_windows([LONG, TEXTS[0]], plan)
    assert split == [True, False] and owner.count(0) > 1
    scores, cut, lengths = _reference(name, folder, windows, None, limit)
    assert not any(cut) and max(lengths) <= limit
    # most of the room is used: a window is not needlessly small
    assert max(lengths[i] for i, o in enumerate(owner) if o == 0) > limit - 40
    best = max(s for s, o in zip(scores, owner, strict=True) if o == 0)
    assert got.scores[0] == pytest.approx(best, abs=1e-5)


def test_async_path_equals_sync(family: tuple[str, Path]) -> None:
    _, folder = family
    reranker = _reranker(str(folder))
    sync = reranker.rerank(QUERY, TEXTS, top_n=3)
    async_ = asyncio.run(reranker.arerank(QUERY, TEXTS, top_n=3))
    assert [r.index for r in async_] == [r.index for r in sync]
    assert [r.score for r in async_] == pytest.approx([r.score for r in sync], abs=1e-6)


GENERIC_TEMPLATES = {  # what Hub folders carry: the base model's chat template, not the prompt
    "qwen3": (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{{ message['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "bge-gemma": (
        "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n"
        "{{ message['content'] }}<end_of_turn>\n{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    ),
}


@pytest.mark.parametrize(
    ("name", "hub_name"),
    [("qwen3", "Qwen3-Reranker-0.6B"), ("bge-gemma", "bge-reranker-v2-gemma")],
)
def test_hub_folders_with_their_base_chat_template(
    name: str, hub_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Named like the Hub folders, with the base model's chat template (which
    sentence-transformers renders instead of the card's prompt: here scores 0.88-0.94 and a
    constant 0.5): the recipe, matched by name, renders the card's prompt."""
    source = request.getfixturevalue(FAMILIES[name][0])
    folder = Path(shutil.copytree(source, tmp_path / hub_name))
    (folder / "chat_template.jinja").write_text(GENERIC_TEMPLATES[name])
    reranker = CrossEncoderReranker(str(folder))
    assert reranker.recipe is not None and reranker.recipe.name == FAMILIES[name][3]
    expected, _, _ = _reference(name, source, TEXTS, None, None)
    assert reranker.score(QUERY, TEXTS) == pytest.approx(expected, abs=1e-5)


@pytest.fixture()
def unknown_dir(mxbai_dir: Path, tmp_path: Path) -> Path:
    """A Qwen2 causal LM no recipe names (and no sentence-transformers config)."""
    return Path(shutil.copytree(mxbai_dir, tmp_path / "tiny-qwen2-decoder"))


def test_an_unknown_decoder_is_refused(unknown_dir: Path) -> None:
    for build in (
        lambda: CrossEncoderReranker(str(unknown_dir)),
        lambda: load_reranker(f"cross-encoder:{unknown_dir}"),
    ):
        with pytest.raises(RerankError) as info:
            build()
        message = str(info.value)
        assert str(unknown_dir) in message and "Qwen2ForCausalLM" in message
        assert "yes/no tokens" in message and "template" in message
        assert "rerank_kit.register_recipe(" in message


def test_a_declared_logit_score_folder_keeps_sentence_transformers(
    unknown_dir: Path, tmp_path: Path
) -> None:
    from sentence_transformers import CrossEncoder

    declared = tmp_path / "tiny-declared-decoder"
    CrossEncoder(str(unknown_dir)).save_pretrained(str(declared))
    head = declared / "1_LogitScore" / "config.json"
    config = json.loads(head.read_text())
    tokenizer, _ = _load(str(unknown_dir))
    config["true_token_id"] = tokenizer.convert_tokens_to_ids("1")  # the authors' declaration
    config["false_token_id"] = tokenizer.convert_tokens_to_ids("0")
    head.write_text(json.dumps(config))
    reranker = CrossEncoderReranker(str(declared))
    assert reranker.generative and reranker.recipe is None
    direct = CrossEncoder(str(declared)).predict([(QUERY, t) for t in TEXTS])
    expected = [float(x) for x in direct]
    assert reranker.score(QUERY, TEXTS) == pytest.approx(expected, abs=1e-6)
    assert max(expected) - min(expected) > 1e-3
    with pytest.raises(ValueError, match="takes no instruction"):
        CrossEncoderReranker(str(declared), instruction="find the capital")


def test_a_registered_recipe_scores_a_new_decoder(unknown_dir: Path) -> None:
    import torch

    recipe = Recipe(
        name="test-tiny-qwen2-decoder",
        kind="yes-no",
        architectures=("Qwen2ForCausalLM",),
        name_patterns=("*tiny-qwen2-decoder*",),
        query_format="Q: {query}",
        separator="\n",
        document_format="D: {document}",
        suffix="\nRelevant:",
        yes_token="1",
        no_token="0",
        activation="sigmoid-yes-minus-no",
    )
    register_recipe(recipe)
    try:
        reranker = CrossEncoderReranker(str(unknown_dir))
        assert reranker.recipe == recipe and reranker.instruction is None
        tokenizer, model = _load(str(unknown_dir))
        got = reranker.score(QUERY, TEXTS)
        for text, score in zip(TEXTS, got, strict=True):
            ids = tokenizer(f"Q: {QUERY}\nD: {text}\nRelevant:", add_special_tokens=False)
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids["input_ids"]])).logits[0, -1]
            one, zero = tokenizer.convert_tokens_to_ids("1"), tokenizer.convert_tokens_to_ids("0")
            assert score == pytest.approx(
                float(torch.sigmoid(logits[one] - logits[zero])), abs=1e-5
            )
        with pytest.raises(ValueError, match="takes no instruction"):
            CrossEncoderReranker(str(unknown_dir), instruction="find the capital")
    finally:
        _unregister(recipe.name)


def test_an_answer_token_the_tokenizer_splits_is_refused(unknown_dir: Path) -> None:
    recipe = Recipe(
        name="test-tiny-qwen2-split-answer",
        kind="yes-no",
        architectures=("Qwen2ForCausalLM",),
        name_patterns=("*tiny-qwen2-decoder*",),
        yes_token="Zürichabsolutely",
        activation="yes-logit",
    )
    register_recipe(recipe)
    try:
        with pytest.raises(RerankError, match=r"'Zürichabsolutely' .*not one token"):
            CrossEncoderReranker(str(unknown_dir))
    finally:
        _unregister(recipe.name)


def test_a_hub_id_to_download_is_matched_from_its_files(
    mxbai_dir: Path, tiny_ce_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Online, a Hub id that is not cached: only config.json decides, then a causal LM's files
    come down so its recipe matches (the network is replaced by the tiny folders)."""
    import huggingface_hub

    from rerank_kit._rerankers import cross_encoder

    repos = {"mixedbread-ai/mxbai-rerank-base-v2": mxbai_dir, "org/tiny-ce": tiny_ce_dir}
    fetched: list[tuple[str, Any]] = []

    def hf_hub_download(repo_id: str, filename: str, **_: Any) -> str:
        return str(repos[repo_id] / filename)

    def snapshot_download(repo_id: str, allow_patterns: Any = None, **_: Any) -> str:
        fetched.append((repo_id, allow_patterns))
        return str(repos[repo_id])

    monkeypatch.setattr(cross_encoder, "resolve_hf_model", lambda model, **_: model)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    reranker = CrossEncoderReranker("mixedbread-ai/mxbai-rerank-base-v2")
    assert reranker.recipe is not None and reranker.recipe.name == "mxbai-rerank-v2"
    assert fetched and "*.safetensors" in fetched[0][1] and "*.onnx" not in fetched[0][1]
    expected, _, _ = _reference("mxbai-v2", mxbai_dir, TEXTS, None, None)
    assert reranker.score(QUERY, TEXTS) == pytest.approx(expected, abs=1e-5)
    from rerank_kit._runtime.decoder import hub_decoder_folder

    assert hub_decoder_folder("org/tiny-ce") is None  # an encoder: left to sentence-transformers
    assert hub_decoder_folder("org/missing") is None  # a Hub error: sentence-transformers decides
    assert len(fetched) == 1


def test_bad_generative_settings_are_refused_by_name(mxbai_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"max_length=4096 is more than .* \(512 positions\)"):
        CrossEncoderReranker(str(mxbai_dir), max_length=4096)
    with pytest.raises(ValueError, match="leaves no room for the query and passage"):
        CrossEncoderReranker(str(mxbai_dir), max_length=40)  # the prompt alone is longer
    with pytest.raises(ValueError, match=r"\['activation_fn'\] are not understood"):
        CrossEncoderReranker(str(mxbai_dir), model_kwargs={"activation_fn": None})
    # CrossEncoder's spelling of the limit is understood too
    spelled = CrossEncoderReranker(str(mxbai_dir), model_kwargs={"max_length": 300})
    assert spelled.model.max_seq_length == 300


def test_mxbai_v2_cache_keys_never_meet_the_old_guessed_head(
    mxbai_dir: Path,
) -> None:
    """Older versions scored mxbai-v2 folders with sentence-transformers' default head and kept
    those scores under ``cross-encoder:NAME``: the recipe's scores are keyed apart from them."""
    from rerank_kit import CrossEncoderReranker, ScoreCache

    cache = ScoreCache(10)
    reranker = CrossEncoderReranker(str(mxbai_dir), backend="torch", score_cache=cache)
    identity = reranker._score_identity()
    assert identity.startswith(f"cross-encoder:{mxbai_dir}") and "[scores=recipe-" in identity
    stale = "cross-encoder:" + str(mxbai_dir)
    cache.put(stale, "q", ["a passage"], [123.0], [False])  # what an older version left in the file
    assert reranker.score("q", ["a passage"])[0] != 123.0


def test_usage_counts_the_prompt_tokens_the_model_read(family: tuple[str, Path]) -> None:
    """``Usage.tokens`` of a causal-LM reranker: every prompt's tokens, as the model read them."""
    _, folder = family
    reranker = _reranker(str(folder))
    out = reranker.rerank(QUERY, TEXTS)
    decoder: Any = reranker._decoder  # the causal-LM runtime of this reranker
    read = sum(len(e.ids) for e in decoder.encode(QUERY, TEXTS))
    assert out.usage.tokens == read > len(TEXTS)
    assert out.usage.pairs == len(TEXTS)
