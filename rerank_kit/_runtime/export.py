"""torch -> ONNX, once per model: cross-encoders (logits) and sentence encoders (unit embeddings).

Each export uses the legacy exporter (opset 17), fuses the transformer blocks with ONNX Runtime's
offline optimizer (one ``Attention``, ``SkipLayerNormalization`` and ``BiasGelu`` node per layer)
where the model type allows, checks the graph in use against torch on a padded batch (the fused
one is dropped if it drifts, the plain one must pass) and saves the fast tokenizer beside it.
``export_once`` writes the folder atomically, so readers never see a half-written export.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rerank_kit._core.errors import RerankError
from rerank_kit._runtime.folders import activation_of
from rerank_kit._runtime.paths import FORMAT_VERSION, FP32, META, OPSET, TOKENIZER, is_complete
from rerank_kit._runtime.sessions import OrtRunner
from rerank_kit._runtime.templated import TemplateEncoder
from rerank_kit._runtime.torch_limits import padding_offset
from rerank_kit.recipes import Recipe, relevant_label, resolve_recipe

__all__ = ["FUSABLE", "export_cross_encoder", "export_once", "export_sentence_encoder"]

logger = logging.getLogger(__name__)

#: Model types whose encoder ONNX Runtime's offline "bert" optimizer knows how to fuse.
FUSABLE = {"bert", "roberta", "xlm-roberta", "camembert", "electra", "distilbert"}
# Relative error of a cross-encoder export (fp32) against torch logits.
_LOGITS_TOLERANCE = 1e-3
# Max abs error of the exported (fp32) unit embeddings against sentence-transformers.
_EMBEDDING_TOLERANCE = 1e-4
_POOLINGS = ("mean", "cls", "max")
_AXES = {0: "batch", 1: "sequence"}


def _input_names(tokenizer: Any, config: Any) -> list[str]:
    """The graph's inputs: ids and mask, plus token types where the model has them."""
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in tokenizer.model_input_names and getattr(config, "type_vocab_size", None):
        names.append("token_type_ids")
    return names


def _pad_id(tokenizer: Any) -> int:
    pad_id = tokenizer.pad_token_id
    return int(pad_id) if pad_id is not None else 0


