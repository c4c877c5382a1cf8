# pip install ".[bundled]"   (from a checkout of rerank-kit)
"""Long passages scored in token windows (best window) instead of cut at the model's limit."""

from rerank_kit import CrossEncoderReranker

topics = [
    "Chapter {i}: the office kitchen is cleaned on weekday evenings.",
    "Chapter {i}: meeting rooms are booked from the calendar.",
    "Chapter {i}: expense claims are filed by the fifth of each month.",
    "Chapter {i}: visitors sign in at the front desk.",
]
handbook = " ".join(t.format(i=i) for i in range(1, 31) for t in topics)  # ~1,000 tokens
handbook += (
    " Chapter 31: to reset your password, open Settings > Security and click 'Reset password'."
)
passages = [handbook, "Refunds are issued within 30 days of purchase."]
query = "how do I reset my password?"

cut = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-12-v2")  # long_documents="truncate"
windows = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-12-v2", long_documents="max")
for name, reranker in (("truncate", cut), ("max", windows)):
    ranked = reranker.rerank(query, passages)
    print(name, [(r.index, f"{r.score:.5f}", r.truncated) for r in ranked])
# cut at 512 tokens the handbook never shows its answer; scored in windows, its last window does
assert windows.score(query, passages)[0] > 10 * cut.score(query, passages)[0]
assert windows.rerank(query, passages)[0].index == 0
