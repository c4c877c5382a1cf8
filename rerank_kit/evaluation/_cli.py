r"""``rerank-kit eval``: does reranking help on my data?

Prints a table of quality and latency per system on stdout (progress on stderr), and can write
the same numbers as JSON and a quality-against-latency plot as PNG.

Example:
    rerank-kit eval data/beir/cranfield --first-stage bm25 \
        --reranker bi-encoder:all-MiniLM-L6-v2 --json eval.json --plot eval.png
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rerank_kit._core.errors import RerankError, require
from rerank_kit._rerankers.remote.security import mask_credentials
from rerank_kit.evaluation._dask_pool import add_dask_argument, score_pool
from rerank_kit.evaluation._progress import progress_bars

if TYPE_CHECKING:
    from rerank_kit._core.protocol import Reranker

__all__ = [
    "add_arguments",
    "add_assembly_arguments",
    "add_instruction_argument",
    "assembly_from_args",
    "instructed",
    "loaded",
    "main",
    "run",
]

#: Spec kinds whose engine takes ``instruction=`` (the cross-encoder on every backend).
INSTRUCTED_KINDS = ("cross-encoder", "onnx", "onnx-int8", "openvino")

_EPILOG = """\
DATA is a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), a folder holding
judgments.jsonl (or .csv) and corpus.jsonl (or .csv), or a judgments file (then --corpus, or a
corpus.jsonl beside it). Judgments JSONL lines look like
  {"query": "how do I reset my password?", "relevant": ["faq-12", "faq-40"]}
  {"query": "refund after 30 days", "relevant": {"policy-3": 2, "faq-7": 1}}
and a judgments CSV has the columns query,doc_id[,grade].

Each first stage retrieves its top --depth; each --reranker reorders those candidates.
"""


def from_args(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """``{name: args.name}`` for options whose command-line name is the Python argument's.

    Example:
        >>> from_args(argparse.Namespace(depth=50, k=10, other=1), "depth", "k")
        {'depth': 50, 'k': 10}
    """
    return {name: getattr(args, name) for name in names}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``eval`` options to ``parser``.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_arguments(parser)
        >>> parser.parse_args(["data/cisi", "--first-stage", "all"]).first_stage
        ['all']
    """
    from rerank_kit.evaluation._first_stage import DEFAULT_EMBEDDING_MODEL, FIRST_STAGES

    parser.description = "Measure what reranking buys on a dataset: quality and latency."
    parser.epilog = _EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("data", metavar="DATA", help="BEIR folder, or hand-written judgments")
    parser.add_argument(
        "--first-stage",
        action="append",
        choices=[*FIRST_STAGES, "all"],
        help="retriever giving the candidates; repeat it, or say 'all', to compare several "
        "(default: bm25)",
    )
    parser.add_argument(
        "--reranker",
        action="append",
        default=[],
        metavar="SPEC",
        help="reranker spec, e.g. bi-encoder:all-MiniLM-L6-v2, flashrank:ms-marco-TinyBERT-L-2-v2 "
        "or a cascade 'A@20 >> B'; repeat to compare several",
    )
    parser.add_argument(
        "--fusion",
        action="append",
        type=float,
        default=[],
        metavar="WEIGHT",
        help="also report each reranked system fused with its first stage's scores, WEIGHT "
        "(0..1) on the reranker; repeat for several weights (no extra model calls)",
    )
    parser.add_argument(
        "--fusion-method",
        choices=["zscore", "minmax", "rrf"],
        default="zscore",
        help="how --fusion combines the scores (default zscore)",
    )
    parser.add_argument(
        "--long-documents",
        choices=["truncate", "max", "mean", "first"],
        default=None,
        metavar="MODE",
        help="how rerankers treat passages longer than their token limit: truncate (their "
        "default), or score token windows and take the max / mean / first window",
    )
    parser.add_argument("--depth", type=int, default=100, help="candidates reranked (default 100)")
    parser.add_argument("--k", type=int, default=10, help="metric cut-off (default 10)")
    parser.add_argument("--split", default="test", help="BEIR qrels split (default test)")
    parser.add_argument("--corpus", metavar="FILE", help="corpus file for hand-written judgments")
    parser.add_argument(
        "--embedding-model",
        default=DEFAULT_EMBEDDING_MODEL,
        metavar="MODEL",
        help=f"model of the dense and hybrid first stages (default {DEFAULT_EMBEDDING_MODEL})",
    )
    parser.add_argument("--limit-queries", type=int, metavar="N", help="only the first N queries")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON here")
    parser.add_argument("--plot", metavar="OUT.png", help="write a quality/latency plot here")
    parser.add_argument(
        "--cold-cache",
        action="store_true",
        help="empty rerankers' embedding caches before each query (latency on unseen passages)",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="also calibrate each reranked system (scores as probabilities, cross-fitted by "
        "query) and report held-out ECE, Brier, a reliability plot (with --plot) and the "
        "adaptive cutoff against fixed top_n 3/5/10 (see rerank-kit calibrate)",
    )
    add_instruction_argument(parser)
    add_score_cache_argument(parser)
    add_assembly_arguments(parser)
    add_dask_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_instruction_argument(parser: argparse.ArgumentParser) -> None:
    """``--instruction TEXT``, shared by ``rerank-kit eval``, ``tune`` and ``demo``."""
    parser.add_argument(
        "--instruction",
        metavar="TEXT",
        help="task instruction for instruction-aware rerankers (Qwen3-Reranker, mxbai-rerank "
        "v2, bge-reranker-v2-gemma), written into the model's prompt; given to every "
        f"{', '.join(k + ':' for k in INSTRUCTED_KINDS)} spec (a model that takes none is an "
        "error); other kinds run as they are (default: each model's own instruction)",
    )


