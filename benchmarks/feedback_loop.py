"""The loop, end to end and with no LLM: a simulated application learns from its own feedback log.

For one BEIR collection (Cranfield, CISI), with BM25 as first stage and the bundled cross-encoder
(int8 ms-marco-MiniLM-L-12-v2) as reranker:

1. The judged queries are split once (seeded) into a **training fold** (where users ask) and a
   fixed **held-out fold** (never logged; only measured).
2. The application starts with the **default pipeline** (the cross-encoder over BM25's top
   ``depth``, with the documented default fusion ``Fusion()``; what ``tune`` calls default).
   Queries arrive one at a time, drawn with replacement from the training fold. The current
   pipeline shows its **top 5**; a simulated answer **cites** each shown passage that is
   judged relevant, except a share ``missed`` of them, and each shown passage judged not
   relevant with probability ``false_cite`` (citation noise). A real ``FeedbackRecorder`` logs
   the record and its ``cited`` event to a JSON-lines file.
3. Every ``retune_every`` logged queries, the loop runs what the documented cron job runs:
   the log becomes judgments (``feedback_dataset``: cited = relevant, shown above a citation and
   not cited = not relevant, ``min_evidence=1``), ``tune`` cross-fits the pipeline's settings
   (reranker or none, depth, fusion method and weight) on them, and the new config is shipped
   **only if its cross-fitted gain over the default, on the feedback judgments, is positive**;
   otherwise the old config stays.
4. After 25, 50, 100 and 200 logged queries, the shipped pipeline, the default pipeline and the
   first stage alone (BM25: the only first stage here, so the best one) are measured on the
   held-out fold with the collection's own judgments (nDCG@10).

Each noise level is run with several seeds (arrival orders); the report gives the mean over
seeds and a paired bootstrap 95% interval over the held-out queries (each query's difference
averaged over the seeds first). A reference row tunes on the training fold's *true*
judgments (what perfect feedback on every training query would give).

Every pair score goes to ``--score-cache`` (the cross-encoder scores each (query, passage)
once, whatever the number of retunes). CPU budget: ``--depth`` (default 20; the tuned depths are
10 and 20) and ``--limit-queries`` shrink the run.

Usage:
    python benchmarks/feedback_loop.py ../shared/data/beir/cisi docs/feedback_loop_cisi_gain.json \\
        --score-cache /tmp/scores_cisi.jsonl --work /tmp/loop-cisi
    python benchmarks/feedback_loop.py --plot docs/feedback_loop.png docs/feedback_loop_*.json

The band around each curve is the 95% interval of its gain over the default pipeline, drawn
around the curve.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CE = "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"
CHECKPOINTS = (25, 50, 100, 200)
#: name -> (share of relevant shown passages the answer misses, share of irrelevant ones cited)
NOISE = {"low": (0.1, 0.05), "high": (0.3, 0.2)}
SHOWN = 5


def say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def norm(query: str) -> str:
    return " ".join(query.split())


def prepare(data: Any, depth: int, cache: Any) -> dict[str, Any]:
    """BM25's top ``depth`` and the cross-encoder's scores for every query (cached)."""
    from rerank_kit._core.fusion import query_length
    from rerank_kit._registry import load_reranker
    from rerank_kit.evaluation._compare import attach_score_cache
    from rerank_kit.evaluation._first_stage import build_first_stages
    from rerank_kit.learning._tune_search import Scored

    (bm25,) = build_first_stages(["bm25"])
    bm25.index(data.corpus)
    model = load_reranker(CE)
    attach_score_cache(model, cache)
    scored = {}
    started = time.time()
    try:
        for n, (qid, query) in enumerate(data.queries.items(), start=1):
            hits = bm25.search(query, depth)
            ids = [d for d, _ in hits]
            final = model.score(query, [data.corpus[d].full_text for d in ids])
            scored[qid] = Scored(ids, [s for _, s in hits], list(final), [], query_length(query))
            if n % 10 == 0:
                say(f"  scored {n}/{len(data.queries)} queries ({time.time() - started:.0f} s)")
    finally:
        bm25.close()
    return scored


def setting_of(config: Any, depth: int) -> Any:
    """The tune ``Setting`` a ``PipelineConfig`` stands for."""
    from rerank_kit._rerankers.first_stage import FIRST_STAGE_ONLY
    from rerank_kit.learning._tune_search import Setting

    if config.first_stage_only:
        return Setting(FIRST_STAGE_ONLY, "bm25", depth, None, "zscore")
    return Setting(
        CE,
        "bm25",
        config.depth,
        config.fusion,
        config.fusion_method or "zscore",
        None,
        config.fusion_long,
        config.long_query_tokens,
    )


def ranking(setting: Any, item: Any) -> list[str]:
    if setting.first_stage_only:
        return list(item.ids)
    order, _ = item.order(setting, [])
    return [item.ids[i] for i in order] + item.ids[setting.depth :]


def held_out(setting: Any, scored: dict[str, Any], data: Any, test: list[str]) -> dict[str, float]:
    from rerank_kit.evaluation._metrics import evaluate_run

    run = {q: ranking(setting, scored[q]) for q in test}
    _, per = evaluate_run(run, {q: data.qrels[q] for q in test}, k=10)
    return {q: per[q]["nDCG@10"] for q in test}


def run_tune(data: Any, depths: list[int], cache: Any, seed: int) -> Any:
    from rerank_kit.learning._tune import tune

    folds = min(5, len(data.queries))
    return tune(data, [CE], first_stage="bm25", depths=depths, folds=folds, seed=seed,
                score_cache=cache)  # fmt: skip


def simulate(
    data: Any,
    scored: dict[str, Any],
    train: list[str],
    test: list[str],
    noise: tuple[float, float],
    seed: int,
    args: argparse.Namespace,
    cache: Any,
    log: Path,
) -> dict[int, dict[str, Any]]:
    """One arrival order: the shipped pipeline's held-out nDCG per query at each checkpoint."""
    from rerank_kit import FeedbackRecorder, Fusion
    from rerank_kit.learning._feedback import feedback_dataset
    from rerank_kit.learning._tune_search import Setting

    missed, false_cite = noise
    rng = random.Random(seed)
    for old in log.parent.glob(log.name + "*"):
        old.unlink()
    recorder = FeedbackRecorder(log, fsync="never")
    default = Setting(CE, "bm25", args.depth, Fusion().weight, Fusion().method)
    current, label = default, "default"
    shipped = kept = 0
    out: dict[int, dict[str, Any]] = {}
    for n in range(1, max(CHECKPOINTS) + 1):
        qid = rng.choice(train)
        shown = ranking(current, scored[qid])[:SHOWN]
        judged = data.qrels[qid]
        cited = [
            d
            for d in shown
            if (judged.get(d, 0) > 0 and rng.random() >= missed)
            or (judged.get(d, 0) <= 0 and rng.random() < false_cite)
        ]
        texts = [data.corpus[d].full_text for d in shown]
        rid = recorder.record(norm(data.queries[qid]), texts, ids=shown, pipeline=label)
        if cited:
            recorder.cited(rid, cited)
        if n % args.retune_every == 0:
            try:
                feedback, _ = feedback_dataset(log, data.corpus)
            except ValueError:
                feedback = None
            if feedback is not None and len(feedback.queries) >= 2:
                result = run_tune(feedback, args.depths, cache, seed)
                gain = result.difference["mean"]
                if args.ship_if == "ci":  # the whole 95% interval above zero, not its mean
                    gain = result.difference["ci95"][0]
                if gain > 0:
                    current, label = setting_of(result.config, args.depth), result.config.reranker
                    shipped += 1
                else:
                    kept += 1
        if n in CHECKPOINTS:
            out[n] = {
                "per_query": held_out(current, scored, data, test),
                "setting": current.label,
                "shipped": shipped,
                "kept": kept,
            }
    return out


