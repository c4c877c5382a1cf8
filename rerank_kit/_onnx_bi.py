"""Bi-encoder embeddings on ONNX Runtime or OpenVINO: the cold path of ``BiEncoderReranker``.

The first construction for a sentence-transformers model exports its transformer together with
its pooling (mean, CLS or max, as the model's Pooling module says) and an L2 normalization into
one ONNX graph (legacy exporter, opset 17), fuses the transformer blocks with ONNX Runtime's
offline optimizer, optionally quantizes the weights to int8, checks the result against
``SentenceTransformer.encode`` and caches everything next to the cross-encoder exports. Later
constructions need only ``onnxruntime`` (or ``openvino``) and ``tokenizers``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rerank_kit._core.errors import RerankError, missing_extra
from rerank_kit._onnx import (
    _BACKENDS,
    _FUSABLE,
    _OV_PRECISIONS,
    _QUANTIZE,
    _cache_key,
    _check_positive,
    _quantize_int8,
    default_cache_dir,
    default_threads,
    make_runner,
    run_bucketed,
)

__all__ = ["OnnxSentenceEncoder"]

logger = logging.getLogger(__name__)

_FORMAT_VERSION = 1
_META = "meta.json"
_TOKENIZER = "tokenizer.json"
_FP32 = "model.onnx"
_INT8 = "model.int8.onnx"
_POOLINGS = ("mean", "cls", "max")
# Max abs error of the exported (fp32) unit embeddings against sentence-transformers.
_FP32_TOLERANCE = 1e-4


def _side_files_key(model_dir: Path) -> str:
    """Hash of the module files in subfolders (pooling, normalize) that ``_cache_key`` skips."""
    h = hashlib.sha256()
    for f in sorted(model_dir.glob("*/*.json")):
        h.update(str(f.relative_to(model_dir)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:8]


def _export_embedder(model_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Export transformer + pooling + normalize of a sentence-transformers folder to ONNX."""
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    st: Any = SentenceTransformer(str(model_dir), device="cpu")
    names = [type(m).__name__ for m in st]
    if names[:2] != ["Transformer", "Pooling"] or any(n != "Normalize" for n in names[2:]):
        raise RerankError(
            f"{str(model_dir)!r} has modules {names}; the ONNX bi-encoder exports Transformer + "
            "Pooling (+ Normalize) models only. Use backend='torch' for this model"
        )
    transformer: Any = st[0]
    pooling: Any = st[1]
    mode = str(getattr(pooling, "pooling_mode", "") or "")
    if not mode:  # older sentence-transformers: one boolean per mode
        flags = {
            "mean": getattr(pooling, "pooling_mode_mean_tokens", False),
            "cls": getattr(pooling, "pooling_mode_cls_token", False),
            "max": getattr(pooling, "pooling_mode_max_tokens", False),
        }
        on = [k for k, v in flags.items() if v]
        mode = on[0] if len(on) == 1 else "+".join(on)
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
    config: Any = inner.config
    input_names = ["input_ids", "attention_mask"]
    if "token_type_ids" in tokenizer.model_input_names and getattr(config, "type_vocab_size", None):
        input_names.append("token_type_ids")

    class _Embed(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            feeds = dict(zip(input_names, inputs, strict=True))
            hidden = self.model(**feeds).last_hidden_state
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
    feeds = tuple(sample[n] for n in input_names)
    expected = st.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    raw = out_dir / "model.raw.onnx"
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Embed(inner).eval(),
            feeds,
            str(raw),
            input_names=input_names,
            output_names=["embedding"],
            dynamic_axes={**{n: axes for n in input_names}, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )

    def max_error(path: Path) -> float:
        from rerank_kit._onnx import _OrtRunner

        got = _OrtRunner(path, 1)({n: sample[n].numpy() for n in input_names})
        return float(np.abs(np.asarray(got) - expected).max())

    fused = False
    if config.model_type in _FUSABLE:
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
            optimized.save_model_to_file(str(out_dir / _FP32))
            err = max_error(out_dir / _FP32)
            fused = err <= _FP32_TOLERANCE
            if not fused:
                logger.warning("fused ONNX graph differs (%.2g); using the plain one", err)
        except Exception as exc:  # fusion is an optimisation only
            logger.warning("ONNX Runtime could not fuse %s (%s); plain graph", model_dir, exc)
    if fused:
        raw.unlink()
    else:
        os.replace(raw, out_dir / _FP32)
        err = max_error(out_dir / _FP32)
        if err > _FP32_TOLERANCE:
            raise RerankError(
                f"the ONNX export of {str(model_dir)!r} does not match sentence-transformers "
                f"(max error {err:.3g})"
            )
    tokenizer.backend_tokenizer.save(str(out_dir / _TOKENIZER))
    pad_id = tokenizer.pad_token_id
    return {
        "format": _FORMAT_VERSION,
        "source": str(model_dir),
        "inputs": input_names,
        "pooling": mode,
        "dimension": int(expected.shape[1]),
        "max_length": int(st.max_seq_length or tokenizer.model_max_length),
        "pad_token_id": int(pad_id) if pad_id is not None else 0,
        "fused": fused,
    }


class OnnxSentenceEncoder:
    """Unit-length sentence embeddings of a sentence-transformers model, without torch at run time.

    Used by ``BiEncoderReranker(backend="onnx" | "openvino")``; exported once per model (needs
    torch, sentence-transformers and onnx then) and cached. Texts are tokenized once, sorted by
    length and run in token-budgeted batches of neighbours, like the cross-encoder backend.

    Args:
        model_dir: Local sentence-transformers folder.
        quantize: ``None`` (fp32) or ``"int8"`` (dynamic int8 weights, ONNX Runtime only).
        backend: ``"onnx"`` or ``"openvino"``.
        threads: Intra-op threads (default: physical cores this process may use).
        cache_dir: Where exports live (default: ``rerank_kit._onnx.default_cache_dir()``).
        batch_size: At most this many texts per call.
        max_batch_tokens: Also cap a call at this many padded tokens; ``None``: no cap.
        openvino_precision: With ``backend="openvino"``: ``"auto"``, ``"bf16"`` or ``"f32"``.

    Example:
        >>> enc = OnnxSentenceEncoder(Path("/models/all-MiniLM-L6-v2"))  # doctest: +SKIP
        >>> enc.encode(["a quick automobile"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        quantize: str | None = None,
        backend: str = "onnx",
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        batch_size: int = 32,
        max_batch_tokens: int | None = 2048,
        openvino_precision: str = "auto",
    ) -> None:
        if quantize not in _QUANTIZE:
            raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be 'onnx' or 'openvino', got {backend!r}")
        if backend == "openvino" and quantize == "int8":
            raise ValueError(
                "quantize='int8' is ONNX Runtime's int8 graph (com.microsoft.QAttention), which "
                "OpenVINO cannot read; use backend='onnx' for int8"
            )
        if openvino_precision not in _OV_PRECISIONS:
            raise ValueError(
                f"openvino_precision must be one of {', '.join(_OV_PRECISIONS)}, "
                f"got {openvino_precision!r}"
            )
        _check_positive("batch_size", batch_size)
        if threads is not None:
            _check_positive("threads", threads)
        if max_batch_tokens is not None:
            _check_positive("max_batch_tokens", max_batch_tokens)
        try:
            import numpy  # noqa: F401
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise missing_extra(backend, exc.name or "tokenizers", exc) from exc
        self.model_dir = Path(model_dir)
        self.quantize = quantize
        self.backend = backend
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.threads = threads if threads is not None else default_threads()
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.exported = False
        folder = self._prepare()
        self.onnx_path = folder / (_INT8 if quantize == "int8" else _FP32)
        self._meta: dict[str, Any] = json.loads((folder / _META).read_text())
        self.max_seq_length = int(self._meta["max_length"])
        self._tokenizer = Tokenizer.from_file(str(folder / _TOKENIZER))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self.max_seq_length)
        self._counter = Tokenizer.from_file(str(folder / _TOKENIZER))
        self._counter.no_padding()
        self._counter.no_truncation()
        self._runner = make_runner(self.onnx_path, self.threads, backend, openvino_precision)
        self.precision = (
            self._runner.inference_precision if backend == "openvino" else (quantize or "fp32")
        )

    def _prepare(self) -> Path:
        src = self.model_dir
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", src.name).strip("-") or "model"
        key = f"{_cache_key(src)}{_side_files_key(src)}"
        folder = self.cache_dir / f"bi-{slug}-{key}"
        if not ((folder / _META).is_file() and (folder / _FP32).is_file()):
            logger.info("exporting %s to ONNX (once; cached in %s)", src, folder)
            for package in ("torch", "sentence_transformers", "onnx", "onnxruntime"):
                try:
                    __import__(package)
                except ImportError as exc:
                    raise missing_extra("onnx", package.replace("_", "-"), exc) from exc
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=self.cache_dir))
            try:
                meta = _export_embedder(src, tmp)
                (tmp / _META).write_text(json.dumps(meta, indent=2))
                try:
                    os.replace(tmp, folder)
                except OSError:  # a concurrent export won, or a broken leftover
                    if not ((folder / _META).is_file() and (folder / _FP32).is_file()):
                        shutil.rmtree(folder, ignore_errors=True)
                        os.replace(tmp, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            self.exported = True
        if self.quantize == "int8" and not (folder / _INT8).is_file():
            logger.info("quantizing %s to int8 (once; cached in %s)", src, folder)
            fd, tmp_file = tempfile.mkstemp(suffix=".onnx", dir=folder)
            os.close(fd)
            try:
                _quantize_int8(folder / _FP32, Path(tmp_file))
                os.replace(tmp_file, folder / _INT8)
            finally:
                Path(tmp_file).unlink(missing_ok=True)
            self.exported = True
        return folder

    def encode(self, texts: Sequence[str]) -> Any:
        """Unit-length embeddings of ``texts`` (float64 array, one row per text, input order)."""
        import numpy as np

        if not texts:
            return np.zeros((0, int(self._meta["dimension"])), dtype=np.float64)
        encodings = self._tokenizer.encode_batch(list(texts))
        return run_bucketed(
            self._runner,
            encodings,
            self._meta["inputs"],
            int(self._meta["pad_token_id"]),
            self.batch_size,
            self.max_batch_tokens,
        )

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text with special tokens, before truncation."""
        return [len(e.ids) for e in self._counter.encode_batch(list(texts))]
