# pip install ".[bundled]"   (from a checkout of rerank-kit)
"""Score fusion in the engine: the reranker's scores combined with the first stage's."""

from rerank_kit import Fusion, load_reranker

texts = [
    "Reset a password from Settings > Security.",
    "Password rules: at least 12 characters.",
    "Refunds take 30 days.",
]
bm25_scores = [7.1, 9.3, 0.4]  # whatever your first stage gave each text
reranker = load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")
for fusion in (None, 0.7, Fusion(0.5, "rrf")):  # None: the reranker alone
    ranked = reranker.rerank(
        "how do I reset my password?", texts, first_stage_scores=bm25_scores, fusion=fusion
    )
    print(
        fusion,
        [(r.index, round(r.score, 3), r.reranker_score, r.first_stage_score) for r in ranked],
    )
