r"""``rerank-kit tune`` and ``rerank-kit train``: learn settings, or a model, from judgments.

Both read the datasets ``rerank-kit eval`` reads and report held-out results on stdout.

Example:
    rerank-kit tune data/beir/cisi --reranker onnx:cross-encoder/ms-marco-MiniLM-L-12-v2 \
        --reranker bi-encoder:all-MiniLM-L6-v2 --first-stage bm25 --first-stage hybrid \
        --score-cache scores.jsonl --config pipeline.json --json tune.json
    rerank-kit train data/beir/cisi --model cross-encoder:./ms-marco-MiniLM-L-12-v2 \
        --out models/cisi-ce --max-steps 100 --json train.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rerank_kit._core.errors import RerankError
from rerank_kit._core.score_cache import make_score_cache
from rerank_kit._pipeline import PipelineConfig
from rerank_kit.evaluation._cli import (
    add_instruction_argument,
    add_score_cache_argument,
    from_args,
    instructed,
)
from rerank_kit.evaluation._dask_pool import add_dask_argument, score_pool

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rerank_kit._core.protocol import Reranker

__all__ = ["add_arguments", "add_train_arguments", "run", "run_train"]


def _say(text: str) -> None:
    """One line of the command's report, on stdout (URL credentials masked)."""
    from rerank_kit._rerankers.remote.security import mask_credentials

    sys.stdout.write(mask_credentials(text) + "\n")


def _masked(text: object) -> str:
    """``text`` as shown in reports: URL credentials (``tei:http://user:pass@...``) masked."""
    from rerank_kit._rerankers.remote.security import mask_credentials

    return mask_credentials(str(text))


def _judged(args: argparse.Namespace) -> Any:
    """The dataset the command names (``--split``, ``--corpus``), cut to ``--limit-queries``.

    With ``--feedback LOG``: the log's records turned into judgments over ``--corpus``
    (``feedback_dataset``), with one line saying what the log held.
    """
    from rerank_kit.evaluation._dataset import load_dataset

    if getattr(args, "feedback", None):
        from rerank_kit.learning._feedback import feedback_dataset

        if args.data or not args.corpus:
            raise ValueError("--feedback LOG reads the texts from --corpus FILE (and no DATA)")
        data, report = feedback_dataset(args.feedback, args.corpus, min_evidence=args.min_evidence)
        _say(
            f"{args.feedback}: {report['records']} records, {report['events']} events "
            f"({report['torn']} torn lines skipped, {report['orphan_events']} events without "
            f"their record) -> {report['judged_queries']} judged queries "
            f"({report['judged_relevant']} relevant, {report['judged_not_relevant']} not "
            f"relevant; min_evidence {args.min_evidence})"
        )
        args.judged_from_feedback = report["judged_queries"]
    elif not args.data:
        raise ValueError("give DATA (a dataset) or --feedback LOG --corpus FILE")
    else:
        data = load_dataset(args.data, split=args.split, corpus=args.corpus)
    return data.head(args.limit_queries) if args.limit_queries else data


def add_feedback_arguments(parser: argparse.ArgumentParser) -> None:
    """``--feedback LOG`` and ``--min-evidence N``, shared by ``tune`` and ``train``."""
    parser.add_argument(
        "--feedback",
        metavar="LOG",
        help="learn from a feedback log (FeedbackRecorder's JSON lines; rotated files too) "
        "instead of DATA; --corpus gives the texts",
    )
    parser.add_argument(
        "--min-evidence",
        type=int,
        default=1,
        metavar="N",
        help="with --feedback: positive events a relevant document needs (default 1)",
    )
    parser.add_argument(
        "--ship-if",
        choices=["ci", "gain"],
        default="ci",
        help="tune --feedback writes --config only when the lower end of the held-out gain's "
        "95%% interval over the default is positive (ci, the default), or its mean (gain)",
    )
    parser.add_argument(
        "--min-queries",
        type=int,
        default=0,
        metavar="N",
        help="with --feedback: do nothing (exit 0) while the log judges fewer queries",
    )


def _worth_shipping(args: argparse.Namespace, result: Any) -> bool:
    """With ``--feedback``: whether the tuned config's held-out gain clears ``--ship-if``."""
    gain, (low, _) = result.difference["mean"], result.difference["ci95"]
    if args.ship_if == "gain":
        ok, what = gain > 0, f"held-out gain over the default pipeline {gain:+.4f}"
    else:
        ok, what = low > 0, f"lower end of the held-out gain's 95% interval {low:+.4f}"
    _say(f"{what} is {'positive: shipping' if ok else 'not positive: not shipping'}")
    return bool(ok)


