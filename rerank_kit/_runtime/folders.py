"""Model folders: which ONNX graph to load, and what a folder's own files say about the model.

A pre-exported folder (a Hub repository's ``onnx/`` layout, a FlashRank model, another tool's
export, the bundled model) runs as it is: its limits, pad token, inputs and activation are read
from its graph and tokenizer files here, without torch or transformers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from rerank_kit._core.errors import ModelNotAvailableError, RerankError
from rerank_kit._runtime.paths import FORMAT_VERSION, TOKENIZER
from rerank_kit._runtime.sessions import Runner
from rerank_kit._runtime.torch_limits import padding_offset
from rerank_kit.recipes import Recipe, relevant_label

__all__ = [
    "KNOWN_INPUTS",
    "activation_of",
    "onnx_graphs",
    "pick_graph",
    "pre_exported_meta",
    "refuse_generative",
    "tokenizer_file",
]

logger = logging.getLogger(__name__)

#: The inputs a cross-encoder graph may take, in the order they are fed.
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_graphs(folder: str | Path) -> list[Path]:
    """The ONNX graphs of a model folder: ``*.onnx`` at its top and in its ``onnx/`` subfolder.

    Example:
        >>> onnx_graphs("/no/such/folder")
        []
    """
    root = Path(folder)
    return sorted([*root.glob("*.onnx"), *root.glob("onnx/*.onnx")])


def pick_graph(folder: Path, file_name: str | None) -> Path | None:
    """The pre-exported graph to load from ``folder``, or ``None`` to export the model.

    ``file_name`` (relative to the folder, or to its ``onnx/`` subfolder) picks one of several,
    as ``CrossEncoder(..., backend="onnx", model_kwargs={"file_name": ...})`` does. Without it:
    ``model.onnx``, then ``onnx/model.onnx``, then the only graph there is.
    """
    graphs = onnx_graphs(folder)
    names = ", ".join(str(g.relative_to(folder)) for g in graphs) or "none"
    if file_name is not None:
        for candidate in (folder / file_name, folder / "onnx" / file_name):
            if candidate.is_file():
                return candidate
        raise ValueError(f"file_name={file_name!r} is not in {str(folder)!r} (ONNX files: {names})")
    for preferred in (folder / "model.onnx", folder / "onnx" / "model.onnx"):
        if preferred.is_file():
            return preferred
    if len(graphs) == 1:
        return graphs[0]
    if graphs:
        raise ValueError(
            f"{str(folder)!r} holds several ONNX files ({names}); pick one with "
            "file_name=... (for example model_kwargs={'file_name': 'onnx/model_qint8_avx512.onnx'})"
        )
    return None


def tokenizer_file(graph: Path, folder: Path) -> Path:
    """The ``tokenizer.json`` beside ``graph``, else at the top of ``folder``."""
    for place in (graph.parent, folder):
        if (place / TOKENIZER).is_file():
            return place / TOKENIZER
    raise ModelNotAvailableError(
        f"{str(folder)!r} has an ONNX graph ({graph.name}) but no tokenizer.json; "
        "save the fast tokenizer next to it (tokenizer.save_pretrained(folder))"
    )


def refuse_generative(model_dir: Path, model: str) -> None:
    """Raise if ``model_dir`` holds a causal-LM reranker, which the ONNX backend cannot export."""
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return
    architectures = [str(a) for a in config.get("architectures") or []]
    causal = [a for a in architectures if a.endswith("ForCausalLM")]
    modules = model_dir / "modules.json"
    if not causal and modules.is_file() and "LogitScore" in modules.read_text():
        causal = ["a LogitScore head"]
    if causal:
        raise RerankError(
            f"{model!r} is a generative (causal-LM) reranker ({causal[0]}); the ONNX backend "
            "exports sequence-classification cross-encoders only and would score it wrongly. "
            f"Use backend='torch' (CrossEncoderReranker({model!r}, backend='torch')), which "
            "scores it by its recipe as its model card documents (a decoder no recipe knows "
            "needs rerank_kit.register_recipe(...) first)"
        )


def activation_of(config: dict[str, Any], num_labels: int) -> str:
    """The activation ``CrossEncoder.predict`` applies, as a name: sigmoid, identity or tanh.

    Example:
        >>> activation_of({}, 1), activation_of({"sbert_ce_default_activation_function": "torch.nn.modules.linear.Identity"}, 1)
        ('sigmoid', 'identity')
    """
    path = None
    st_cfg = config.get("sentence_transformers")
    if isinstance(st_cfg, dict):
        path = st_cfg.get("activation_fn")
    if path is None:
        path = config.get("sbert_ce_default_activation_function")
    if isinstance(path, str) and path.startswith("torch."):
        leaf = path.rsplit(".", 1)[-1].lower()
        if leaf in {"sigmoid", "identity", "tanh"}:
            return leaf
        logger.warning(
            "activation %s is not supported by the ONNX backend; using the default", path
        )
    return "sigmoid" if num_labels == 1 else "identity"


def _read_json(*paths: Path) -> dict[str, Any]:
    """The first of ``paths`` that is a JSON object file, else ``{}``."""
    for path in paths:
        if path.is_file():
            try:
                value = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(value, dict):
                return value
    return {}


def _token_text(value: Any) -> str | None:
    """A special token as written in tokenizer files: a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _check_graph(graph: Path, runner: Runner, labels: int = 1) -> list[str]:
    """The graph's inputs, after checking it is a cross-encoder graph with ``labels`` logits."""
    inputs = list(runner.input_names)
    unknown = [n for n in inputs if n not in KNOWN_INPUTS]
    if unknown or "input_ids" not in inputs:
        raise RerankError(
            f"{str(graph)!r} takes inputs {inputs}; a cross-encoder graph takes input_ids, "
            "attention_mask and (optionally) token_type_ids"
        )
    shape = list(runner.output_shape)
    width = shape[-1] if len(shape) >= 2 else 1
    if len(shape) > 2 or (isinstance(width, int) and width != labels):
        raise RerankError(
            f"{str(graph)!r} outputs {runner.output_name} of shape {shape}; a reranker needs one "
            "relevance logit per pair ([batch, 1]) or, for a two-label head named in its "
            "config.json, two ([batch, 2]): this looks like an embedding or multi-label model"
        )
    return inputs


