"""What tuning and fine-tuning buy on held-out queries: the measurements of the self-improvement issue.

For one BEIR collection, with the trained cross-encoder (the bundled int8
ms-marco-MiniLM-L-12-v2) and the bi-encoder all-MiniLM-L6-v2:

1. ``tune`` by 5-fold cross-fitting over every first stage (bm25, dense, hybrid), depths 20/50/100
   and score fusion (none, zscore/minmax/rrf at 0.1-0.9): every judged query held out once;
   default pipeline (``Fusion()`` on bm25 at depth 100) vs plain reranking vs tuned. The same for
   the cascade ``bi-encoder@KEEP >> cross-encoder``, whose first-stage keep is searched too.
2. Fine-tuning, on one seeded split (30% test, 10% dev, the rest training; the same test queries
   for every row): ``tune`` of the original model with ``test_size=0.3`` (bm25, depths 20/50),
   ``train`` (sentence-transformers' trainers, negatives mined from bm25's top 50, a step budget
   and 256-token training pairs: a 2-core CPU's budget),
   then ``tune`` of the fine-tuned model on the same split. The cross-encoder starts from
   ``bundled_cross_encoder_torch()``, the int8 weights dequantized to fp32. The tuned +
   fine-tuned pipeline is compared, query by query, with the original model's default and plain
   pipelines (paired bootstrap 95% intervals).

Every step's report goes to ``OUT`` (JSON) as soon as it is done; a rerun skips finished steps.
The cross-encoder's scores go to ``--score-cache`` (shared with ``rerank-kit eval
--score-cache``), so pairs an earlier evaluation scored are read, not scored again.

Usage:
    python benchmarks/self_improvement.py ../shared/data/beir/cranfield /tmp/si_cranfield.json \\
        --score-cache /tmp/scores_cranfield.jsonl --work /tmp/si-cranfield
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CE = "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"
BI = "bi-encoder:all-MiniLM-L6-v2"
STAGES = ["bm25", "dense", "hybrid"]
SPLIT_DEPTHS = (20, 50)


def say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def main() -> int:
    from rerank_kit.evaluation import bootstrap_ci, load_dataset, train, tune
    from rerank_kit.models import bundled_cross_encoder_torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--score-cache", required=True, help="the cross-encoder's score file")
    parser.add_argument("--work", required=True, help="models and their score files go here")
    parser.add_argument("--keep", type=int, default=30, help="cascade keep (searched from here)")
    parser.add_argument("--max-steps-ce", type=int, default=100, help="CPU budget (batches of 16)")
    parser.add_argument("--max-steps-bi", type=int, default=200, help="CPU budget (batches of 16)")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per training pair")
    parser.add_argument("--steps", default="all", help="comma-separated subset of the steps")
    args = parser.parse_args()

    data = load_dataset(args.data)
    out = Path(args.out)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    state.setdefault("dataset", data.name)
    state.setdefault("queries", len(data.queries))

    def save() -> None:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(out)

    def step(name: str, run: Any) -> dict[str, Any]:
        wanted = args.steps == "all" or name in args.steps.split(",")
        if name in state or not wanted:
            return state.get(name, {})
        say(f"[{data.name}] {name} ...")
        t0 = time.perf_counter()
        state[name] = run()
        state[name]["seconds"] = round(time.perf_counter() - t0, 1)
        save()
        say(f"[{data.name}] {name} done in {state[name]['seconds']:.0f} s")
        return state[name]

    ce_cache = args.score_cache
    cascade = f"{BI}@{args.keep} >> {CE}"
    cross: dict[str, Any] = {"folds": 5, "seed": 0, "first_stage": STAGES}
    step("crossfit_ce", lambda: tune(data, CE, score_cache=ce_cache, **cross).to_dict())
    step("crossfit_bi", lambda: tune(data, BI, **cross).to_dict())
    step("crossfit_cascade", lambda: tune(data, cascade, score_cache=ce_cache, **cross).to_dict())

    split: dict[str, Any] = {
        "test_size": 0.3,
        "seed": 0,
        "first_stage": "bm25",
        "depths": SPLIT_DEPTHS,
    }

    def tuned(spec: str, cache: str | None) -> dict[str, Any]:
        return tune(data, spec, score_cache=cache, **split).to_dict()

    for kind, spec, start, budget in (
        ("bi", BI, BI, args.max_steps_bi),
        ("ce", CE, None, args.max_steps_ce),
    ):
        cache = ce_cache if kind == "ce" else None
        base = step(f"split_{kind}", partial(tuned, spec, cache))
        model_dir = work / f"fine-tuned-{kind}"

        def fit(kind: str = kind, start: str | None = start, budget: int = budget) -> dict:
            if start is None:  # the trained cross-encoder, as fp32 torch weights
                start = f"cross-encoder:{bundled_cross_encoder_torch(work / 'ce-fp32')}"
            result = train(
                data,
                start,
                work / f"fine-tuned-{kind}",
                first_stage="bm25",
                depth=50,
                seed=0,
                max_steps=budget,
                max_length=args.max_length,
                show_progress=True,
            )
            return {"start": start, **result.to_dict()}

        trained = step(f"train_{kind}", fit)
        tuned_spec = f"onnx:{model_dir}" if kind == "ce" else f"bi-encoder:{model_dir}"
        after = step(
            f"split_fine_tuned_{kind}",
            partial(tuned, tuned_spec, str(work / f"scores-{kind}.jsonl")),
        )
        if base and after and trained:
            rows = {}
            for ref in ("default", "plain", "tuned"):
                diffs = [
                    after["per_query"][q]["tuned"] - base["per_query"][q][ref]
                    for q in base["per_query"]
                ]
                lo, hi = bootstrap_ci(diffs)
                rows[ref] = {
                    "mean": sum(diffs) / len(diffs),
                    "ci95": [lo, hi],
                    "better": sum(d > 1e-12 for d in diffs),
                    "worse": sum(d < -1e-12 for d in diffs),
                }
            state[f"fine_tuned_vs_original_{kind}"] = rows
            save()
    table(state)
    return 0


def table(state: dict[str, Any]) -> None:
    """Print the held-out tables."""
    w = sys.stdout.write
    w(f"\n{state['dataset']} ({state['queries']} judged queries)\n")
    for name in ("crossfit_ce", "crossfit_bi", "crossfit_cascade"):
        r = state.get(name)
        if not r:
            continue
        n = r["folds"]["held_out_queries"]
        w(f"\n{name}: 5-fold cross-fitting, {n} held-out queries; final {r['config']}\n")
        for label in ("default", "plain", "tuned"):
            w(f"  {label:8s} nDCG@10 {r[label]['nDCG@10']:.3f}  MRR@10 {r[label]['MRR@10']:.3f}\n")
        for label, d in (
            ("tuned-default", r["difference"]),
            ("tuned-plain", r["difference_vs_plain"]),
        ):
            lo, hi = d["ci95"]
            w(
                f"  {label:14s} {d['mean']:+.3f} [{lo:+.3f}, {hi:+.3f}] better {d['better']} worse {d['worse']}\n"
            )
        w(f"  chosen per fold: {r['chosen']}\n")
    for kind in ("ce", "bi"):
        base, after = state.get(f"split_{kind}"), state.get(f"split_fine_tuned_{kind}")
        trained = state.get(f"train_{kind}")
        if not (base and after and trained):
            continue
        n = base["folds"]["held_out_queries"]
        w(
            f"\nfine-tuning ({kind}): one split, {n} test queries, {trained['pairs']} training pairs, "
            f"{trained['steps']} steps\n"
        )
        w(
            f"  train: plain depth 50 before {trained['before']['nDCG@10']:.3f} after "
            f"{trained['after']['nDCG@10']:.3f}\n"
        )
        for label, r in (("original", base), ("fine-tuned", after)):
            w(
                f"  {label:10s} default {r['default']['nDCG@10']:.3f} plain {r['plain']['nDCG@10']:.3f} "
                f"tuned {r['tuned']['nDCG@10']:.3f}  final {r['config']}\n"
            )
        for ref, d in state.get(f"fine_tuned_vs_original_{kind}", {}).items():
            lo, hi = d["ci95"]
            w(
                f"  tuned+fine-tuned - original {ref:8s} {d['mean']:+.3f} [{lo:+.3f}, {hi:+.3f}] "
                f"better {d['better']} worse {d['worse']}\n"
            )


if __name__ == "__main__":
    sys.exit(main())
