# pip install ".[remote,bundled]"   (from a checkout of rerank-kit)
"""A self-hosted reranker over HTTP: a TEI-compatible /rerank server, and the spec that calls it.

The server here is a stand-in for Text Embeddings Inference (TEI) on your GPU machine: it
answers TEI's documented POST /rerank with the bundled cross-encoder, on 127.0.0.1. In
production you run TEI (or Infinity) itself and keep only the client lines.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rerank_kit import load_reranker

model = load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")


class TEIRerank(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        scores = model.score(body["query"], body["texts"])
        answer = json.dumps([{"index": i, "score": s} for i, s in enumerate(scores)]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:  # keep the example's output short
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), TEIRerank)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}"

# the client: the same engine calls, cascades, thresholds and adapters as a local model
reranker = load_reranker(f"tei:{url}", timeout=5, max_retries=2)
passages = ["Refunds take 30 days.", "Reset a password in Settings > Security.", "VPN: 5.2+"]
ranked = reranker.rerank("how do I reset my password?", passages, top_n=2)
print([(r.index, round(r.score, 3)) for r in ranked])
assert ranked[0].index == 1
# the same scores as the local model (TEI returns the cross-encoder's sigmoid)
assert abs(ranked[0].score - model.score("how do I reset my password?", passages)[1]) < 1e-6
server.shutdown()
