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
#: The ``min_probability`` values swept (fine, so the cutoff's curve has points near each
#: fixed count's recall).
PROBABILITIES = tuple(round(0.02 * i, 2) for i in range(1, 46))
#: The ``expected_share`` values swept (the "expected relevant" policy).
SHARES = tuple(round(0.05 * i, 2) for i in range(1, 21))
#: The adaptive-cutoff policies measured against fixed ``top_n``: each a name, the setting it
#: sweeps and its values, and its other settings.
POLICIES: list[dict[str, Any]] = [
    {"policy": "min_probability", "values": PROBABILITIES, "min_n": 1},
    {"policy": "expected_share", "values": SHARES, "min_n": 1},
]
#: The map kinds before rank-aware maps (a fit on the score alone), for comparison.
SCORE_ONLY = ("isotonic", "logistic")
#: Fixed counts for one- and two-answer questions.
FEW_TOP_NS = (1, 2, 3)


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


def _save_scored(path: str, name: str, key: str, result: Any, report: dict[str, Any]) -> None:
    """Add one system's scores to the ``--save-scored`` file (refit later without rescoring)."""
    file = Path(path)
    data = json.loads(file.read_text()) if file.exists() else {}
    data.setdefault(name, {})[key] = {
        "settings": result.settings,
        "identity": result.calibration.score_identity,
        "fusion": result.calibration.fusion,
        "scored": result.scored,
        "scoring": {
            k: report[k] for k in ("seconds", "loadavg_before", "loadavg_after") if k in report
        },
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
                _save_scored(args.save_scored, data.name, system["key"], result, report)
            if args.plots:
                name = f"thresholds_{data.name}_{system['key']}.png"
                result.plot(Path(args.plots) / name, title=f"{data.name}: {system['key']}")
            _log(f"{data.name} / {system['key']}: {seconds:.0f} s, load {load_before[0]:.1f}")
            _log(result.to_table())
        out["collections"][data.name] = rows
    return out


def _policy_rows(queries: dict[str, Any], top_ns: tuple[int, ...]) -> list[dict[str, Any]]:
    """Fixed ``top_n`` rows, then each of ``POLICIES``' rows, on held-out probabilities."""
    from rerank_kit.learning._calibrate_report import cutoff_curve

    rows = cutoff_curve(queries, top_ns=top_ns, probabilities=())
    for policy in POLICIES:
        if policy["policy"] == "min_probability":
            rows += cutoff_curve(
                queries, top_ns=(), probabilities=policy["values"], min_n=policy["min_n"]
            )
        elif policy["policy"] == "expected_share":
            rows += cutoff_curve(
                queries,
                top_ns=(),
                probabilities=(),
                expected_shares=policy["values"],
                min_n=policy["min_n"],
            )
    return rows


def _held(result: Any, scored: dict[str, Any], keep: set[str] | None = None) -> dict[str, Any]:
    return {
        q: (result.fit.held_out[q][0], result.fit.held_out[q][1], scored[q][2])
        for q in scored
        if keep is None or q in keep
    }


def _few_answers(results: dict[str, Any], scored: dict[str, Any], few: set[str]) -> dict[str, Any]:
    """The cutoff against ``top_n`` = 1, 2, 3 on the one- and two-answer questions."""
    from rerank_kit.learning._calibrate_report import same_recall

    out: dict[str, Any] = {"queries": len(few & set(scored))}
    for name, result in results.items():
        rows = _policy_rows(_held(result, scored, few), FEW_TOP_NS)
        out[name] = {
            "cutoff": rows,
            "same_recall": same_recall(rows),
            "same_recall_share": same_recall(rows, "expected_share"),
        }
    return out


def _read_json(path: str) -> Any:
    """A JSON file, gzipped when its name ends in ``.gz``."""
    if path.endswith(".gz"):
        import gzip

        with gzip.open(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    return json.loads(Path(path).read_text(encoding="utf-8"))


def refit(args: argparse.Namespace) -> dict[str, Any]:
    """The report from scores saved by ``--save-scored`` (no model runs; load recorded).

    Each system is fitted twice on the same held-out folds: with every map kind (the
    calibration ``calibrate`` now makes) and with the score-only kinds (``SCORE_ONLY``, the
    calibration before rank-aware maps), for comparison.
    """
    from rerank_kit.learning._calibrate import calibrate_scored
    from rerank_kit.learning._calibrate_report import same_recall

    out: dict[str, Any] = {
        "folds": args.folds,
        "refit_from_saved_scores": True,
        "probabilities": list(PROBABILITIES),
        "cpu": _cpu(),
        "collections": {},
        "maps": {},
    }
    for path in args.scored:
        for name, systems in _read_json(path).items():
            rows: dict[str, Any] = {}
            for key, saved in systems.items():
                load_before = os.getloadavg()
                start = time.perf_counter()
                scored = {q: tuple(v) for q, v in saved["scored"].items()}
                # one- and two-answer questions: 1 or 2 judged-relevant passages among the
                # candidates the reranker sees (the judgments may hold more, not retrieved)
                few = {q for q, v in scored.items() if 0 < sum(v[1]) <= 2}
                results = {
                    kinds: calibrate_scored(
                        scored,
                        identity=saved["identity"],
                        fusion=saved["fusion"],
                        folds=args.folds,
                        seed=args.seed,
                        probabilities=PROBABILITIES,
                        settings=saved["settings"],
                        candidates=None if kinds == "all kinds" else SCORE_ONLY,
                    )
                    for kinds in ("all kinds", "score only")
                }
                result, before = results["all kinds"], results["score only"]
                report = result.to_dict()
                report.pop("subsets", None)  # superseded by "few_answers"
                report["cutoff"] = _policy_rows(_held(result, scored), (3, 5, 10))
                report["same_recall_share"] = same_recall(report["cutoff"], "expected_share")
                report["score_only"] = {
                    "method": before.calibration.method,
                    "metrics": before.fit.metrics["cross-fitted"],
                    "precision_at_0.5": before.precision,
                    "same_recall": before.same_recall,
                }
                report["few_answers"] = _few_answers(
                    {"all kinds": result, "score only": before}, scored, few
                )
                report["scoring"] = saved.get("scoring")  # seconds and load when scored
                report["seconds"] = time.perf_counter() - start
                report["loadavg_before"] = list(load_before)
                report["loadavg_after"] = list(os.getloadavg())
                rows[key] = report
                out["maps"].setdefault(name, {})[key] = result.calibration
                if args.plots:
                    result.plot(
                        Path(args.plots) / f"thresholds_{name}_{key}.png",
                        title=f"{name}: {key}",
                    )
                _log(f"{name} / {key} (refit, {report['seconds']:.0f} s)")
                _log(result.to_table())
            out["collections"][name] = rows
    if args.demo:
        out["demo"] = demo({n: m["cross-encoder"] for n, m in out["maps"].items()})
    out["maps"] = {n: {k: c.to_dict() for k, c in m.items()} for n, m in out["maps"].items()}
    return out


def demo(maps: dict[str, Any]) -> dict[str, Any]:
    """The demo's help-desk set: one answer per question, the cross-encoder over the corpus.

    Each collection's cross-encoder map (fitted on that collection only, so the demo's
    questions are held out; a transfer to another domain) gives the probabilities; the
    cutoff is compared with ``top_n`` = 1, 2, 3.
    """
    from rerank_kit import load_reranker
    from rerank_kit.demo import CORPUS, QUERIES
    from rerank_kit.learning._calibrate_report import same_recall

    model = load_reranker(CROSS_ENCODER)
    ids = [d for d, _ in CORPUS]
    texts = [t for _, t in CORPUS]
    load_before = os.getloadavg()
    ranked = {}
    for query, answer in QUERIES:
        scores = model.score(query, texts)
        order = sorted(range(len(texts)), key=lambda i: -scores[i])
        ranked[query] = (
            [float(scores[i]) for i in order],
            [int(ids[i] == answer) for i in order],
            [len(texts[i].split()) for i in order],
        )
    out: dict[str, Any] = {
        "queries": len(QUERIES),
        "passages": len(CORPUS),
        "answer_ranks": {q: v[1].index(1) + 1 for q, v in ranked.items()},
        "loadavg_before": list(load_before),
        "maps": {},
    }
    for name, calibration in maps.items():
        queries = {q: (calibration.probabilities(s), y, t) for q, (s, y, t) in ranked.items()}
        rows = _policy_rows(queries, FEW_TOP_NS)
        out["maps"][name] = {
            "answer_probabilities": {q: v[0][v[1].index(1)] for q, v in queries.items()},
            "top_probabilities": {q: v[0][:3] for q, v in queries.items()},
            "cutoff": rows,
            "same_recall": same_recall(rows),
        }
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs"


def _change(row: dict[str, Any] | None) -> str:
    if row is None or row["token_change"] is None:
        return "n/a"
    return f"{row['token_change']:+.1%}"


def _tokens(row: dict[str, Any] | None) -> str:
    return "n/a" if row is None or row["cutoff_tokens"] is None else f"{row['cutoff_tokens']:.0f}"


def markdown(report: dict[str, Any]) -> str:
    """The tables of docs/thresholds.md (from a ``--scored`` refit's report)."""
    lines = [
        "| collection | system | queries | ECE raw sigmoid | ECE held-out | Brier held-out "
        "| map | kept at p>=0.5 | precision | mean probability | score-only map: kept, "
        "precision, mean probability |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for name, rows in report["collections"].items():
        for key, r in rows.items():
            m, p = r["metrics"], r["precision_at_0.5"]
            fit = r["calibration"]["info"].get("fit", r["calibration"]["method"])
            b = r.get("score_only", {}).get("precision_at_0.5")
            old = (
                ""
                if b is None
                else (f"{b['kept']:.0f}, {b['precision']:.3f}, {b['mean_probability']:.3f}")
            )
            lines.append(
                f"| {name} | {key} | {r['settings']['queries']} | {m['raw sigmoid']['ece']:.3f} "
                f"| {m['cross-fitted']['ece']:.3f} | {m['cross-fitted']['brier']:.3f} "
                f"| {fit} | {p['kept']:.0f} | {p['precision']:.3f} "
                f"| {p['mean_probability']:.3f} | {old} |"
            )
    lines += [
        "",
        "| collection | system | top_n | recall | top_n tokens | cutoff tokens, same recall "
        "| change | change, score-only map | expected_share tokens, same recall | change |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in report["collections"].items():
        for key, r in rows.items():
            old_rows = {s["top_n"]: s for s in r.get("score_only", {}).get("same_recall", [])}
            share = {s["top_n"]: s for s in r.get("same_recall_share", [])}
            for s in r["same_recall"]:
                sh = share.get(s["top_n"])
                lines.append(
                    f"| {name} | {key} | {s['top_n']} | {s['recall']:.3f} "
                    f"| {s['top_n_tokens']:.0f} | {_tokens(s)} | {_change(s)} "
                    f"| {_change(old_rows.get(s['top_n']))} | {_tokens(sh)} | {_change(sh)} |"
                )
    lines += [
        "",
        "One- and two-answer questions (queries whose candidates hold 1 or 2 judged-relevant "
        "passages):",
        "",
        "| collection | system | queries | top_n | recall | top_n tokens "
        "| cutoff tokens, same recall | change | change, score-only map "
        "| change, expected_share |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in report["collections"].items():
        for key, r in rows.items():
            few = r.get("few_answers")
            if not few or not few["queries"]:
                continue
            old_rows = {s["top_n"]: s for s in few["score only"]["same_recall"]}
            share = {s["top_n"]: s for s in few["all kinds"].get("same_recall_share", [])}
            for s in few["all kinds"]["same_recall"]:
                lines.append(
                    f"| {name} | {key} | {few['queries']} | {s['top_n']} | {s['recall']:.3f} "
                    f"| {s['top_n_tokens']:.0f} | {_tokens(s)} | {_change(s)} "
                    f"| {_change(old_rows.get(s['top_n']))} | {_change(share.get(s['top_n']))} |"
                )
    if report.get("demo"):
        d = report["demo"]
        lines += [
            "",
            f"The demo's help-desk set ({d['queries']} questions, one answer each, "
            f"{d['passages']} passages; the cross-encoder's map fitted on each collection):",
            "",
            "| map fitted on | top_n | recall | top_n tokens | cutoff tokens, same recall "
            "| change |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, m in d["maps"].items():
            for s in m["same_recall"]:
                lines.append(
                    f"| {name} | {s['top_n']} | {s['recall']:.3f} | {s['top_n_tokens']:.0f} "
                    f"| {_tokens(s)} | {_change(s)} |"
                )
    return "\n".join(lines)


def _rounded(value: Any) -> Any:
    """Floats to 6 significant digits (a smaller JSON), recursively."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


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
    parser.add_argument(
        "--demo", action="store_true", help="with --scored: also the demo's help-desk set"
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
        Path(args.json).write_text(json.dumps(_rounded(report), indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