def pre_exported_meta(
    graph: Path, folder: Path, tokenizer: Any, runner: Runner, recipe: Recipe | None = None
) -> dict[str, Any]:
    """What scoring needs (as an export's ``meta.json``), read from a pre-exported folder.

    A two-label head (``config.json`` ``num_labels`` or ``id2label`` of two) scores the
    probability of its relevant label (``relevant_label``): ``activation`` ``"softmax"`` and
    ``label``. ``recipe`` (the folder's, if any) gives the position offset and, for a templated
    decoder, the pad token its classifier looks for (``config.json`` ``pad_token_id``).
    """
    places = [graph.parent, folder] if graph.parent != folder else [folder]
    config = _read_json(*(p / "config.json" for p in places))
    tok_config = _read_json(*(p / "tokenizer_config.json" for p in places))
    special = _read_json(*(p / "special_tokens_map.json" for p in places))
    tok_json = _read_json(*(p / TOKENIZER for p in places))
    labels = int(config.get("num_labels") or len(config.get("id2label") or {}) or 1)
    shape = list(runner.output_shape)
    if len(shape) == 2 and isinstance(shape[-1], int) and shape[-1] == 2 and labels == 1:
        if not config.get("num_labels") and not config.get("id2label"):
            labels = 2  # transformers 5 saves a default two-label head without id2label
    if labels not in (1, 2):
        raise ValueError(
            f"{str(folder)!r} has {labels} output labels; a reranker needs a one-label "
            "relevance model (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2) or a two-label "
            "[not relevant, relevant] head"
        )
    inputs = _check_graph(graph, runner, labels)

    limits: list[int] = []
    model_max = tok_config.get("model_max_length")
    if isinstance(model_max, (int, float)) and 0 < model_max < 1_000_000:
        limits.append(int(model_max))
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        offset = padding_offset(config.get("model_type"), config.get("pad_token_id"))
        if recipe is not None:
            offset = recipe.position_offset
        limits.append(positions - offset)
    if not limits:
        truncation = tok_json.get("truncation")
        if isinstance(truncation, dict) and isinstance(truncation.get("max_length"), int):
            limits.append(int(truncation["max_length"]))

    pad_id: int | None = None
    if recipe is not None and recipe.templated and isinstance(config.get("pad_token_id"), int):
        pad_id = int(config["pad_token_id"])  # what the decoder's classifier looks for
    for text in (_token_text(tok_config.get("pad_token")), _token_text(special.get("pad_token"))):
        if pad_id is not None:
            break
        if text is not None and tokenizer.token_to_id(text) is not None:
            pad_id = int(tokenizer.token_to_id(text))
            break
    if pad_id is None:
        padding = tok_json.get("padding")
        if isinstance(padding, dict) and isinstance(padding.get("pad_id"), int):
            pad_id = int(padding["pad_id"])
        elif isinstance(config.get("pad_token_id"), int):
            pad_id = int(config["pad_token_id"])
    return {
        "format": FORMAT_VERSION,
        "source": str(graph),
        "inputs": [n for n in KNOWN_INPUTS if n in inputs],
        "num_labels": labels,
        "label": relevant_label({**config, "num_labels": labels}, recipe) if labels == 2 else 0,
        "activation": "softmax" if labels == 2 else activation_of(config, 1),
        "max_length": min(limits) if limits else 512,
        "pad_token_id": pad_id if pad_id is not None else 0,
        "fused": None,
        "pre_exported": True,
    }
