"""Generative (causal-LM) cross-encoders through CrossEncoderReranker, on a tiny local Qwen3 model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sentence_transformers")

from rerank_kit import CrossEncoderReranker, RerankError, load_reranker

pytestmark = pytest.mark.models

QUERY = "what is the capital of france"
TEXTS = [
    "paris is the capital of france",
    "berlin is the capital of germany",
    "the quick brown fox jumps over the lazy dog",
    "rerankers score a query and a passage together",
    "yes",
]
LONG = " ".join(["the capital of france is paris and berlin is in germany"] * 40)

# Qwen3-Reranker's model card recipe, verbatim in substance (prefix, instruction, suffix).
PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
    'the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


def model_card_scores(folder: Path, query: str, texts: list[str]) -> list[float]:
    """Qwen3-Reranker's documented score, computed with transformers alone (no sentence-transformers)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    prefix = tokenizer.encode(PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(SUFFIX, add_special_tokens=False)
    bodies = [f"<Instruct>: {INSTRUCTION}\n<Query>: {query}\n<Document>: {t}" for t in texts]
    encoded = tokenizer(bodies, padding=False, truncation=False, return_attention_mask=False)
    batch = {"input_ids": [prefix + ids + suffix for ids in encoded["input_ids"]]}
    inputs = tokenizer.pad(batch, padding=True, return_tensors="pt")
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    with torch.no_grad():
        logits = model(**inputs).logits[:, -1, :]
    pair = torch.stack([logits[:, no], logits[:, yes]], dim=1)
    return torch.nn.functional.log_softmax(pair, dim=1)[:, 1].exp().tolist()


@pytest.fixture(scope="module")
def generative(tiny_causal_reranker_dir: Path) -> CrossEncoderReranker:
    return CrossEncoderReranker(str(tiny_causal_reranker_dir))


def test_loads_as_generative_reranker(
    generative: CrossEncoderReranker, tiny_causal_reranker_dir: Path
) -> None:
    assert generative.generative
    assert generative.model.num_labels == 1
    # scored by its recipe (issue 29), not by the head sentence-transformers would guess
    assert generative.recipe is not None and generative.recipe.name == "qwen3-reranker"
    by_spec = load_reranker(f"cross-encoder:{tiny_causal_reranker_dir}")  # what the CLI builds
    assert isinstance(by_spec, CrossEncoderReranker) and by_spec.generative
    assert by_spec.score(QUERY, TEXTS[:2]) == pytest.approx(generative.score(QUERY, TEXTS[:2]))


def test_parity_with_cross_encoder_predict(
    generative: CrossEncoderReranker, tiny_causal_reranker_dir: Path
) -> None:
    from sentence_transformers import CrossEncoder

    direct = CrossEncoder(str(tiny_causal_reranker_dir), device="cpu")
    expected = direct.predict([(QUERY, t) for t in TEXTS], show_progress_bar=False)
    got = generative.score(QUERY, TEXTS)
    assert got == pytest.approx([float(x) for x in expected], abs=1e-6)
    assert all(isinstance(s, float) and 0.0 < s < 1.0 for s in got)
    ranked = generative.rerank(QUERY, TEXTS, top_n=3)
    assert [r.index for r in ranked] == sorted(range(5), key=lambda i: -got[i])[:3]


def test_scores_are_the_model_card_probability(
    generative: CrossEncoderReranker, tiny_causal_reranker_dir: Path
) -> None:
    expected = model_card_scores(tiny_causal_reranker_dir, QUERY, TEXTS)
    assert generative.score(QUERY, TEXTS) == pytest.approx(expected, abs=1e-5)
    # random weights still separate the pairs: the comparison is not between constants
    assert max(expected) - min(expected) > 1e-3


def test_same_prompt_tokens_as_the_model_card(generative: CrossEncoderReranker) -> None:
    ids = generative.model.encode(QUERY, [TEXTS[0]])[0].ids  # the recipe's prompt (issue 29)
    rendered = generative.model.tokenizer.decode(ids)
    body = f"<Instruct>: {INSTRUCTION}\n<Query>: {QUERY}\n<Document>: {TEXTS[0]}"
    assert rendered == PREFIX + body + SUFFIX