def _export_checked(
    inner: Any,
    head: Callable[[Any, dict[str, Any]], Any],
    graph: tuple[Any, list[str], str],
    expected: Any,
    out_dir: Path,
    check: tuple[float, bool, str, str],
) -> bool:
    """Export ``head(inner, feeds)`` to ONNX, fuse it if that stays exact, and save the tokenizer.

    Args:
        inner: The torch model (its weights become the graph's).
        head: Turns the model and its named inputs into the graph's one output.
        graph: ``(tokenizer, input names, output name)``.
        expected: The reference output on ``SAMPLE``-like inputs (``sample`` below).
        out_dir: Where ``model.onnx`` and the tokenizer go.
        check: ``(tolerance, relative, what, reference)`` for the error message.

    Returns:
        Whether the fused graph was kept.
    """
    import numpy as np
    import torch

    tokenizer_and_sample, names, output = graph
    tokenizer, sample = tokenizer_and_sample
    tolerance, relative, what, reference = check

    class _Named(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return head(self.model, dict(zip(names, inputs, strict=True)))

    raw = out_dir / "model.raw.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Named(inner).eval(),
            tuple(sample[n] for n in names),
            str(raw),
            input_names=names,
            output_names=[output],
            dynamic_axes={**{n: _AXES for n in names}, output: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    scale = max(1.0, float(np.abs(expected).max())) if relative else 1.0

    def max_error(path: Path) -> float:
        got = np.asarray(OrtRunner(path, 1)({n: sample[n].numpy() for n in names}))
        return float(np.abs(got - expected).max() / scale)

    config = inner.config
    fused = _fuse_and_check(raw, out_dir, config, max_error, tolerance, what, reference)
    tokenizer.backend_tokenizer.save(str(out_dir / TOKENIZER))
    return fused


def _fuse_and_check(
    raw: Path,
    out_dir: Path,
    config: Any,
    max_error: Callable[[Path], float],
    tolerance: float,
    what: str,
    reference: str,
) -> bool:
    """Leave ``out_dir/model.onnx``: fused if that keeps within ``tolerance``, else the plain one.

    Returns whether the fused graph is the one kept. Raises if even the plain graph drifts.
    """
    fused = False
    if config.model_type in FUSABLE:
        try:
            from onnxruntime.transformers import optimizer

            optimized = optimizer.optimize_model(
                str(raw),
                model_type="bert",
                num_heads=int(config.num_attention_heads),
                hidden_size=int(config.hidden_size),
                opt_level=0,
                use_gpu=False,
            )
            optimized.save_model_to_file(str(out_dir / FP32))
            err = max_error(out_dir / FP32)
            fused = err <= tolerance
            if not fused:
                logger.warning("fused ONNX graph differs (%.2g); using the plain one", err)
        except Exception as exc:  # fusion is an optimisation only: never fail the export on it
            logger.warning("ONNX Runtime could not fuse %s (%s); using the plain graph", what, exc)
    if fused:
        raw.unlink()
        return True
    os.replace(raw, out_dir / FP32)
    err = max_error(out_dir / FP32)
    if err > tolerance:
        raise RerankError(
            f"the ONNX export of {what} does not match {reference} (max error {err:.3g})"
        )
    return False


def _cross_encoder_sample(tokenizer: Any, recipe: Recipe | None, pad_id: int) -> Any:
    """Two pairs of different lengths, padded (right) as the runtime batches them.

    A templated recipe's pairs are rendered through its prompt (default instruction) and
    tokenized exactly as ``OnnxCrossEncoder`` does, so the export check compares the graph
    with torch on the input the model really reads.
    """
    import torch

    queries = ["what is a reranker", "why"]
    passages = ["a model that orders passages by relevance to a query", "because"]
    if recipe is None or not recipe.templated:
        return tokenizer(queries, passages, padding=True, return_tensors="pt")
    encoder = TemplateEncoder(tokenizer.backend_tokenizer, recipe, recipe.default_instruction)
    rows = [
        encoder.encode(q, [p], 1 << 30)[0][0].ids for q, p in zip(queries, passages, strict=True)
    ]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def export_cross_encoder(model_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Export a transformers cross-encoder (one label, or two) and its tokenizer into ``out_dir``.

    A decoder sequence-classification conversion with a prompt template (its recipe in
    ``rerank_kit.recipes``) is checked against torch on templated input. A two-label head keeps
    both logits; ``meta.json`` names the relevant label (``label``) and the ``softmax``
    activation. Needs torch, transformers and onnx. Returns the metadata to write to
    ``meta.json``.
    """
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    config_dict = json.loads((model_dir / "config.json").read_text())
    recipe = resolve_recipe(model_dir)
    num_labels = int(getattr(config, "num_labels", 1))
    if num_labels not in (1, 2):
        raise ValueError(
            f"{str(model_dir)!r} has {num_labels} output labels; a reranker needs a one-label "
            "relevance model (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2) or a two-label "
            "[not relevant, relevant] head"
        )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if not getattr(tokenizer, "is_fast", False):
        raise RerankError(
            f"{str(model_dir)!r} has no fast tokenizer (tokenizer.json); cannot export"
        )
    pad_id = _pad_id(tokenizer)
    if recipe is not None and recipe.templated:
        # the graph pools the last token that is not config.pad_token_id: pad with that one
        if getattr(config, "pad_token_id", None) is None:
            raise RerankError(
                f"{str(model_dir)!r} ({recipe.name}) has no pad_token_id in config.json; its "
                "classifier cannot find the last token of a padded batch"
            )
        pad_id = int(config.pad_token_id)
    try:  # eager attention exports a graph that ONNX Runtime fuses into one Attention node
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, dtype=torch.float32, attn_implementation="eager"
        )
    except (ValueError, TypeError):
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    model = model.eval()
    names = _input_names(tokenizer, config)
    sample = _cross_encoder_sample(tokenizer, recipe, pad_id)
    with torch.inference_mode():
        expected = model(**{n: sample[n] for n in names}).logits.numpy()
    reference = "torch on templated input" if recipe is not None and recipe.templated else "torch"
    fused = _export_checked(
        model,
        lambda m, feeds: m(**feeds).logits,
        ((tokenizer, sample), names, "logits"),
        expected,
        out_dir,
        (_LOGITS_TOLERANCE, True, repr(str(model_dir)), reference),
    )
    limits = (
        [int(config.max_position_embeddings)] if hasattr(config, "max_position_embeddings") else []
    )
    offset = recipe.position_offset if recipe is not None else 0
    if recipe is None:
        offset = padding_offset(config.model_type, getattr(config, "pad_token_id", None))
    limits = [n - offset for n in limits]  # positions start after the padding index (RoBERTa)
    if 0 < int(tokenizer.model_max_length) < 1_000_000:
        limits.append(int(tokenizer.model_max_length))
    two = num_labels == 2
    labels = {"num_labels": num_labels, "id2label": dict(getattr(config, "id2label", {}) or {})}
    return {
        "format": FORMAT_VERSION,
        "source": str(model_dir),
        "inputs": names,
        "num_labels": num_labels,
        "label": relevant_label(labels, recipe) if two else 0,
        "activation": "softmax" if two else activation_of(config_dict, num_labels),
        "max_length": min(limits) if limits else 512,
        "pad_token_id": pad_id,
        "recipe": recipe.name if recipe is not None else None,
        "fused": fused,
    }


def _pooling_mode(pooling: Any) -> str:
    mode = str(getattr(pooling, "pooling_mode", "") or "")
    if not mode:  # older sentence-transformers: one boolean per mode
        flags = {
            "mean": getattr(pooling, "pooling_mode_mean_tokens", False),
            "cls": getattr(pooling, "pooling_mode_cls_token", False),
            "max": getattr(pooling, "pooling_mode_max_tokens", False),
        }
        on = [k for k, v in flags.items() if v]
        mode = on[0] if len(on) == 1 else "+".join(on)
    return mode


def export_sentence_encoder(model_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Export transformer + pooling + normalize of a sentence-transformers folder into ``out_dir``.

    Needs torch, sentence-transformers and onnx. Returns the metadata to write to ``meta.json``.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    st: Any = SentenceTransformer(str(model_dir), device="cpu")
    kinds = [type(m).__name__ for m in st]
    if kinds[:2] != ["Transformer", "Pooling"] or any(n != "Normalize" for n in kinds[2:]):
        raise RerankError(
            f"{str(model_dir)!r} has modules {kinds}; the ONNX bi-encoder exports Transformer + "
            "Pooling (+ Normalize) models only. Use backend='torch' for this model"
        )
    transformer: Any = st[0]
    mode = _pooling_mode(st[1])
    if mode not in _POOLINGS:
        raise RerankError(
            f"{str(model_dir)!r} pools with {mode!r}; the ONNX bi-encoder supports "
            f"{', '.join(_POOLINGS)} pooling. Use backend='torch' for this model"
        )
    if getattr(transformer, "do_lower_case", False):
        raise RerankError(
            f"{str(model_dir)!r} lowercases its input in sentence-transformers "
            "(do_lower_case); use backend='torch' for this model"
        )
    tokenizer: Any = transformer.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise RerankError(f"{str(model_dir)!r} has no fast tokenizer (tokenizer.json)")
    inner: Any = transformer.auto_model.float().eval()
    names = _input_names(tokenizer, inner.config)

    def embed(model: Any, feeds: dict[str, Any]) -> Any:
        hidden = model(**feeds).last_hidden_state
        mask = feeds["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        if mode == "cls":
            pooled = hidden[:, 0]
        elif mode == "max":
            pooled = hidden.masked_fill(mask == 0, -1e9).max(dim=1).values
        else:
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    texts = ["a model that orders passages by relevance to a query", "why"]
    sample = tokenizer(texts, padding=True, return_tensors="pt")
    expected = st.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    fused = _export_checked(
        inner,
        embed,
        ((tokenizer, sample), names, "embedding"),
        expected,
        out_dir,
        (_EMBEDDING_TOLERANCE, False, repr(str(model_dir)), "sentence-transformers"),
    )
    return {
        "format": FORMAT_VERSION,
        "source": str(model_dir),
        "inputs": names,
        "pooling": mode,
        "dimension": int(expected.shape[1]),
        "max_length": int(st.max_seq_length or tokenizer.model_max_length),
        "pad_token_id": _pad_id(tokenizer),
        "fused": fused,
    }


def export_once(
    export: Callable[[Path, Path], dict[str, Any]], model_dir: Path, folder: Path
) -> None:
    """Run ``export(model_dir, tmp)`` and move the result to ``folder`` in one rename.

    A concurrent export that finished first wins; a broken leftover folder is replaced.
    """
    logger.info("exporting %s to ONNX (once; cached in %s)", model_dir, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    try:
        meta = export(model_dir, tmp)
        (tmp / META).write_text(json.dumps(meta, indent=2))
        try:
            os.replace(tmp, folder)  # atomic: readers never see a half-written folder
        except OSError:  # the folder exists: a concurrent export won, or a broken leftover
            if not is_complete(folder):
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