def summarise(runs: list[dict[int, dict[str, Any]]], base: dict[str, dict[str, float]]) -> Any:
    from rerank_kit.learning._tune_report import bootstrap_ci

    rows = {}
    test = list(base["default"])
    for n in CHECKPOINTS:
        tuned = {q: statistics.fmean(r[n]["per_query"][q] for r in runs) for q in test}
        row: dict[str, Any] = {
            "tuned": statistics.fmean(tuned.values()),
            "tuned_per_seed": [statistics.fmean(r[n]["per_query"].values()) for r in runs],
            "settings": [r[n]["setting"] for r in runs],
            "retunes_shipped": [r[n]["shipped"] for r in runs],
            "retunes_kept_old": [r[n]["kept"] for r in runs],
        }
        for name, values in base.items():
            diffs = [tuned[q] - values[q] for q in test]
            row[f"gain_vs_{name}"] = statistics.fmean(diffs)
            row[f"ci95_vs_{name}"] = list(bootstrap_ci(diffs))
        rows[n] = row
    return rows


def main() -> int:
    from rerank_kit import Fusion, ScoreCache
    from rerank_kit.evaluation import load_dataset
    from rerank_kit.learning._tune_search import Setting, split_queries_into_folds

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--score-cache", required=True)
    parser.add_argument("--work", required=True, help="folder for the simulated logs")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--retune-every", type=int, default=25)
    parser.add_argument("--test-share", type=float, default=0.4)
    parser.add_argument("--limit-queries", type=int)
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument(
        "--ship-if",
        choices=["gain", "ci"],
        default="gain",
        help="ship a retuned config when its cross-fitted gain over the default on the feedback "
        "judgments is positive (gain), or when its 95%% interval's lower end is (ci)",
    )
    args = parser.parse_args()
    args.depths = sorted({10, args.depth})
    data = load_dataset(args.data)
    if args.limit_queries:
        data = data.head(args.limit_queries)
    data = type(data)(
        data.name, data.corpus, {q: norm(t) for q, t in data.queries.items()}, data.qrels
    )
    cache = ScoreCache(10**6, path=args.score_cache)
    started = time.time()
    say(f"{data}: scoring BM25's top {args.depth} (load {os.getloadavg()[0]:.1f})")
    scored = prepare(data, args.depth, cache)
    scoring_s = time.time() - started
    if args.prepare_only:
        return 0
    (held,) = split_queries_into_folds(list(data.queries), 2, 0, args.test_share)
    test = [q for q in data.queries if q in set(held)]
    train = [q for q in data.queries if q not in set(held)]
    say(f"{len(train)} training queries, {len(test)} held out")
    default = Setting(CE, "bm25", args.depth, Fusion().weight, Fusion().method)
    from rerank_kit._rerankers.first_stage import FIRST_STAGE_ONLY

    bm25 = Setting(FIRST_STAGE_ONLY, "bm25", args.depth, None, "zscore")
    base = {
        "default": held_out(default, scored, data, test),
        "first_stage": held_out(bm25, scored, data, test),
    }
    train_data = type(data)(data.name, data.corpus, {q: data.queries[q] for q in train}, data.qrels)
    oracle = run_tune(train_data, args.depths, cache, 0)
    oracle_setting = setting_of(oracle.config, args.depth)
    base_means = {k: statistics.fmean(v.values()) for k, v in base.items()}
    oracle_q = held_out(oracle_setting, scored, data, test)
    report: dict[str, Any] = {
        "dataset": data.name,
        "queries": {"train": len(train), "held_out": len(test)},
        "depth": args.depth,
        "depths_tuned": args.depths,
        "shown": SHOWN,
        "retune_every": args.retune_every,
        "ship_if": args.ship_if,
        "seeds": args.seeds,
        "noise": {k: {"missed": v[0], "false_cite": v[1]} for k, v in NOISE.items()},
        "default": base_means["default"],
        "first_stage": base_means["first_stage"],
        "true_judgments_reference": {
            "tuned": statistics.fmean(oracle_q.values()),
            "setting": oracle_setting.label,
        },
        "curves": {},
        "scoring_s": scoring_s,
        "load_average_start": os.getloadavg(),
    }
    for name, noise in NOISE.items():
        runs = []
        for seed in range(args.seeds):
            t0 = time.time()
            log = Path(args.work) / f"{data.name}-{name}-{seed}.jsonl"
            log.parent.mkdir(parents=True, exist_ok=True)
            runs.append(simulate(data, scored, train, test, noise, seed, args, cache, log))
            say(f"  {name} noise, seed {seed}: {time.time() - t0:.0f} s")
        report["curves"][name] = summarise(runs, base)
    report["load_average_end"] = os.getloadavg()
    report["wall_s"] = time.time() - started
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    table(report)
    return 0


