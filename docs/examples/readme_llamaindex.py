# pip install ".[llamaindex,bundled]"   (from a checkout of rerank-kit)
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding  # no download; use your embed_model
from llama_index.core.schema import TextNode

from llamaindex_rerank_kit import CrossEncoderRerank

Settings.llm = None  # retrieval only; set your LLM to get answers
texts = ["Refunds take 30 days.", "Reset a password in Settings > Security.", "VPN: 5.2+"]
nodes = [TextNode(text=t) for t in texts]
index = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))
rerank = CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-12-v2", top_n=1)
engine = index.as_query_engine(
    similarity_top_k=3, node_postprocessors=[rerank], response_mode="no_text"
)
best = engine.query("How do I reset my password?").source_nodes[0]
print(best.node.get_content(), best.score)  # the best node, its rerank score
