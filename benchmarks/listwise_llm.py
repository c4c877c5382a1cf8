"""What the listwise LLM reranker does with each answer shape, and how many calls a query costs.

Runs ``ListwiseLLMReranker`` (default window 20, step 10) with a scripted LLM, no model needed:

- the parser's repair table: each answer shape, the order it becomes, and whether it is flagged
  ``llm_repaired`` (one window of 5 passages);
- LLM calls per query for 20, 50 and 100 candidates, counted by the LLM itself, and whether the
  true top 10 ends on top when the oracle LLM orders each window perfectly (the sliding window's
  promise), with the 10 most relevant passages placed at the bottom of the input.

Usage:
    python benchmarks/listwise_llm.py
"""

from __future__ import annotations

import re

from rerank_kit import ListwiseLLMReranker

SHAPES = [
    ("[3] > [1] > [2] > [5] > [4]", "brackets, complete"),
    ("3, 1, 2, 5, 4", "comma list"),
    ("3 > 1 > 2 > 5 > 4", "bare numbers with >"),
    ("[3, 1, 2, 5, 4]", "JSON list"),
    ('```json\n["3", "1", "2", "5", "4"]\n```', "JSON strings in a code fence"),
    ("Ranking: [3] > [1] > [2] > [5] > [4].", "prose around brackets"),
    ("Ranking: [3] > [1] > [2] > [5] > [4]. [3] is best.", "prose repeating [3]"),
    ("[3] > [1]", "partial (3 missing)"),
    ("[3] > [3] > [1] > [2] > [5] > [4]", "duplicate"),
    ("[3] > [9] > [0] > [1] > [2] > [5] > [4]", "unknown numbers"),
    ("", "empty"),
    ("I cannot rank these.", "no number"),
]


def repair_table() -> None:
    print("| answer | shape | parsed order (1-based) | llm_repaired |")
    print("| --- | --- | --- | --- |")
    texts = [f"passage {i}" for i in range(1, 6)]
    for answer, label in SHAPES:
        reranker = ListwiseLLMReranker(lambda prompt, a=answer: a)
        run = reranker.run("query", texts)
        order = [r.index + 1 for r in run.ranked]
        flagged = run.ranked[0].llm_repaired
        shown = answer.replace("\n", "\\n").replace("|", "\\|") or "(empty)"
        print(f"| `{shown}` | {label} ({run.parsed[0].shape}) | {order} | {flagged} |")


_SHOWN = re.compile(r"^\[(\d+)\] doc(\d+)\b", re.MULTILINE)


def calls_per_query() -> None:
    print()
    print("| candidates | LLM calls (counted) | windows | true top 10 on top |")
    print("| --- | --- | --- | --- |")
    for n in (20, 50, 100):
        relevance = {i: (i - n + 11.0) if i >= n - 10 else -i / 1000 for i in range(n)}
        calls = 0

        def oracle(prompt: str, relevance: dict[int, float] = relevance) -> str:
            nonlocal calls
            calls += 1
            shown = [(int(a), int(b)) for a, b in _SHOWN.findall(prompt)]
            shown.sort(key=lambda x: -relevance[x[1]])
            return " > ".join(f"[{a}]" for a, _ in shown)

        reranker = ListwiseLLMReranker(oracle)
        run = reranker.run("query", [f"doc{i} text" for i in range(n)])
        top = [r.index for r in run.ranked[:10]]
        ok = top == list(range(n - 1, n - 11, -1))
        print(f"| {n} | {calls} | {run.windows} | {ok} |")


if __name__ == "__main__":
    repair_table()
    calls_per_query()