def test_truncation_flags_count_the_whole_prompt(tiny_causal_reranker_dir: Path) -> None:
    from sentence_transformers import CrossEncoder

    limit = 140
    reranker = CrossEncoderReranker(str(tiny_causal_reranker_dir), max_length=limit)
    texts = ["paris", LONG, "berlin is the capital of germany", LONG[:300]]
    got = reranker._scored(QUERY, texts)
    scores, flags = got.scores, got.truncated
    tokenizer = reranker.model.tokenizer
    lengths = []
    for t in texts:
        messages = [{"role": "query", "content": QUERY}, {"role": "document", "content": t}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False)
        lengths.append(len(tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"]))
    assert flags == [n > limit for n in lengths]
    assert flags[1] and not flags[0] and not flags[2]
    assert [
        r.truncated for r in sorted(reranker.rerank(QUERY, texts), key=lambda r: r.index)
    ] == flags
    # the cut pair is still scored as CrossEncoder scores it (suffix restored after the cut)
    direct = CrossEncoder(str(tiny_causal_reranker_dir), device="cpu", max_length=limit)
    expected = direct.predict([(QUERY, t) for t in texts], show_progress_bar=False)
    assert scores == pytest.approx([float(x) for x in expected], abs=1e-6)


def test_trust_remote_code_is_passed_explicitly(tiny_causal_reranker_dir: Path) -> None:
    default = CrossEncoderReranker(str(tiny_causal_reranker_dir))
    assert default.model.trust_remote_code is False
    trusted = CrossEncoderReranker(str(tiny_causal_reranker_dir), trust_remote_code=True)
    assert trusted.model.trust_remote_code is True
    with pytest.raises(ValueError, match="given twice"):
        CrossEncoderReranker(
            str(tiny_causal_reranker_dir),
            trust_remote_code=True,
            model_kwargs={"trust_remote_code": False},
        )
    with pytest.raises(TypeError, match="True or False"):
        CrossEncoderReranker(str(tiny_causal_reranker_dir), trust_remote_code="yes")  # type: ignore[arg-type]


def test_onnx_backend_refuses_generative_models(
    tiny_causal_reranker_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    cache = tmp_path / "onnx"
    with pytest.raises(RerankError, match=r"generative \(causal-LM\) reranker .*backend='torch'"):
        CrossEncoderReranker(
            str(tiny_causal_reranker_dir), backend="onnx", model_kwargs={"cache_dir": cache}
        )
    with pytest.raises(RerankError, match="Qwen3ForCausalLM"):
        load_reranker(f"onnx:{tiny_causal_reranker_dir}", cache_dir=cache)
    assert not cache.exists() or not any(cache.iterdir())  # refused before any export
    with pytest.raises(ValueError, match="needs backend='torch'"):
        CrossEncoderReranker(str(tiny_causal_reranker_dir), backend="onnx", trust_remote_code=True)


def test_adapters_rerank_with_a_generative_cross_encoder(
    generative: CrossEncoderReranker, tiny_causal_reranker_dir: Path
) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    import langchain_rerank_kit as lc
    import llamaindex_rerank_kit as li

    expected = generative.score(QUERY, TEXTS)
    order = sorted(range(len(TEXTS)), key=lambda i: -expected[i])[:2]
    kwargs: dict[str, Any] = {"model": str(tiny_causal_reranker_dir), "top_n": 2}
    kwargs["model_kwargs"] = {"trust_remote_code": False}
    docs = [Document(page_content=t, id=f"d{i}") for i, t in enumerate(TEXTS)]
    out = lc.CrossEncoderRerank(**kwargs).compress_documents(docs, QUERY)
    assert [d.id for d in out] == [f"d{i}" for i in order]
    assert out[0].metadata["relevance_score"] == pytest.approx(expected[order[0]], abs=1e-6)
    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=0.0) for i, t in enumerate(TEXTS)
    ]
    got = li.CrossEncoderRerank(**kwargs).postprocess_nodes(nodes, query_str=QUERY)
    assert [n.node.node_id for n in got] == [f"n{i}" for i in order]
