"""The ``rerank-kit`` command: ``demo``, ``eval``, ``tune``, ``calibrate``, ``train`` and ``serve``.

- ``rerank-kit demo``: two-stage retrieval over Chroma, before and after reranking;
- ``rerank-kit eval DATA``: what reranking buys on a dataset, quality and latency
  (``rerank_kit.evaluation``);
- ``rerank-kit tune DATA``: a pipeline's depth, fusion and first stage chosen on judged
  queries, written as a config (``rerank_kit.learning``);
- ``rerank-kit calibrate DATA``: a reranker's (or tuned pipeline's) scores as probabilities,
  fitted on judged queries, for ``min_probability`` (``rerank_kit.learning``);
- ``rerank-kit train DATA``: a cross-encoder or bi-encoder fine-tuned on judged queries
  (``rerank_kit.learning``);
- ``rerank-kit serve --model NAME=SPEC``: rerankers as a Cohere-, Jina- and TEI-compatible
  HTTP endpoint (``rerank_kit.serve``).

Each subcommand imports what it needs only when it runs; ``--help`` lists its options. A
missing extra is one line on stderr naming the ``pip install`` to run, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rerank-kit`` command.

    Example:
        >>> main(["demo", "--reranker", "flashrank:ms-marco-TinyBERT-L-2-v2"])  # doctest: +SKIP
    """
    from rerank_kit import demo
    from rerank_kit.evaluation import _cli as eval_cli
    from rerank_kit.learning import _calibrate_cli as calibrate_cli
    from rerank_kit.learning import _cli as learning_cli
    from rerank_kit.serve import _cli as serve_cli

    parser = argparse.ArgumentParser(
        prog="rerank-kit",
        description="Rerankers for RAG: a demo, and evaluation, tuning and fine-tuning on your data.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_arguments(sub.add_parser("demo", help="two-stage retrieval demo over Chroma"))
    eval_parser = sub.add_parser("eval", help="measure what reranking buys on a dataset")
    eval_cli.add_arguments(eval_parser)
    eval_parser.set_defaults(calibration_hook=calibrate_cli.eval_calibration)  # eval --calibrate
    learning_cli.add_arguments(
        sub.add_parser("tune", help="choose pipeline settings on judged queries")
    )
    calibrate_cli.add_arguments(
        sub.add_parser("calibrate", help="scores as probabilities, fitted on judged queries")
    )
    learning_cli.add_train_arguments(
        sub.add_parser("train", help="fine-tune a model on judged queries")
    )
    serve_cli.add_arguments(
        sub.add_parser("serve", help="serve rerankers over HTTP (Cohere, Jina, TEI schemas)")
    )

    args = parser.parse_args(argv)
    run = {
        "demo": demo.run,
        "eval": eval_cli.run,
        "tune": learning_cli.run,
        "train": learning_cli.run_train,
        "serve": serve_cli.run,
        "calibrate": calibrate_cli.run,
    }[args.command]
    try:
        return run(args)
    except ImportError as exc:
        if _INSTALL_HINT not in str(exc):  # not a missing extra: a bug to see whole
            raise
        sys.stderr.write(f"rerank-kit {args.command}: error: {exc}\n")
        return 2


#: What every missing-extra ``ImportError`` says (``rerank_kit._core.errors.missing_extra``).
_INSTALL_HINT = 'pip install "rerank-kit['


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