def table(report: dict[str, Any]) -> None:
    say(
        f"{report['dataset']}: default {report['default']:.3f}, BM25 {report['first_stage']:.3f}"
        f", tuned on true judgments {report['true_judgments_reference']['tuned']:.3f}"
    )
    for name, rows in report["curves"].items():
        for n, row in rows.items():
            lo, hi = row["ci95_vs_default"]
            lo2, hi2 = row["ci95_vs_first_stage"]
            say(
                f"  {name:4} {n:>4}: tuned {row['tuned']:.3f}  vs default "
                f"{row['gain_vs_default']:+.3f} [{lo:+.3f}, {hi:+.3f}]  vs BM25 "
                f"{row['gain_vs_first_stage']:+.3f} [{lo2:+.3f}, {hi2:+.3f}]"
            )


def plot(out: str, reports: list[str]) -> None:
    """The learning curves of several reports, one panel per collection (and depth)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, list[dict[str, Any]]] = {}
    for path in reports:
        report = json.loads(Path(path).read_text())
        panels.setdefault(f"{report['dataset']}, depth {report['depth']}", []).append(report)
    cols = min(2, len(panels))
    rows_n = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.5 * cols, 4.2 * rows_n), squeeze=False)
    xs = list(CHECKPOINTS)
    for ax, (title, group) in zip(axes.flat, panels.items(), strict=False):
        for report in group:
            rule = report.get("ship_if", "gain")
            for name, marker in (("low", "o"), ("high", "s")):
                rows = [report["curves"][name][str(n)] for n in xs]
                ys = [row["tuned"] for row in rows]
                noise = report["noise"][name]
                label = f"ship if {'mean gain' if rule == 'gain' else 'CI low end'} > 0, "
                label += f"{noise['missed']:.0%} missed / {noise['false_cite']:.0%} false cites"
                style = "-" if rule == "gain" else ":"
                ax.plot(xs, ys, style, marker=marker, label=label)
                if rule == "gain":
                    lo = [r["tuned"] - r["gain_vs_default"] + r["ci95_vs_default"][0] for r in rows]
                    hi = [r["tuned"] - r["gain_vs_default"] + r["ci95_vs_default"][1] for r in rows]
                    ax.fill_between(xs, lo, hi, alpha=0.12)
        report = group[0]
        ax.axhline(report["default"], color="grey", label="default pipeline")
        ax.axhline(report["first_stage"], color="black", linestyle=":", label="BM25 alone")
        ref = report["true_judgments_reference"]["tuned"]
        ax.axhline(ref, color="green", linestyle="-.", label="tuned on true judgments")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel("logged queries")
        ax.set_ylabel("held-out nDCG@10")
        ax.set_title(f"{title} ({report['queries']['held_out']} held-out queries)")
    axes[0][0].legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def _f(value: float) -> str:
    """A signed difference to 3 decimals, without a negative zero."""
    return f"{value + 0.0:+.3f}" if abs(value) >= 5e-4 else "+0.000"


def markdown(reports: list[str]) -> str:
    """The learning curves as two Markdown tables (for the docs page): the reference points, and
    the shipped pipeline's held-out gain over the default after each number of logged queries."""
    loaded = [json.loads(Path(p).read_text()) for p in reports]
    head = [
        "| collection | depth | held-out queries | default | BM25 alone | default - BM25 "
        "| tuned on true judgments |",
        "|---|---|---|---|---|---|---|",
    ]
    seen = set()
    for r in loaded:
        key = (r["dataset"], r["depth"])
        if key in seen:
            continue
        seen.add(key)
        head.append(
            f"| {r['dataset']} | {r['depth']} | {r['queries']['held_out']} | {r['default']:.3f} "
            f"| {r['first_stage']:.3f} | {r['default'] - r['first_stage']:+.3f} "
            f"| {r['true_judgments_reference']['tuned']:.3f} |"
        )
    cols = " | ".join(f"after {n}" for n in CHECKPOINTS)
    curve = [
        f"| collection | depth | ships if > 0 | noise | {cols} | shipped retunes |",
        "|---|---|---|---|" + "---|" * len(CHECKPOINTS) + "---|",
    ]
    for r in loaded:
        rule = "CI low end" if r.get("ship_if") == "ci" else "mean gain"
        for name, rows in r["curves"].items():
            cells = []
            for n in CHECKPOINTS:
                row = rows[str(n)]
                lo, hi = row["ci95_vs_default"]
                cells.append(f"{_f(row['gain_vs_default'])} [{_f(lo)}, {_f(hi)}]")
            last = rows[str(CHECKPOINTS[-1])]
            shipped = sum(last["retunes_shipped"])
            total = shipped + sum(last["retunes_kept_old"])
            curve.append(
                f"| {r['dataset']} | {r['depth']} | {rule} | {name} | {' | '.join(cells)} "
                f"| {shipped}/{total} |"
            )
    return "\n".join(head) + "\n\n" + "\n".join(curve)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--markdown"]:
        sys.stdout.write(markdown(sys.argv[2:]) + "\n")
        sys.exit(0)
    if sys.argv[1:2] == ["--plot"]:
        plot(sys.argv[2], sys.argv[3:])
        sys.exit(0)
    sys.exit(main())
