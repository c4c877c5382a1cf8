"""How well ``find_citations``' overlap rule finds the passages an answer used (no LLM).

Answers are **written from known passages** of a BEIR collection, with a seeded recipe:

- the passages shown are BM25's top 5 for a judged query; 1 to 3 of them (uniformly) are
  "used";
- from each used passage, 1 or 2 of its sentences go into the answer, either **copied** (half
  of them) or **paraphrased**: a third of the content words dropped, a quarter of the rest
  replaced by a generic word ("it", "this", "the result"), the clauses (split at commas)
  shuffled - a crude stand-in for an LLM's rewording that keeps fewer exact words than most;
- plus one generic filler sentence ("This depends on the conditions of the problem.") and, in
  half of the answers, one **distractor** sentence copied from a corpus document that was not
  shown (what a model adds from its own knowledge: it must cite nothing);
- sentences are shuffled.

The test collection is also measured with every used sentence paraphrased (none copied).

The truth is the set of used passages. Precision and recall are micro-averaged over (answer,
passage) pairs. The rule's settings (``threshold``, ``margin``, ``min_shared``) are chosen on
Cranfield and measured on CISI (and on Cranfield, where they were chosen).

Usage:
    python benchmarks/citation_rule.py ../shared/data/beir/cranfield ../shared/data/beir/cisi \\
        --out docs/citation_rule.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import sys
from pathlib import Path
from typing import Any

FILLERS = [
    "This depends on the conditions of the problem.",
    "In short, the answer is discussed in the literature.",
    "Hope this helps with the question.",
    "More details can be found in the references.",
]
GENERIC = ["it", "this", "the result", "such a case", "the method"]
_SENT = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    out = [s.strip() for s in _SENT.split(text) if len(s.split()) >= 5]
    return out or [text.strip()]


def paraphrase(sentence: str, rng: random.Random) -> str:
    clauses = [c.strip() for c in sentence.rstrip(".").split(",") if c.strip()]
    rng.shuffle(clauses)
    words = " , ".join(clauses).split()
    out = []
    for word in words:
        if len(word) > 3 and rng.random() < 1 / 3:
            continue  # dropped
        if len(word) > 3 and rng.random() < 0.25:
            out.append(rng.choice(GENERIC))
        else:
            out.append(word)
    return " ".join(out).replace(" ,", ",") + "."


def build_cases(
    data: Any, n_cases: int, seed: int, copy_share: float = 0.5
) -> list[dict[str, Any]]:
    """Answers written from known passages (see the module docstring)."""
    from rerank_kit.evaluation._first_stage import build_first_stages

    rng = random.Random(seed)
    (bm25,) = build_first_stages(["bm25"])
    bm25.index(data.corpus)
    ids = list(data.corpus)
    cases = []
    try:
        qids = list(data.queries)
        for qid in rng.sample(qids, min(n_cases, len(qids))):
            shown = [d for d, _ in bm25.search(data.queries[qid], 5)]
            used = sorted(rng.sample(range(len(shown)), rng.randint(1, min(3, len(shown)))))
            parts = []
            for i in used:
                pool = sentences(data.corpus[shown[i]].text)
                for s in rng.sample(pool, min(len(pool), rng.randint(1, 2))):
                    parts.append(s if rng.random() < copy_share else paraphrase(s, rng))
            parts.append(rng.choice(FILLERS))
            if rng.random() < 0.5:
                other = rng.choice([d for d in ids if d not in shown])
                parts.append(rng.choice(sentences(data.corpus[other].text)))
            rng.shuffle(parts)
            texts = [data.corpus[d].text for d in shown]
            cases.append({"answer": " ".join(parts), "passages": texts, "used": used})
    finally:
        bm25.close()
    return cases


def score(cases: list[dict[str, Any]], **settings: Any) -> dict[str, float]:
    from rerank_kit.citations import find_citations

    tp = fp = fn = 0
    for case in cases:
        got = set(find_citations(case["answer"], case["passages"], **settings))
        truth = set(case["used"])
        tp += len(got & truth)
        fp += len(got - truth)
        fn += len(truth - got)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "pairs": tp + fn}


def main() -> int:
    from rerank_kit.evaluation import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dev", help="BEIR folder the settings are chosen on (Cranfield)")
    parser.add_argument("test", help="BEIR folder they are measured on (CISI)")
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args()
    dev = build_cases(load_dataset(args.dev), args.cases, args.seed)
    test_data = load_dataset(args.test)
    test = build_cases(test_data, args.cases, args.seed + 1)
    hard = build_cases(test_data, args.cases, args.seed + 1, copy_share=0.0)
    grid = []
    for threshold, margin, shared in itertools.product(
        (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7), (0.0, 0.05, 0.1, 0.2), (2, 3)
    ):
        settings = {"threshold": threshold, "margin": margin, "min_shared": shared}
        grid.append((settings, score(dev, **settings)))
    best, _ = max(grid, key=lambda item: item[1]["f1"])
    from rerank_kit.citations import DEFAULT_MARGIN, DEFAULT_THRESHOLD

    default = {"threshold": DEFAULT_THRESHOLD, "margin": DEFAULT_MARGIN, "min_shared": 3}
    report = {
        "recipe": __doc__.split("Usage:")[0].strip(),
        "cases": {"dev": len(dev), "test": len(test)},
        "chosen_on_dev": best,
        "default": default,
        "dev": {"chosen": score(dev, **best), "default": score(dev, **default)},
        "test": {"chosen": score(test, **best), "default": score(test, **default)},
        "test_all_paraphrased": {
            "chosen": score(hard, **best),
            "default": score(hard, **default),
        },
        "grid_dev": [{**s, **m} for s, m in grid],
        "load_average": os.getloadavg(),
    }
    for split in ("dev", "test", "test_all_paraphrased"):
        for which in ("chosen", "default"):
            m = report[split][which]
            sys.stdout.write(
                f"{split:20} {which:7} P {m['precision']:.3f} R {m['recall']:.3f} "
                f"F1 {m['f1']:.3f} ({m['pairs']} cited pairs)\n"
            )
    sys.stdout.write(f"chosen on dev: {best}\n")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