def instructed(
    specs: Sequence[str],
    instruction: str | None,
    *,
    long_documents: str | None = None,
    score_cache: Any = None,
) -> list[str | Reranker]:
    """``specs``, with each cross-encoder spec built here with ``instruction`` (if given).

    Without an instruction the specs come back as they are. With one, every single-model
    spec of a kind in ``INSTRUCTED_KINDS`` becomes a reranker built by
    ``load_reranker(spec, instruction=...)`` (then given ``long_documents`` and
    ``score_cache``, as ``compare`` and ``tune`` do for specs); other specs stay specs. A
    cascade with such a stage is refused: the instruction cannot reach its stages.

    Raises:
        ValueError: A cascade with a cross-encoder stage, a model that takes no instruction,
            or an empty instruction.

    Example:
        >>> instructed(["flashrank:ms-marco-TinyBERT-L-2-v2"], "Find the answer")
        ['flashrank:ms-marco-TinyBERT-L-2-v2']
        >>> instructed(["flashrank:a@20 >> onnx:b"], "Find the answer")
        Traceback (most recent call last):
        ...
        ValueError: --instruction cannot reach the stages of the cascade 'flashrank:a@20 >> onnx:b'; give an instruction-aware reranker on its own
    """
    if instruction is None:
        return list(specs)
    if not instruction.strip():
        raise ValueError("--instruction is empty")
    from rerank_kit._registry import load_reranker
    from rerank_kit.evaluation._compare import attach_score_cache

    out: list[str | Reranker] = []
    for spec in specs:
        kinds = [part.partition(":")[0].strip().lower() for part in spec.split(">>")]
        if not any(kind in INSTRUCTED_KINDS for kind in kinds):
            out.append(spec)
            continue
        if len(kinds) > 1:
            raise ValueError(
                f"--instruction cannot reach the stages of the cascade {spec!r}; give an "
                "instruction-aware reranker on its own"
            )
        model = load_reranker(spec, instruction=instruction)
        if long_documents is not None:
            model.set_long_documents(long_documents)
        attach_score_cache(model, score_cache)
        out.append(model)
    return out


