# pip install ".[langchain]"   (from a checkout of rerank-kit)
"""Listwise LLM reranking with a scripted LLM: in the engine and in LangChain."""

from langchain_core.documents import Document
from langchain_core.language_models import FakeListChatModel

from langchain_rerank_kit import ListwiseLLMRerank
from rerank_kit import ListwiseLLMReranker

passages = ["Refunds take 30 days.", "Reset a password in Settings.", "The VPN needs 5.2."]


def my_llm(prompt: str) -> str:  # your LLM client: prompt in, answer out
    return "[2] > [1] > [3]"


reranker = ListwiseLLMReranker(my_llm)
ranked = reranker.rerank("how do I reset my password?", passages)
print([(r.index, r.score) for r in ranked])  # scores are 1/rank
assert ranked[0].index == 1
print(reranker.stats)  # calls, repaired and unparsable answers

# in LangChain: any BaseChatModel (here a scripted one, whose answer is a repaired ordering)
chat_model = FakeListChatModel(responses=["2, 3"])  # passage 1 left out: it follows in input order
rerank = ListwiseLLMRerank(llm=chat_model, top_n=3)
docs = rerank.compress_documents([Document(page_content=p) for p in passages], "reset my password")
print(
    [(d.page_content, d.metadata["relevance_score"], d.metadata.get("llm_repaired")) for d in docs]
)
