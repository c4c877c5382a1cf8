"""Thresholds that mean something: calibration and the adaptive cutoff on Cranfield and CISI.

For each collection (BEIR folders) and each of three systems

- the bundled cross-encoder (int8 ms-marco-MiniLM-L-12-v2, ``onnx:`` spec) over BM25,
- the bi-encoder all-MiniLM-L6-v2 (offline, ``rerank_kit.models``) over BM25,
- a fused hybrid pipeline: the cross-encoder over the hybrid first stage (BM25 + dense, RRF),
  its score fused with the first stage's (``Fusion()``, the documented default),

``rerank_kit.learning.calibrate`` scores ``--depth`` candidates per judged query, fits the map
cross-fitted by query (5 folds, isotonic or logistic by held-out log-loss) and reports, all on
held-out probabilities: ECE, Brier and log-loss beside the raw sigmoid of the scores; the
precision of what ``min_probability=0.5`` keeps beside its mean probability; passages and
tokens (whitespace words) per query and recall of the judged-relevant candidates for fixed
``top_n`` 3 / 5 / 10 and for ``min_probability`` p (floor ``min_n=1``); the cutoff's tokens at
each ``top_n``'s recall; the same on the queries with at most 3 relevant candidates. The
cross-encoder's scores go through one in-memory score cache shared by its two systems. The
load average (``os.getloadavg``) is recorded before and after each system: the machine is
shared.

Usage:
    python benchmarks/calibration.py ../shared/data/beir/cranfield ../shared/data/beir/cisi \
        --json docs/thresholds.json --plots docs/assets
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

CROSS_ENCODER = "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"
BI_ENCODER = "bi-encoder:all-MiniLM-L6-v2"


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _systems() -> list[dict[str, Any]]:
    from rerank_kit import Fusion

    return [
        {"key": "cross-encoder", "reranker": CROSS_ENCODER, "first_stage": "bm25"},
        {"key": "bi-encoder", "reranker": BI_ENCODER, "first_stage": "bm25"},
        {
            "key": "fused-hybrid",
            "reranker": CROSS_ENCODER,
            "first_stage": "hybrid",
            "fusion": Fusion(),
        },
    ]


def _save_scored(path: str, name: str, key: str, result: Any) -> None:
    """Add one system's scores to the ``--save-scored`` file (refit later without rescoring)."""
    file = Path(path)
    data = json.loads(file.read_text()) if file.exists() else {}
    data.setdefault(name, {})[key] = {
        "settings": result.settings,
        "identity": result.calibration.score_identity,
        "fusion": result.calibration.fusion,
        "scored": result.scored,
    }
    file.write_text(json.dumps(data) + "\n", encoding="utf-8")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every collection and system; the report as a dict."""
    if args.scored:
        return refit(args)
    from rerank_kit import ScoreCache, load_reranker
    from rerank_kit.evaluation import load_dataset
    from rerank_kit.learning import calibrate

    cache = ScoreCache(max_size=1_000_000, path=args.score_cache)
    models = {spec: load_reranker(spec) for spec in (CROSS_ENCODER, BI_ENCODER)}
    models[CROSS_ENCODER].set_score_cache(cache)
    out: dict[str, Any] = {
        "depth": args.depth,
        "folds": args.folds,
        "limit_queries": args.limit_queries,
        "collections": {},
    }
    for folder in args.data:
        data = load_dataset(folder)
        if args.limit_queries:
            data = data.head(args.limit_queries)
        rows: dict[str, Any] = {}
        for system in _systems():
            load_before = os.getloadavg()
            start = time.perf_counter()
            result = calibrate(
                data,
                models[system["reranker"]],
                first_stage=system["first_stage"],
                depth=args.depth,
                fusion=system.get("fusion"),
                folds=args.folds,
                seed=args.seed,
            )
            seconds = time.perf_counter() - start
            report = result.to_dict()
            report["seconds"] = seconds
            report["loadavg_before"] = list(load_before)
            report["loadavg_after"] = list(os.getloadavg())
            rows[system["key"]] = report
            if args.save_scored:
                _save_scored(args.save_scored, data.name, system["key"], result)
            if args.plots:
                name = f"thresholds_{data.name}_{system['key']}.png"
                result.plot(Path(args.plots) / name, title=f"{data.name}: {system['key']}")
            _log(f"{data.name} / {system['key']}: {seconds:.0f} s, load {load_before[0]:.1f}")
            _log(result.to_table())
        out["collections"][data.name] = rows
    return out


def refit(args: argparse.Namespace) -> dict[str, Any]:
    """The report from scores saved by ``--save-scored`` (no model runs; load recorded)."""
    from rerank_kit.learning._calibrate import calibrate_scored

    out: dict[str, Any] = {"folds": args.folds, "refit_from_saved_scores": True, "collections": {}}
    for path in args.scored:
        for name, systems in json.loads(Path(path).read_text()).items():
            rows: dict[str, Any] = {}
            for key, saved in systems.items():
                load_before = os.getloadavg()
                start = time.perf_counter()
                scored = {q: tuple(v) for q, v in saved["scored"].items()}
                result = calibrate_scored(
                    scored,
                    identity=saved["identity"],
                    fusion=saved["fusion"],
                    folds=args.folds,
                    seed=args.seed,
                    settings=saved["settings"],
                )
                report = result.to_dict()
                report["seconds"] = time.perf_counter() - start
                report["loadavg_before"] = list(load_before)
                report["loadavg_after"] = list(os.getloadavg())
                rows[key] = report
                if args.plots:
                    result.plot(
                        Path(args.plots) / f"thresholds_{name}_{key}.png",
                        title=f"{name}: {key}",
                    )
                _log(f"{name} / {key} (refit)")
                _log(result.to_table())
            out["collections"][name] = rows
    return out


def markdown(report: dict[str, Any]) -> str:
    """The tables of docs/thresholds.md."""
    lines = [
        "| collection | system | queries | ECE raw sigmoid | ECE held-out | Brier held-out "
        "| map | kept at p>=0.5 | precision | mean probability |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for name, rows in report["collections"].items():
        for key, r in rows.items():
            m, p = r["metrics"], r["precision_at_0.5"]
            lines.append(
                f"| {name} | {key} | {r['settings']['queries']} | {m['raw sigmoid']['ece']:.3f} "
                f"| {m['cross-fitted']['ece']:.3f} | {m['cross-fitted']['brier']:.3f} "
                f"| {r['calibration']['method']} | {p['kept']:.0f} | {p['precision']:.3f} "
                f"| {p['mean_probability']:.3f} |"
            )
    lines += [
        "",
        "| collection | system | top_n | recall | top_n tokens | cutoff tokens, same recall "
        "| change |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, rows in report["collections"].items():
        for key, r in rows.items():
            for s in r["same_recall"]:
                cut = "n/a" if s["cutoff_tokens"] is None else f"{s['cutoff_tokens']:.0f}"
                change = "n/a" if s["token_change"] is None else f"{s['token_change']:+.1%}"
                lines.append(
                    f"| {name} | {key} | {s['top_n']} | {s['recall']:.3f} "
                    f"| {s['top_n_tokens']:.0f} | {cut} | {change} |"
                )
    lines += [
        "",
        "Queries with at most 3 relevant candidates (one- to three-answer questions):",
        "",
        "| collection | system | queries | top_n | recall | top_n tokens "
        "| cutoff tokens, same recall | change |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in report["collections"].items():
        for key, r in rows.items():
            for sub in r.get("subsets", {}).values():
                for s in sub["same_recall"]:
                    cut = "n/a" if s["cutoff_tokens"] is None else f"{s['cutoff_tokens']:.0f}"
                    change = "n/a" if s["token_change"] is None else f"{s['token_change']:+.1%}"
                    lines.append(
                        f"| {name} | {key} | {sub['queries']} | {s['top_n']} "
                        f"| {s['recall']:.3f} | {s['top_n_tokens']:.0f} | {cut} | {change} |"
                    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="*", help="BEIR folders (cranfield, cisi)")
    parser.add_argument("--depth", type=int, default=20, help="candidates per query (20)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-queries", type=int, metavar="N", help="first N queries only")
    parser.add_argument("--score-cache", metavar="FILE", help="persistent cross-encoder scores")
    parser.add_argument("--save-scored", metavar="FILE", help="save every system's scores here")
    parser.add_argument(
        "--scored", metavar="FILE", nargs="+", help="refit on saved scores (no model runs)"
    )
    parser.add_argument("--json", metavar="OUT", help="write the report here")
    parser.add_argument("--plots", metavar="FOLDER", help="write one PNG per system here")
    parser.add_argument("--tables", metavar="JSON", help="only print the tables of a report")
    args = parser.parse_args(argv)
    if args.tables:
        sys.stdout.write(markdown(json.loads(Path(args.tables).read_text())) + "\n")
        return 0
    report = run(args)
    text = markdown(report)
    sys.stdout.write(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
