# pip install ".[eval]"   (from a checkout of rerank-kit)
"""A reranker family of your own, on public names only: keyword overlap, with a score cache,
long-document windows and a spec prefix (``keywords:count``, ``keywords:share``).

Imported, this module is the family (an installed package names the class in its
``rerank_kit.rerankers`` entry point); run as a program, it registers the prefix in-process
and uses it everywhere a spec string goes.
"""

from __future__ import annotations

import string

from rerank_kit import PairScores, Reranker, ScoreCache, WindowPlan


class KeywordOverlapReranker(Reranker):
    """Scores a passage by the query words it holds: how many (``count``) or what share."""

    keeps_score_cache = True  # a score depends on the (query, passage) pair alone

    def __init__(
        self,
        model: str = "count",
        *,
        max_words: int = 64,
        long_documents: str = "truncate",
        score_cache: int | str | ScoreCache | None = None,
    ) -> None:
        super().__init__(score_cache=score_cache)  # the base class keeps the cache
        if model not in ("count", "share"):
            raise ValueError(f"keywords: the model is 'count' or 'share', got {model!r}")
        self.weighting, self.max_words = model, max_words
        self.name = f"keywords:{model}"  # the cache's key: name what changes the scores
        self.set_long_documents(long_documents)

    def _score_pairs(self, query: str, texts: list[str]) -> PairScores:
        wanted = set(_words(query))
        scores, truncated = [], []
        for text in texts:
            words = _words(text)
            found = len(wanted & set(words[: self.max_words]))  # reads max_words words at most
            share = self.weighting == "share" and wanted
            scores.append(found / len(wanted) if share else float(found))
            truncated.append(len(words) > self.max_words)
        return PairScores(scores, truncated=truncated)

    def _window_plan(self, query: str) -> WindowPlan:
        return WindowPlan.words(self.max_words)  # long passages cut into max_words windows


def _words(text: str) -> list[str]:
    return [w.strip(string.punctuation) for w in text.lower().split()]


if __name__ == "__main__":
    from rerank_kit import PipelineConfig, load_pipeline, load_reranker, register_reranker
    from rerank_kit.evaluation import Dataset, Document, compare

    register_reranker("keywords", KeywordOverlapReranker)  # a package: the entry point instead
    passages = [
        "Reset a password in Settings > Security.",
        "Invoices are emailed on the first day of each month.",
        "Our office dog is called Biscuit. " * 8 + "To reset a password, open Settings.",
    ]
    query = "how do I reset my password"

    cache = ScoreCache(1000)
    reranker = load_reranker("keywords:count", score_cache=cache, max_words=20)
    for r in reranker.rerank(query, passages):
        print(r.index, r.score, "truncated" if r.truncated else "")
    reranker.rerank(query, passages)  # the same pairs again: answered by the cache
    print("cache:", cache.info())

    windows = load_reranker("keywords:count", max_words=20, long_documents="max")
    print("windows:", windows.name, windows.score(query, passages))  # passage 2 read whole

    cascade = load_reranker("keywords:share@2 >> keywords:count")
    print("cascade:", [r.index for r in cascade.rerank(query, passages)])

    pipeline = load_pipeline(PipelineConfig("keywords:share", "bm25", top_n=1))
    print("pipeline:", pipeline.rerank(query, passages)[0].index)

    data = Dataset(
        "help desk",
        {f"d{i}": Document(f"d{i}", text) for i, text in enumerate(passages)},
        {"q1": query},
        {"q1": {"d0": 2, "d2": 1}},
    )
    result = compare(data, "bm25", ["keywords:count"], depth=3, warmup=False)
    for system in result.systems:
        print(f"{system.name}: nDCG@10 {system.metrics['nDCG@10']:.3f}")
