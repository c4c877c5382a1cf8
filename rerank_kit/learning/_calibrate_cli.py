r"""``rerank-kit calibrate``: a reranker's (or a tuned pipeline's) scores as probabilities.

Fits the map on judged queries (cross-fitted by query, isotonic or logistic by held-out
log-loss), prints held-out ECE, Brier and log-loss beside the raw sigmoid, the precision of
what ``min_probability=0.5`` keeps, and the adaptive cutoff against fixed ``top_n`` (passages
and tokens per query, recall); writes a pipeline config holding the map (``--config``), the
report (``--json``) and a reliability / recall-versus-tokens plot (``--plot``).

Example:
    rerank-kit calibrate data/beir/cisi --reranker onnx:cross-encoder/ms-marco-MiniLM-L-12-v2 \
        --depth 20 --min-probability 0.3 --config pipeline.json --plot calibration.png
    rerank-kit calibrate data/beir/cisi --pipeline tuned.json --config tuned-calibrated.json
    rerank-kit calibrate data/beir/cisi --reranker bi-encoder:all-MiniLM-L6-v2 \
        --expected-share 0.8 --min-n 1 --config pipeline.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rerank_kit._core.errors import RerankError, require
from rerank_kit._pipeline import PipelineConfig
from rerank_kit.evaluation._cli import add_score_cache_argument
from rerank_kit.learning._calibrate_fit import METHODS

__all__ = ["add_arguments", "eval_calibration", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``calibrate`` options to ``parser``.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_arguments(parser)
        >>> parser.parse_args(["data", "--reranker", "x:y"]).depth
        20
    """
    parser.description = (
        "Fit the map from a reranker's (or a tuned pipeline's fused) score to the probability "
        "that a passage is relevant, cross-fitted by query on judged queries, and report its "
        "held-out calibration and the adaptive cutoff (min_probability) against fixed top_n."
    )
    parser.add_argument("data", metavar="DATA", help="BEIR folder, or hand-written judgments")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--reranker", metavar="SPEC", help="load_reranker spec to calibrate")
    which.add_argument(
        "--pipeline",
        metavar="CONFIG",
        help="a pipeline config (rerank-kit tune --config): its reranker, first stage, depth "
        "and fusion are calibrated, and --config writes it back with the map",
    )
    parser.add_argument(
        "--first-stage", choices=["bm25", "dense", "hybrid"], help="first stage (default bm25)"
    )
    parser.add_argument("--depth", type=int, default=20, help="candidates per query (default 20)")
    parser.add_argument(
        "--fusion", type=float, metavar="WEIGHT", help="calibrate the score fused with this weight"
    )
    parser.add_argument("--fusion-method", choices=["zscore", "minmax", "rrf"], default=None)
    parser.add_argument(
        "--method",
        choices=["auto", *METHODS],
        default="auto",
        help="the map (default auto: the lowest held-out log-loss; logistic-rank* read the rank)",
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-fitting folds (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the query split (default 0)")
    parser.add_argument(
        "--min-probability",
        type=float,
        metavar="P",
        help="the adaptive cutoff written to --config (keep passages at least this likely)",
    )
    parser.add_argument(
        "--expected-share",
        type=float,
        metavar="S",
        help="the 'expected relevant' cutoff written to --config: keep the fewest passages whose "
        "summed probability reaches this share, in (0, 1], of all the candidates' (with "
        "--min-probability too, both must keep a passage)",
    )
    parser.add_argument(
        "--min-n", type=int, metavar="N", help="with --min-probability or --expected-share: a floor"
    )
    parser.add_argument("--top-n", type=int, default=10, help="top_n (the ceiling) for --config")
    parser.add_argument("--split", default="test", help="BEIR qrels split (default test)")
    parser.add_argument("--corpus", metavar="FILE", help="corpus file for hand-written judgments")
    parser.add_argument("--limit-queries", type=int, metavar="N", help="only the first N queries")
    parser.add_argument("--config", metavar="OUT", help="write a pipeline config with the map")
    parser.add_argument("--json", metavar="OUT", help="write the report here (JSON)")
    parser.add_argument("--plot", metavar="OUT.png", help="reliability and recall/tokens plot")
    add_score_cache_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _base(args: argparse.Namespace) -> PipelineConfig:
    """The pipeline calibrated: ``--pipeline``'s, or one from ``--reranker`` and the options."""
    if args.pipeline:
        base = PipelineConfig.load(args.pipeline)
        if base.first_stage_only:
            raise ValueError(f"{args.pipeline} keeps the first stage's order: nothing to calibrate")
        if args.fusion is not None or args.first_stage:
            raise ValueError("--pipeline gives the fusion and first stage; leave them out")
        return base
    return PipelineConfig(
        args.reranker,
        args.first_stage or "bm25",
        args.depth,
        fusion=args.fusion,
        fusion_method=args.fusion_method or "zscore",
        top_n=args.top_n,
    )


def _cut(args: argparse.Namespace) -> bool:
    """Whether the command line gives a cutoff policy (then it replaces a raw threshold)."""
    return args.min_probability is not None or args.expected_share is not None


def run(args: argparse.Namespace) -> int:
    """Run ``rerank-kit calibrate`` with parsed ``args``; returns the exit code."""
    from rerank_kit._registry import load_reranker
    from rerank_kit.evaluation._compare import attach_score_cache
    from rerank_kit.learning._calibrate import calibrate
    from rerank_kit.learning._cli import _judged, _masked, _say

    try:
        if args.plot:
            require("matplotlib", extra="eval", package="matplotlib")
        base = _base(args)
        data = _judged(args)
        extra = {} if base.instruction is None else {"instruction": base.instruction}
        model = load_reranker(base.reranker, **extra)
        attach_score_cache(model, args.score_cache)
        result = calibrate(
            data,
            model,
            first_stage=base.first_stage,
            depth=base.depth,
            fusion=base.to_fusion(),
            folds=args.folds,
            seed=args.seed,
            method=args.method,
            show_progress=not args.no_progress,
        )
        config = base.with_cutoff(
            result.calibration,
            args.min_probability,
            args.min_n,
            args.expected_share,
            score_threshold=None if _cut(args) else base.score_threshold,
        )
    except (ValueError, OSError, RerankError) as exc:
        sys.stderr.write(f"rerank-kit calibrate: error: {_masked(exc)}\n")
        return 2
    _say(f"{data.name}: {result.settings['queries']} judged queries; {result.settings['system']}")
    _say(f"scores of {result.calibration.score_identity}")
    _say(result.to_table())
    if args.config:
        _say(f"config written to {config.save(args.config)}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(_masked(json.dumps(result.to_dict(), indent=2)) + "\n", encoding="utf-8")
        _say(f"report written to {out}")
    if args.plot:
        _say(f"plot written to {result.plot(args.plot)}")
    return 0


def eval_calibration(
    dataset: Any,
    first_stage: str,
    rerankers: Sequence[Any],
    fusions: Sequence[Any],
    *,
    depth: int,
    plot: str | None = None,
) -> list[dict[str, Any]]:
    """``rerank-kit eval --calibrate``: each reranked (and fused) system calibrated, held-out.

    Prints each system's held-out ECE, Brier and log-loss (beside the raw sigmoid) and the
    adaptive cutoff against fixed ``top_n``; with ``plot``, writes a reliability plot per
    system beside it (``<stem>_calibration_<n>.png``). The rerankers keep the score cache
    ``compare`` used, so no pair is scored twice.

    Returns:
        Per system: its ``CalibrationResult.to_dict()``.
    """
    from rerank_kit.learning._calibrate import calibrate
    from rerank_kit.learning._cli import _say

    out: list[dict[str, Any]] = []
    stage = "bm25" if first_stage == "all" else first_stage
    for model in rerankers:
        for fusion in [None, *fusions]:
            result = calibrate(dataset, model, first_stage=stage, depth=depth, fusion=fusion)
            _say(f"calibration of {result.settings['system']} (held-out, cross-fitted by query)")
            _say(result.to_table())
            report = result.to_dict()
            if plot:
                stem = Path(plot)
                path = stem.with_name(f"{stem.stem}_calibration_{len(out) + 1}{stem.suffix}")
                report["plot"] = str(result.plot(path))
                _say(f"wrote {path}")
            out.append(report)
    return out
