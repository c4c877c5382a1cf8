# pip install ".[bundled]"   (from a checkout of rerank-kit)
from rerank_kit import load_reranker

passages = ["Refunds take 30 days.", "Reset a password in Settings > Security.", "VPN: 5.2+"]
# or "flashrank:NAME", "cohere:MODEL", "tei:URL", a cascade "A@20 >> B", ...
reranker = load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")
for r in reranker.rerank("How do I reset my password?", passages, top_n=2):
    print(r.index, r.score)  # index into passages, plain float