def add_score_cache_argument(parser: argparse.ArgumentParser) -> None:
    """``--score-cache FILE``, shared by ``rerank-kit eval`` and ``rerank-kit tune``."""
    parser.add_argument(
        "--score-cache",
        metavar="FILE",
        help="persistent score cache (JSON lines, created if missing): pairs scored by an "
        "earlier eval/tune run with the same spec are read, not scored again",
    )


def add_assembly_arguments(parser: argparse.ArgumentParser) -> None:
    """The context-assembly options: each reranked system also reported assembled."""
    group = parser.add_argument_group(
        "context assembly",
        "with any of these, each reranked system is also reported with the passages assembled "
        "(from the same scores; see docs/context-assembly.md)",
    )
    group.add_argument(
        "--dedupe", type=float, metavar="SIM", help="near-duplicate threshold in (0, 1]"
    )
    group.add_argument(
        "--diversity", type=float, metavar="WEIGHT", help="MMR weight in [0, 1] (0: off)"
    )
    group.add_argument(
        "--similarity-model",
        metavar="SPEC",
        help="bi-encoder spec whose cosine --dedupe/--diversity use (default: lexical Jaccard)",
    )
    group.add_argument("--order", choices=["score", "lost-in-the-middle"], default=None)
    group.add_argument("--token-budget", type=int, metavar="N", help="tokens the kept fit in")
    group.add_argument(
        "--boosts",
        metavar="JSON",
        help='metadata boosts as JSON, e.g. \'{"field": "source", "values": {"a": 0.5}}\'',
    )


