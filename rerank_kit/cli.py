"""The ``rerank-kit`` command: ``rerank-kit demo`` and ``rerank-kit eval``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rerank-kit`` command.

    Example:
        >>> main(["demo", "--reranker", "flashrank:ms-marco-TinyBERT-L-2-v2"])  # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(prog="rerank-kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    from rerank_kit import demo

    demo_parser = sub.add_parser("demo", help="two-stage retrieval demo over Chroma")
    demo.add_arguments(demo_parser)

    eval_cli: Any = None
    try:
        eval_cli = importlib.import_module("rerank_kit.evaluation._cli")
    except ImportError:  # the evaluation module is optional until its issue lands
        pass
    if eval_cli is not None:
        eval_parser = sub.add_parser("eval", help="measure what reranking buys on a dataset")
        eval_cli.add_arguments(eval_parser)
        tune_cli = importlib.import_module("rerank_kit.evaluation._tune_cli")
        tune_parser = sub.add_parser("tune", help="choose pipeline settings on judged queries")
        tune_cli.add_arguments(tune_parser)
        train_parser = sub.add_parser("train", help="fine-tune a model on judged queries")
        tune_cli.add_train_arguments(train_parser)

    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo.run(args)
    if eval_cli is None:  # pragma: no cover - argparse rejects unknown subcommands first
        parser.error(f"unknown command {args.command!r}")
    if args.command == "tune":
        return tune_cli.run(args)
    if args.command == "train":
        return tune_cli.run_train(args)
    return eval_cli.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
