"""Context assembly: what happens between the reranker's scores and the prompt.

Steps, in order: ``boosts`` (metadata adjustments of the final score), ``dedupe``
(near-duplicates dropped), ``diversity`` (maximal marginal relevance), then
``score_threshold`` / ``top_n`` / ``token_budget`` together, then ``order``
(``"lost-in-the-middle"``). One module per step; ``plan`` runs them (see its docstring).
"""

from __future__ import annotations

from rerank_kit._core.assembly.plan import (
    SETTINGS,
    Assembly,
    AssemblySettings,
    Context,
    check_metadata,
)

__all__ = ["SETTINGS", "Assembly", "AssemblySettings", "Context", "check_metadata"]
