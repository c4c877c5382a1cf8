# pip install ".[bundled]"   (from a checkout of rerank-kit)
from rerank_kit import load_reranker

passages = ["Refunds take 30 days.", "Reset a password in Settings > Security.", "The VPN needs 5.2."]
reranker = load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")  # or "flashrank:...", "cohere:...", "A@20 >> B"
for r in reranker.rerank("How do I reset my password?", passages, top_n=2):
    print(r.index, r.score)  # index into passages, plain float