def _too_few(args: argparse.Namespace, data: Any) -> bool:
    """With ``--feedback``: whether the log judges fewer queries than ``--min-queries``."""
    if getattr(args, "feedback", None) and len(data.queries) < args.min_queries:
        _say(
            f"{len(data.queries)} judged queries < --min-queries {args.min_queries}: "
            "nothing tuned, the old config is kept"
        )
        return True
    return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tune`` options to ``parser``.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_arguments(parser)
        >>> parser.parse_args(["data", "--reranker", "x:y"]).folds
        5
        >>> parser.parse_args(["data", "--reranker", "x:y", "--reranker", "z:w"]).reranker
        ['x:y', 'z:w']
    """
    parser.description = (
        "Choose the reranker (or none), candidate depth, score fusion (optionally by query "
        "length) and first stage on judged queries by cross-fitting, and report the held-out "
        "gain over the default pipeline and over the best first stage alone."
    )
    parser.add_argument(
        "data", metavar="DATA", nargs="?", help="BEIR folder, or hand-written judgments"
    )
    parser.add_argument(
        "--reranker",
        required=True,
        action="append",
        metavar="SPEC",
        help="load_reranker spec (repeatable: the search chooses among them, and none)",
    )
    parser.add_argument(
        "--no-query-split",
        action="store_true",
        help="do not search a fusion weight that depends on the query's length",
    )
    parser.add_argument(
        "--first-stage",
        action="append",
        choices=["bm25", "dense", "hybrid"],
        help="first stage(s) to choose from (repeatable; default bm25)",
    )
    parser.add_argument(
        "--depth", type=int, action="append", help="candidate depths to try (default 20 50 100)"
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-fitting folds (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the query split (default 0)")
    parser.add_argument(
        "--test-size",
        type=float,
        metavar="SHARE",
        help="hold out this share of the queries once instead of cross-fitting",
    )
    parser.add_argument("--top-n", type=int, default=10, help="top_n written to the config")
    parser.add_argument(
        "--target-precision",
        type=float,
        metavar="P",
        help="also choose a score_threshold whose kept candidates reach this precision "
        "(with --calibrate: a min_probability instead)",
    )
    parser.add_argument(
        "--target-recall",
        type=float,
        metavar="R",
        help="with --calibrate: also choose an expected_share whose kept candidates reach this "
        "held-out recall of the judged-relevant ones",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="also fit the chosen pipeline's score -> probability map (cross-fitted) and save "
        "it in the config (see rerank-kit calibrate)",
    )
    parser.add_argument("--split", default="test", help="BEIR qrels split (default test)")
    parser.add_argument("--corpus", metavar="FILE", help="corpus file for hand-written judgments")
    parser.add_argument("--limit-queries", type=int, metavar="N", help="only the first N queries")
    parser.add_argument("--config", metavar="OUT", help="write the tuned settings here (JSON)")
    parser.add_argument("--json", metavar="OUT", help="write the report here (JSON)")
    add_instruction_argument(parser)
    add_score_cache_argument(parser)
    add_dask_argument(parser)
    add_feedback_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _with_instruction(
    config: PipelineConfig, built: Sequence[tuple[str, str | Reranker]], instruction: str
) -> PipelineConfig:
    """The tuned config, naming the spec and instruction of a reranker built with one."""
    for spec, item in built:
        if not isinstance(item, str) and config.reranker == item.name:
            return PipelineConfig.from_dict(
                {**config.to_dict(), "reranker": spec, "instruction": instruction}
            )
    return config


def run(args: argparse.Namespace) -> int:
    """Run ``tune`` for parsed arguments; returns the exit code."""
    from rerank_kit.learning._tune import DEFAULT_DEPTHS, tune

    logging.getLogger("rerank_kit").addHandler(logging.NullHandler())
    instruction = getattr(args, "instruction", None)
    try:
        if instruction is not None and getattr(args, "dask", None):
            raise ValueError("--instruction cannot be combined with --dask yet")
        data = _judged(args)
        if _too_few(args, data):
            return 0
        deepest = max(args.depth or DEFAULT_DEPTHS)
        cache = make_score_cache(score_pool(args, data, "tune", depth=deepest))  # --dask first
        rerankers = instructed(args.reranker, instruction, score_cache=cache)
        result = tune(
            data,
            rerankers,
            first_stage=args.first_stage or ["bm25"],
            query_split=not args.no_query_split,
            depths=args.depth or DEFAULT_DEPTHS,
            show_progress=not args.no_progress,
            **from_args(args, "folds", "seed", "test_size", "top_n", "target_precision"),
            score_cache=cache,
            calibrate=getattr(args, "calibrate", False),
            target_recall=getattr(args, "target_recall", None),
        )
    except (ValueError, OSError, RerankError) as exc:
        sys.stderr.write(f"rerank-kit tune: error: {_masked(exc)}\n")
        return 2
    if instruction is not None:  # the config names the spec, and the instruction it needs
        built = list(zip(args.reranker, rerankers, strict=True))
        result.config = _with_instruction(result.config, built, instruction)
    split = result.folds
    how = (
        f"{split['folds']}-fold cross-fitting by query, seed {split['seed']}"
        if "folds" in split
        else f"one split, {split['test_size']:.0%} held out, seed {split['seed']}"
    )
    _say(f"{data.name}: {len(data.queries)} judged queries; {how}")
    _say(result.to_table())
    if args.config and getattr(args, "feedback", None) and not _worth_shipping(args, result):
        _say(f"{args.config} is kept as it was (no new config)")
    elif args.config:
        _say(f"config written to {result.config.save(args.config)}")
    if args.json:
        Path(args.json).write_text(_masked(json.dumps(result.to_dict(), indent=2)) + "\n")
        _say(f"report written to {args.json}")
    return 0


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``parser``."""
    parser.description = (
        "Fine-tune a cross-encoder or bi-encoder on the training queries (negatives mined from "
        "the first stage, a dev split for early stopping) and compare it with the original "
        "model on held-out test queries."
    )
    parser.add_argument(
        "data", metavar="DATA", nargs="?", help="BEIR folder, or hand-written judgments"
    )
    parser.add_argument(
        "--model", required=True, metavar="SPEC", help="cross-encoder:ID_OR_PATH or bi-encoder:..."
    )
    parser.add_argument("--out", required=True, metavar="FOLDER", help="where to save the model")
    parser.add_argument("--first-stage", default="bm25", choices=["bm25", "dense", "hybrid"])
    parser.add_argument("--depth", type=int, default=50, help="candidates per query (default 50)")
    parser.add_argument("--negatives", type=int, default=7, help="mined negatives per positive")
    parser.add_argument("--test-size", type=float, default=0.3, help="held-out share (0.3)")
    parser.add_argument("--dev-size", type=float, default=0.1, help="early-stopping share (0.1)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--max-steps", type=int, metavar="N", help="stop after N training steps (CPU budget)"
    )
    parser.add_argument(
        "--max-length", type=int, metavar="T", help="tokens per training pair (speed on a CPU)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="test", help="BEIR qrels split (default test)")
    parser.add_argument("--corpus", metavar="FILE", help="corpus file for hand-written judgments")
    parser.add_argument("--limit-queries", type=int, metavar="N", help="only the first N queries")
    parser.add_argument("--json", metavar="OUT", help="write the report here (JSON)")
    add_score_cache_argument(parser)
    add_dask_argument(parser)
    add_feedback_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run_train(args: argparse.Namespace) -> int:
    """Run ``train`` for parsed arguments; returns the exit code."""
    from rerank_kit.learning._train import split_queries, train

    try:
        data = _judged(args)
        if _too_few(args, data):
            return 0
        split = ("test_size", "dev_size", "seed")
        budget = ("epochs", "batch_size", "max_steps", "max_length")

        def test_ids() -> list[str]:  # the held-out queries train scores the model on
            split_ids = split_queries(
                list(data.queries), test_size=args.test_size, dev_size=args.dev_size, seed=args.seed
            )
            return split_ids[2]

        result = train(
            data,
            args.model,
            args.out,
            show_progress=not args.no_progress,
            # --dask: the held-out queries' pool scored there first
            score_cache=score_pool(args, data, "train", query_ids=test_ids),
            **from_args(args, "first_stage", "depth", "negatives", *split, *budget),
        )
    except (ValueError, OSError, RerankError, ImportError) as exc:
        sys.stderr.write(f"rerank-kit train: error: {exc}\n")
        return 2
    _say(
        f"{data.name}: {len(result.train_queries)} training, {len(result.dev_queries)} dev, "
        f"{len(result.test_queries)} test queries (seed {args.seed}); {len(result.pairs)} pairs"
    )
    for label, metrics in (("before", result.before), ("after", result.after)):
        _say(f"{label:8}" + "".join(f"  {n} {v:.3f}" for n, v in metrics.items()))
    diff = result.difference
    lo, hi = diff["ci95"]
    _say(
        f"after - before nDCG@10 {diff['mean']:+.3f}  95% CI [{lo:+.3f}, {hi:+.3f}]  "
        f"better {diff['better']}, worse {diff['worse']}"
    )
    _say(f"model saved to {result.model_dir} (use it as {result.kind}:{result.model_dir})")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return 0
