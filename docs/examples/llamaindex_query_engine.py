# pip install ".[llamaindex,bundled]"   (from a checkout of rerank-kit)
"""A LlamaIndex query engine with a reranking node postprocessor (no LLM: retrieval only)."""

from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.schema import TextNode

from llamaindex_rerank_kit import CrossEncoderRerank

nodes = [
    TextNode(
        id_="reset",
        text="To reset your password, open Settings > Security and click 'Reset password'.",
    ),
    TextNode(
        id_="refund",
        text="Refunds are issued within 30 days of purchase to the original payment method.",
    ),
    TextNode(
        id_="vpn", text="The VPN client needs version 5.2 or later; older clients cannot connect."
    ),
    TextNode(
        id_="printer",
        text="Printers on floor 3 are added from the Devices page with their IP address.",
    ),
    TextNode(id_="login", text="Two failed logins lock the account for 15 minutes."),
]
Settings.llm = None  # no LLM here (LlamaIndex would otherwise ask for llama-index-llms-openai)
# MockEmbedding needs no download (its vectors carry no meaning: the reranker orders the nodes)
index = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))

rerank = CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-12-v2", top_n=2)
engine = index.as_query_engine(
    similarity_top_k=5, node_postprocessors=[rerank], response_mode="no_text"
)
response = engine.query("How do I reset my password?")  # or: await engine.aquery(...)
for n in response.source_nodes:
    print(n.node.node_id, round(n.score, 3), n.retrieval_score)  # rerank score, first-stage score
assert response.source_nodes[0].node.node_id == "reset"
