"""The batch-independence rule: a pair's score is a function of the pair alone, whatever its batch.

Every graph the runtime loads goes through ``plan_graph`` first, which decides how it runs:

- **fp32 graphs** (and static int8, whose activation scales are constants) are already
  batch-independent: they run as they are, batched (rule ``None``).
- **dynamic int8 graphs** (``DynamicQuantizeLinear``, as ``quantize_dynamic`` makes: the bundled
  model, FlashRank folders, ``quantize="int8"`` exports) quantize activations with one scale per
  batch tensor. On ONNX Runtime they are rewritten once by ``per_token.per_token_int8`` (zero
  points calibrated on the text that ships with the package, ``calibration_pairs.tsv``), their
  attention fused by ``attention_fusion.fuse_bert_attention`` where the pattern is found, and the
  result is cached in the ONNX cache under ``<graph>-per-token-<key>/model.onnx`` (``key``:
  the source file's identity and ``RULE_VERSION``). They run in buckets of at most
  ``PER_TOKEN_BATCH`` pairs and ``PER_TOKEN_TOKENS`` padded tokens (measured fastest for these
  graphs; scores do not depend on it). Rule ``"int8-per-token/1"``.
- **on OpenVINO**, which cannot read ONNX Runtime's contrib ops and cannot run the standard-op
  variant of the rewrite (its per-axis ``QuantizeLinear`` fails shape inference there), a
  dynamic int8 graph runs as its dequantized fp32 graph (``dequantize.dequantized_graph``,
  cached the same way). OpenVINO at bf16 precision is batch-dependent (~1e-3): bf16 runs one
  pair per call.
- **anything else dynamic** that cannot be rewritten (``QAttention`` graphs, a
  ``DynamicQuantizeMatMul``, no ``onnx`` package installed) runs one pair per call (rule
  ``"per-pair/1"``), and one INFO line per reranker says so.

``rule`` is recorded in the score cache's key (``Reranker._score_identity``), so scores of the
old batch-dependent path are never mixed with these.

Example:
    >>> [q for q, _ in calibration_pairs()][:1]
    ['how do I reset my password']
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rerank_kit._core.errors import RerankError
from rerank_kit._runtime.paths import graph_key, slug, write_file_atomically
from rerank_kit._runtime.sessions import check_graph_file, graph_error

__all__ = [
    "DEQUANTIZED",
    "PER_PAIR",
    "PER_TOKEN",
    "PER_TOKEN_BATCH",
    "PER_TOKEN_TOKENS",
    "RULE_VERSION",
    "GraphPlan",
    "calibration_pairs",
    "dynamic_ops",
    "plan_graph",
    "quantized_copy",
]

logger = logging.getLogger(__name__)

#: Bump when the rewrite changes the scores it gives (a new cache file and score-cache tag).
RULE_VERSION = 1
#: Rule tags recorded with every score of such a graph (the score cache keys on them).
PER_TOKEN = f"int8-per-token/{RULE_VERSION}"
PER_PAIR = f"per-pair/{RULE_VERSION}"
DEQUANTIZED = f"int8-dequantized-fp32/{RULE_VERSION}"
#: Bucket limits for per-token graphs (measured fastest on a 2-core CPU: 16 / 1024).
PER_TOKEN_BATCH = 16
PER_TOKEN_TOKENS = 1024
#: Op types whose activation quantization is computed per call (batch-wide).
_DYNAMIC_OPS = (
    b"DynamicQuantizeLinear",
    b"DynamicQuantizeMatMul",
    b"QAttention",
    b"DynamicQuantizeLSTM",
)
_CALIBRATION = "calibration_pairs.tsv"
_CALIBRATION_TOKENS = 256


@dataclass(frozen=True)
class GraphPlan:
    """How a graph runs under the rule.

    Attributes:
        graph: The file to load (the source, or its cached rewrite).
        rule: The tag recorded with its scores (``None``: the graph is batch-independent as it
            is, nothing changed).
        per_pair: Run one pair per call.
        batch_size: Cap on pairs per call (``None``: the caller's setting).
        max_batch_tokens: Cap on padded tokens per call (``None``: the caller's setting).
        note: Why, for the one INFO line (empty when nothing is worth saying).
    """

    graph: Path
    rule: str | None = None
    per_pair: bool = False
    batch_size: int | None = None
    max_batch_tokens: int | None = None
    note: str = ""


def calibration_pairs() -> list[tuple[str, str]]:
    """The (question, passage) pairs shipped with the package for zero-point calibration.

    Generic help-desk, science, cooking, travel and software pairs, written for this purpose
    (no evaluation collection), in ``rerank_kit/_runtime/calibration_pairs.tsv``.
    """
    text = resources.files("rerank_kit._runtime").joinpath(_CALIBRATION).read_text("utf-8")
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            question, passage = line.split("\t", 1)
            pairs.append((question.strip(), passage.strip()))
    return pairs


def dynamic_ops(graph: Path) -> list[str]:
    """The op types in ``graph`` that quantize activations per call (batch-wide)."""
    check_graph_file(graph)  # mmap refuses an empty file
    with graph.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return [op.decode() for op in _DYNAMIC_OPS if data.find(op) != -1]


def _calibration_feeds(tokenizer: Any) -> list[dict[str, Any]]:
    """One unpadded feed per calibration pair, tokenized as the model's pairs are.

    Every input a cross-encoder graph may take is given (``token_type_ids`` too);
    ``calibrate_zero_points`` feeds a graph only the inputs it has (XLM-R, ModernBERT,
    DistilBERT or DeBERTa-v3 graphs take no ``token_type_ids``).
    """
    import numpy as np

    tok = tokenizer.__class__.from_str(tokenizer.to_str())
    tok.no_padding()
    tok.enable_truncation(_CALIBRATION_TOKENS, strategy="longest_first")
    feeds = []
    for enc in tok.encode_batch(calibration_pairs()):
        feeds.append(
            {
                "input_ids": np.asarray([enc.ids], dtype=np.int64),
                "attention_mask": np.ones((1, len(enc.ids)), dtype=np.int64),
                "token_type_ids": np.asarray([enc.type_ids], dtype=np.int64),
            }
        )
    return feeds


def _cached_path(graph: Path, cache_dir: Path, rule: str) -> Path:
    """Where the rewrite of ``graph`` under ``rule`` lives in the ONNX cache."""
    calibration = hashlib.sha256(json.dumps(calibration_pairs()).encode()).hexdigest()
    payload = json.dumps([graph_key(graph), rule, calibration])
    key = hashlib.sha256(payload.encode()).hexdigest()[:20]
    kind = "per-token" if rule == PER_TOKEN else "dequantized"
    return cache_dir / f"{slug(f'{graph.parent.name}-{graph.stem}')}-{kind}-{key}" / "model.onnx"


def _per_token(graph: Path, tokenizer: Any, cache_dir: Path) -> Path:
    """The cached per-token rewrite of ``graph`` (made now if missing)."""
    from rerank_kit._runtime.attention_fusion import fuse_bert_attention
    from rerank_kit._runtime.per_token import calibrate_zero_points, per_token_int8

    target = _cached_path(graph, cache_dir, PER_TOKEN)
    if target.is_file():
        return target

    def build(tmp: Path) -> None:
        zero_points = calibrate_zero_points(graph, _calibration_feeds(tokenizer))
        count = per_token_int8(graph, tmp, zero_points)
        fused = fuse_bert_attention(tmp, tmp)
        logger.info(
            "rewrote %s/%s for batch-independent scores: %d per-token quantizers, %d attention "
            "blocks fused (once; cached in %s)",
            graph.parent.name,
            graph.name,
            count,
            fused,
            target.parent,
        )

    write_file_atomically(target, build)
    return target


def _dequantized(graph: Path, cache_dir: Path) -> Path:
    """The cached fp32 graph of a dynamic int8 ``graph`` (made now if missing)."""
    from rerank_kit._runtime.dequantize import dequantized_graph

    target = _cached_path(graph, cache_dir, DEQUANTIZED)
    if not target.is_file():
        logger.info("dequantizing %s to fp32 for OpenVINO (once; cached in %s)", graph, target)
        write_file_atomically(target, lambda tmp: dequantized_graph(graph, tmp))
    return target


def quantized_copy(graph: Path, target: Path, backend: str) -> None:
    """Write the MatMul-only int8 graph of ``graph`` to ``target``, atomically (once; cached).

    A graph that cannot be read raises ``ModelNotAvailableError`` naming it, and nothing is
    left in the cache (not even an empty folder).
    """
    from rerank_kit._runtime.quantize import quantize_into

    try:
        write_file_atomically(target, lambda tmp: quantize_into(graph, tmp, attention=False))
    except (ImportError, RerankError):
        raise
    except Exception as exc:  # onnx / protobuf / ONNX Runtime on a corrupt graph
        raise graph_error(graph, backend, exc, "quantizing") from exc


def _per_pair(graph: Path, why: str) -> GraphPlan:
    return GraphPlan(
        graph,
        PER_PAIR,
        per_pair=True,
        note=f"{graph.name} {why}; it runs one pair per call so that a pair's score does not "
        "depend on its batch (slower on short passages)",
    )


def plan_graph(
    graph: Path, tokenizer: Any, cache_dir: Path, *, backend: str, precision: str
) -> GraphPlan:
    """How ``graph`` runs so that a pair's score depends on the pair alone.

    Args:
        graph: The ONNX graph the model would load.
        tokenizer: The model's ``tokenizers.Tokenizer`` (calibration text is tokenized with it).
        cache_dir: The ONNX cache (rewrites are cached there).
        backend: ``"onnx"`` or ``"openvino"``.
        precision: OpenVINO's resolved inference precision (``"f32"`` or ``"bf16"``).
    """
    dynamic = dynamic_ops(graph)
    if backend == "openvino":
        if dynamic:
            try:
                graph = _dequantized(graph, cache_dir)
            except (ImportError, ValueError, KeyError, StopIteration) as exc:
                return _per_pair(
                    graph,
                    f"quantizes activations per batch and cannot be "
                    f"dequantized for OpenVINO ({exc})",
                )
            except Exception as exc:  # onnx / protobuf: a graph that cannot be read
                raise graph_error(graph, backend, exc, "dequantizing") from exc
        if precision == "bf16":
            return GraphPlan(
                graph,
                PER_PAIR,
                per_pair=True,
                note="OpenVINO's bf16 kernels round differently at different batch shapes "
                "(scores move by ~1e-3); it runs one pair per call (openvino_precision='f32' "
                "runs batched)",
            )
        return GraphPlan(graph, DEQUANTIZED if dynamic else None)
    if not dynamic:
        return GraphPlan(graph)
    if dynamic != ["DynamicQuantizeLinear"]:
        return _per_pair(graph, f"quantizes activations per batch ({', '.join(dynamic)})")
    try:
        import onnx  # noqa: F401
    except ImportError:
        return _per_pair(
            graph,
            "quantizes activations per batch and rewriting it needs the onnx package "
            '(pip install "rerank-kit[onnx-runtime]")',
        )
    try:
        rewritten = _per_token(graph, tokenizer, cache_dir)
    except RerankError:
        raise
    except ValueError as exc:
        return _per_pair(graph, f"quantizes activations per batch and cannot be rewritten ({exc})")
    except Exception as exc:  # ONNX Runtime (calibration), onnx or protobuf (a corrupt graph)
        raise graph_error(graph, backend, exc, "rewriting to per-token int8") from exc
    return GraphPlan(
        rewritten, PER_TOKEN, batch_size=PER_TOKEN_BATCH, max_batch_tokens=PER_TOKEN_TOKENS
    )
