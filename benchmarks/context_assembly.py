"""Context assembly on a duplicate-rich Cranfield: near-duplicates, diversity, token budgets, cost.

The collection is built in memory from a BEIR folder (``rerank_kit.evaluation.
with_near_duplicates``, ``--seed``): every judged document gets one to three copies with small
edits (a changed word, a reordered sentence, an added boilerplate line), judged like the
original. BM25 retrieves ``--depth`` candidates for each of the first ``--queries`` queries;
the bundled int8 cross-encoder (ms-marco-MiniLM-L-12-v2) scores them once, through a
persistent score cache (``--score-cache``), and every variant below reranks the same candidates
through ``Reranker.rerank`` with its context-assembly settings (the cache makes the scores a
lookup).

Reported:

- quality: nDCG@10 counting each original once (copies after the first of a group removed),
  nDCG@10 as judged (copies count as relevant), and the share of the top 5 held by a copy of a
  passage ranked above it, for the cross-encoder alone, with ``dedupe`` (lexical and cosine)
  and with ``diversity`` at two weights;
- ``token_budget`` 256 / 512 / 1024 (the cross-encoder's tokenizer): the share of the budget
  filled, passages kept and de-duplicated nDCG@10 of what was kept, against plain ``top_n``
  cuts of the same average size (and how often such a cut overflows the budget);
- similarity of true near-duplicate pairs and of other pairs among the candidates (why the
  thresholds);
- cost: each step's time for ``--cost-candidates`` candidates as a ratio to the reranking time
  of the same candidates, measured side by side (scores not cached there).

Usage:
    python benchmarks/context_assembly.py ../shared/data/beir/cranfield --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rerank_kit import Ranked, Reranker, load_reranker
from rerank_kit._core.assembly import Assembly
from rerank_kit._core.assembly.similarity import (
    LexicalSimilarity,
    embed,
    load_similarity_model,
)
from rerank_kit.evaluation import (
    BM25FirstStage,
    deduplicated_ndcg_at_k,
    load_dataset,
    ndcg_at_k,
    near_duplicate_share,
    with_near_duplicates,
)

RERANKER = "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"
SIMILARITY_MODEL = "bi-encoder:all-MiniLM-L6-v2"


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _ids(ranked: Sequence[Ranked], hits: Sequence[tuple[str, float]]) -> list[str]:
    return [hits[r.index][0] for r in ranked]


def _similarity_check(
    runs: list[tuple[list[str], list[str]]], originals: dict[str, str], model: Any
) -> dict[str, Any]:
    """Lexical and cosine similarity of near-duplicate pairs and of other pairs."""
    out: dict[str, Any] = {}
    for name in ("lexical", "cosine"):
        dup, other = [], []
        for ids, texts in runs:
            if name == "lexical":
                sim: Callable[[int, int], float] = LexicalSimilarity(texts)
            else:
                vectors = embed(model, texts)
                sim = lambda i, j, v=vectors: float(v[i] @ v[j])  # noqa: E731
            for i in range(len(ids)):
                for j in range(i + 1, len(ids)):
                    same = originals[ids[i]] == originals[ids[j]]
                    (dup if same else other).append(sim(i, j))
        dup.sort()
        other.sort()
        out[name] = {
            "duplicate_pairs": len(dup),
            "other_pairs": len(other),
            "duplicate_min": dup[0] if dup else None,
            "duplicate_p05": dup[len(dup) // 20] if dup else None,
            "other_p999": other[int(len(other) * 0.999)] if other else None,
            "other_max": other[-1] if other else None,
        }
    return out


def quality(
    reranker: Reranker,
    queries: list[tuple[str, str, list[tuple[str, float]], list[str]]],
    qrels: dict[str, Any],
    originals: dict[str, str],
    variants: dict[str, dict[str, Any]],
) -> dict[str, dict[str, float]]:
    """De-duplicated and as-judged nDCG@10 and near-duplicate share of each variant."""
    rows: dict[str, dict[str, list[float]]] = {}
    for qid, query, hits, texts in queries:
        for name, options in variants.items():
            ids = _ids(reranker.rerank(query, texts, **options), hits)
            row = rows.setdefault(name, {"dedup": [], "judged": [], "dups5": [], "kept": []})
            row["dedup"].append(deduplicated_ndcg_at_k(ids, qrels[qid], originals, 10))
            row["judged"].append(ndcg_at_k(ids, qrels[qid], 10))
            row["dups5"].append(near_duplicate_share(ids, originals, 5))
            row["kept"].append(float(len(ids)))
    return {
        name: {
            "ndcg10_dedup": _mean(r["dedup"]),
            "ndcg10_judged": _mean(r["judged"]),
            "duplicates_top5": _mean(r["dups5"]),
            "kept": _mean(r["kept"]),
        }
        for name, r in rows.items()
    }


def budgets(
    reranker: Reranker,
    queries: list[tuple[str, str, list[tuple[str, float]], list[str]]],
    qrels: dict[str, Any],
    originals: dict[str, str],
    sizes: Sequence[int],
    extra: dict[str, Any],
) -> list[dict[str, Any]]:
    """``token_budget`` against plain ``top_n`` cuts of the same average size."""
    count = reranker.__dict__["_assembly_token_counter"]
    rows = []
    for budget in sizes:
        filled, kept, ndcg, plain_runs = [], [], [], []
        for qid, query, hits, texts in queries:
            ranked = reranker.rerank(query, texts, token_budget=budget, **extra)
            filled.append(sum(r.tokens or 0 for r in ranked) / budget)
            kept.append(len(ranked))
            ndcg.append(deduplicated_ndcg_at_k(_ids(ranked, hits), qrels[qid], originals, 10))
            plain_runs.append((qid, query, hits, texts))
        n = max(1, round(_mean(kept)))
        cut_ndcg, cut_fill, over = [], [], 0
        for qid, query, hits, texts in plain_runs:
            ranked = reranker.rerank(query, texts, top_n=n, **extra)
            tokens = sum(count([texts[r.index] for r in ranked]))
            cut_fill.append(tokens / budget)
            over += tokens > budget
            cut_ndcg.append(deduplicated_ndcg_at_k(_ids(ranked, hits), qrels[qid], originals, 10))
        rows.append(
            {
                "budget": budget,
                "filled": _mean(filled),
                "kept": _mean(kept),
                "ndcg10_dedup": _mean(ndcg),
                "top_n": n,
                "top_n_filled": _mean(cut_fill),
                "top_n_over_budget": over / len(plain_runs),
                "top_n_ndcg10_dedup": _mean(cut_ndcg),
            }
        )
    return rows


def _timed(call: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def cost(
    spec: str,
    queries: list[tuple[str, str, list[tuple[str, float]], list[str]]],
    steps: dict[str, dict[str, Any]],
    similarity_model: str,
    repeats: int,
) -> dict[str, Any]:
    """Each step's time as a ratio to the reranking time of the same candidates."""
    reranker = load_reranker(spec)  # no score cache: every pair is scored
    model = load_similarity_model(similarity_model)
    reranker.rerank(queries[0][1], queries[0][3][:8])  # warm-up, untimed
    rng = random.Random(0)
    ratios: dict[str, list[float]] = {name: [] for name in steps}
    seconds: dict[str, list[float]] = {"rerank": [], **{name: [] for name in steps}}
    for _, query, _, texts in queries:
        start = time.perf_counter()
        ranked = reranker.rerank(query, texts)
        rerank_s = time.perf_counter() - start
        seconds["rerank"].append(rerank_s)
        metadata = [
            {"updated_at": 1.7e9 + rng.uniform(0, 1e8), "source": rng.choice("abc")} for _ in texts
        ]
        live = [r.index for r in ranked if not r.empty]
        for name, options in steps.items():
            plan = Assembly.build(**options)
            if plan is None:
                continue
            cold = "cold embeddings" in name

            def step(
                plan: Assembly = plan,
                cold: bool = cold,
                texts: list[str] = texts,
                live: list[int] = live,
                ranked: list[Ranked] = ranked,
                metadata: list[dict[str, Any]] = metadata,
            ) -> None:
                if cold:
                    model.clear_cache()
                context = plan.prepare(texts, live, reranker)
                plan.apply(ranked, texts, context=context, metadata=metadata)

            elapsed = _timed(step, repeats)
            seconds[name].append(elapsed)
            ratios[name].append(elapsed / rerank_s)
    return {
        "candidates": len(queries[0][3]),
        "queries": len(queries),
        "rerank_seconds_median": statistics.median(seconds["rerank"]),
        "steps": {
            name: {
                "seconds_median": statistics.median(seconds[name]),
                "ratio_median": statistics.median(ratios[name]),
            }
            for name in steps
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="BEIR folder (Cranfield)")
    parser.add_argument("--reranker", default=RERANKER)
    parser.add_argument("--similarity-model", default=SIMILARITY_MODEL)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--depth", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dedupe", type=float, default=0.5, help="lexical threshold")
    parser.add_argument("--dedupe-cosine", type=float, default=0.9, help="cosine threshold")
    parser.add_argument("--diversity", type=float, nargs=2, default=[0.3, 0.7])
    parser.add_argument("--budgets", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--cost-queries", type=int, default=3)
    parser.add_argument("--cost-candidates", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--score-cache",
        default=str(Path("/tmp/rerank-kit-bench/context_assembly_scores.jsonl")),
        help="persistent score cache (outside the project)",
    )
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    base = load_dataset(args.data)
    data, originals = with_near_duplicates(base, seed=args.seed)
    data = data.head(args.queries)
    _log(f"{data.name}: {len(data.corpus)} documents ({len(base.corpus)} originals)")
    bm25 = BM25FirstStage()
    bm25.index(data.corpus)
    depth = max(args.depth, args.cost_candidates)
    queries = []
    for qid, query in data.queries.items():
        hits = bm25.search(query, depth)
        queries.append((qid, query, hits, [data.corpus[d].full_text for d, _ in hits]))
    shallow = [(q, t, h[: args.depth], x[: args.depth]) for q, t, h, x in queries]
    Path(args.score_cache).parent.mkdir(parents=True, exist_ok=True)
    reranker = load_reranker(args.reranker, score_cache=args.score_cache)
    model = load_similarity_model(args.similarity_model)
    qrels = {qid: dict(grades) for qid, grades in data.qrels.items()}

    _log("similarity of near-duplicate pairs and other pairs")
    sims = _similarity_check([(_ids_of(h), x) for _, _, h, x in shallow], originals, model)
    low, high = args.diversity
    variants: dict[str, dict[str, Any]] = {
        "cross-encoder alone": {},
        f"dedupe={args.dedupe} (lexical)": {"dedupe": args.dedupe},
        f"dedupe={args.dedupe_cosine} (cosine)": {
            "dedupe": args.dedupe_cosine,
            "similarity_model": model,
        },
        f"diversity={low} (lexical)": {"diversity": low},
        f"diversity={high} (lexical)": {"diversity": high},
        f"diversity={low} (cosine)": {"diversity": low, "similarity_model": model},
        f"dedupe={args.dedupe} + diversity={low} (lexical)": {
            "dedupe": args.dedupe,
            "diversity": low,
        },
    }
    _log(f"quality: {len(shallow)} queries, {args.depth} candidates each")
    start = time.perf_counter()
    table = quality(reranker, shallow, qrels, originals, variants)
    _log(f"  {time.perf_counter() - start:.0f} s")
    reranker.rerank("warm", ["the counter"], token_budget=10)  # builds the token counter
    _log("token budgets")
    budget_rows = budgets(reranker, shallow, qrels, originals, args.budgets, {})
    budget_dedupe = budgets(
        reranker, shallow, qrels, originals, args.budgets, {"dedupe": args.dedupe}
    )
    _log(f"cost: {args.cost_queries} queries, {args.cost_candidates} candidates, uncached")
    timing = [(q, t, h, x[: args.cost_candidates]) for q, t, h, x in queries[: args.cost_queries]]
    steps: dict[str, dict[str, Any]] = {
        "boosts (recency + field value)": {
            "boosts": [
                {"field": "updated_at", "half_life_days": 30, "weight": 0.2},
                {"field": "source", "values": {"a": 0.1}},
            ]
        },
        f"dedupe={args.dedupe} (lexical)": {"dedupe": args.dedupe},
        f"dedupe={args.dedupe_cosine} (cosine, cold embeddings)": {
            "dedupe": args.dedupe_cosine,
            "similarity_model": model,
        },
        f"dedupe={args.dedupe_cosine} (cosine, cached embeddings)": {
            "dedupe": args.dedupe_cosine,
            "similarity_model": model,
        },
        f"diversity={low} (lexical)": {"diversity": low},
        f"diversity={low} (cosine, cached embeddings)": {
            "diversity": low,
            "similarity_model": model,
        },
        "token_budget=512 (tokenizer)": {"token_budget": 512},
        "order=lost-in-the-middle": {"order": "lost-in-the-middle"},
    }
    costs = cost(args.reranker, timing, steps, args.similarity_model, args.repeats)
    result = {
        "settings": {
            "data": str(args.data),
            "collection": data.name,
            "documents": len(data.corpus),
            "queries": len(shallow),
            "depth": args.depth,
            "seed": args.seed,
            "reranker": reranker.name,
            "similarity_model": model.name,
        },
        "similarity": sims,
        "quality": table,
        "token_budget": budget_rows,
        "token_budget_with_dedupe": budget_dedupe,
        "cost": costs,
    }
    _print(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def _ids_of(hits: Sequence[tuple[str, float]]) -> list[str]:
    return [d for d, _ in hits]


def _print(result: dict[str, Any]) -> None:
    s = result["settings"]
    print(
        f"{s['collection']}: {s['documents']} documents, {s['queries']} queries, "
        f"BM25 top {s['depth']}, {s['reranker']}"
    )
    print("\n| system | nDCG@10 (de-duplicated) | nDCG@10 (as judged) | near-dups in top 5 |")
    print("|---|---|---|---|")
    for name, row in result["quality"].items():
        print(
            f"| {name} | {row['ndcg10_dedup']:.4f} | {row['ndcg10_judged']:.4f} "
            f"| {100 * row['duplicates_top5']:.1f}% |"
        )
    for key, title in (("token_budget", ""), ("token_budget_with_dedupe", " (with dedupe)")):
        print(
            f"\n| token_budget{title} | filled | kept | nDCG@10 | top_n cut | filled "
            "| over budget | nDCG@10 |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for row in result[key]:
            print(
                f"| {row['budget']} | {100 * row['filled']:.1f}% | {row['kept']:.1f} "
                f"| {row['ndcg10_dedup']:.4f} | {row['top_n']} "
                f"| {100 * row['top_n_filled']:.1f}% | {100 * row['top_n_over_budget']:.0f}% "
                f"| {row['top_n_ndcg10_dedup']:.4f} |"
            )
    c = result["cost"]
    print(
        f"\ncost for {c['candidates']} candidates ({c['queries']} queries; reranking "
        f"{c['rerank_seconds_median']:.2f} s median)"
    )
    print("| step | ms (median) | ratio to reranking |")
    print("|---|---|---|")
    for name, row in c["steps"].items():
        print(f"| {name} | {1000 * row['seconds_median']:.1f} | {row['ratio_median']:.4f} |")
    print("\nsimilarity among the candidates")
    for name, row in result["similarity"].items():
        print(f"  {name}: {row}")


if __name__ == "__main__":
    raise SystemExit(main())