def assembly_from_args(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``compare(assembly=)`` settings the options give (``None``: none given).

    Example:
        >>> assembly_from_args(argparse.Namespace(dedupe=0.8, diversity=None,
        ...     similarity_model=None, order=None, token_budget=None, boosts=None))
        {'dedupe': 0.8}
    """
    from rerank_kit._core.assembly import AssemblySettings

    names = ("dedupe", "diversity", "similarity_model", "order", "token_budget", "boosts")
    given = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    if isinstance(given.get("boosts"), str):
        try:
            given["boosts"] = json.loads(given["boosts"])
        except json.JSONDecodeError as exc:
            raise ValueError(f"--boosts is not valid JSON ({exc.msg})") from exc
    try:
        plan = AssemblySettings.build(**given)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"context assembly: {exc}") from exc
    return given if plan is not None else None


class _OnePerRunTruncationNotice(logging.Filter):
    """Drop the engine's truncation warning: ``compare`` logs one total per system instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and "token limit" in str(record.msg))


def loaded(args: argparse.Namespace, score_cache: Any) -> list[Reranker]:
    """The ``--reranker`` specs loaded (as ``compare`` would), each model named on stderr.

    What ``model_that_runs`` says (the spec's model, and the graph file that runs) is printed
    once per reranker as it loads, so a run says which model it measured.
    """
    from rerank_kit._adapters.run import model_that_runs
    from rerank_kit.evaluation._compare import _resolve_rerankers

    specs = instructed(
        args.reranker, args.instruction, long_documents=args.long_documents, score_cache=score_cache
    )
    models = []
    for spec in specs:
        model = _resolve_rerankers([spec], args.long_documents, score_cache)[0]
        sys.stderr.write(f"reranker: {mask_credentials(model_that_runs(model))}\n")
        models.append(model)
    return models


def _err(message: str) -> int:
    sys.stderr.write(f"rerank-kit eval: error: {mask_credentials(str(message))}\n")
    return 2


def run(args: argparse.Namespace) -> int:
    """Run ``rerank-kit eval`` with parsed ``args``; returns the exit code.

    Example:
        >>> run(parser.parse_args(["data/beir/cisi", "--limit-queries", "5"]))  # doctest: +SKIP
        0
    """
    from rerank_kit.evaluation._compare import compare
    from rerank_kit.evaluation._dataset import load_dataset

    for label, value in (("--depth", args.depth), ("--k", args.k)):
        if value < 1:
            return _err(f"{label} must be >= 1, got {value}")
    if args.limit_queries is not None and args.limit_queries < 1:
        return _err(f"--limit-queries must be >= 1, got {args.limit_queries}")
    from rerank_kit._core.fusion import Fusion

    try:
        fusions = [Fusion(w, args.fusion_method) for w in args.fusion]
    except ValueError as exc:
        return _err(f"--fusion: {exc}")
    if fusions and not args.reranker:
        return _err("--fusion needs at least one --reranker (it fuses reranker scores)")
    try:
        assembly = assembly_from_args(args)
    except ValueError as exc:
        return _err(str(exc))
    if assembly and not args.reranker:
        return _err("context assembly needs at least one --reranker (it assembles its ranking)")
    from rerank_kit._core.protocol import Reranker
    from rerank_kit._core.score_cache import make_score_cache

    engine_log = logging.getLogger(Reranker.__module__)  # where the engine logs truncation
    quiet = _OnePerRunTruncationNotice()
    engine_log.addFilter(quiet)
    if args.instruction is not None and getattr(args, "dask", None):
        return _err("--instruction cannot be combined with --dask yet (workers load plain specs)")
    try:
        if args.plot:  # before any model runs, not after
            require("matplotlib", extra="eval", package="matplotlib")
        with progress_bars(shown=not args.no_progress):
            dataset = load_dataset(args.data, split=args.split, corpus=args.corpus)
            same = (
                "depth",
                "k",
                "embedding_model",
                "limit_queries",
                "cold_cache",
                "long_documents",
            )
            cache = make_score_cache(score_pool(args, dataset, "eval"))  # --dask: scored first
            if cache is None and getattr(args, "calibrate", False):  # score each pair once
                from rerank_kit._core.score_cache import ScoreCache

                cache = ScoreCache(1_000_000)
            rerankers = loaded(args, cache)
            result = compare(
                dataset,
                args.first_stage or ["bm25"],
                rerankers,
                fusion=fusions,
                assembly=assembly,
                show_progress=not args.no_progress,
                score_cache=cache,
                **from_args(args, *same),
            )
            sys.stdout.write(mask_credentials(result.to_table()) + "\n")
            calibration = None
            if getattr(args, "calibrate", False) and rerankers:
                # the fit lives in rerank_kit.learning, above evaluation: the rerank-kit
                # command hands it over (evaluation imports nothing of learning)
                eval_calibration = getattr(args, "calibration_hook", None)
                if eval_calibration is None:
                    raise RerankError(
                        "eval --calibrate needs the fit of rerank_kit.learning: run it as "
                        "`rerank-kit eval --calibrate ...`"
                    )
                calibration = eval_calibration(
                    dataset.head(args.limit_queries) if args.limit_queries else dataset,
                    (args.first_stage or ["bm25"])[0],
                    rerankers,
                    fusions,
                    depth=args.depth,
                    plot=args.plot,
                )
    except (OSError, ValueError, ImportError, RerankError) as exc:
        return _err(str(exc))
    finally:
        engine_log.removeFilter(quiet)

    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = result.to_dict()
        payload["settings"] = {
            "data": str(args.data),
            "split": args.split,
            "first_stages": args.first_stage or ["bm25"],
            "rerankers": list(args.reranker),
            "instruction": args.instruction,
            "embedding_model": args.embedding_model,
            "limit_queries": args.limit_queries,
            "cold_cache": args.cold_cache,
            "fusion": [{"method": f.method, "weight": f.weight} for f in fusions],
            "long_documents": args.long_documents,
            "score_cache": args.score_cache,
            "context_assembly": assembly,
        }
        if calibration is not None:
            payload["calibration"] = calibration
        out.write_text(mask_credentials(json.dumps(payload, indent=2)) + "\n", encoding="utf-8")
        sys.stdout.write(f"wrote {out}\n")
    if args.plot:
        written = result.plot(args.plot)
        sys.stdout.write(f"wrote {written}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rerank_kit.evaluation``: the same as ``rerank-kit eval``.

    Example:
        >>> main(["data/beir/cisi", "--limit-queries", "5"])  # doctest: +SKIP
        0
    """
    parser = argparse.ArgumentParser(prog="rerank-kit eval")
    add_arguments(parser)
    return run(parser.parse_args(argv))
