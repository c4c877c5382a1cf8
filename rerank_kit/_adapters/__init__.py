"""The framework-neutral core of the LangChain and LlamaIndex adapters (imported only by them).

- ``settings``: the fields both frameworks' classes share (pydantic mixins, one description and
  one check each) and how each builds its engine reranker.
- ``build``: the builders (models, remote, listwise, ``from_config``) and the adapter-language
  errors for a missing model or extra.
- ``run``: ``run_rerank`` / ``arun_rerank`` with the failure policy, results as plain values.
- ``llm``: one wrapper from a framework LLM to ``str -> str`` callables (also used by
  ``rerank_kit.feedback``).

This ``__init__`` imports nothing, so ``rerank_kit._adapters.llm`` stays free of pydantic.
"""
