# pip install ".[bundled]"   (from a checkout of rerank-kit)
"""The engine alone: no framework, plain strings in, indices and float scores out."""

import asyncio

from rerank_kit import load_reranker

passages = [
    "A reranker reads the query and a passage together and scores how well the passage answers it.",
    "Bananas are a good source of potassium.",
    "BM25 ranks documents by term frequency and inverse document frequency.",
    "",  # blank passages are not scored: score -inf, ranked last, flagged .empty
]
# the trained ms-marco-MiniLM-L-12-v2 on ONNX Runtime (the int8 build of the `bundled` extra offline)
reranker = load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")
for r in reranker.rerank("what is a reranker?", passages, top_n=3, score_threshold=0.1):
    print(r.index, r.score)  # index into passages, plain float
scores = reranker.score("what is a reranker?", passages)  # one float per passage
print(scores)
ranked = asyncio.run(reranker.arerank("what is a reranker?", passages))  # never blocks the loop
assert ranked[0].index == 0 and ranked[-1].empty
