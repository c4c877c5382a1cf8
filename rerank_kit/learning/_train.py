"""``train``: fine-tune a cross-encoder or bi-encoder on judged queries, proven on held-out ones.

The judged queries are split by query (seeded) into training, dev and test queries. Training
pairs come from the training queries only: each relevant document is a positive, and the
first stage's best-ranked documents judged or assumed not relevant are the mined negatives.
sentence-transformers' own trainers do the work (``CrossEncoderTrainer`` with binary
cross-entropy, or ``SentenceTransformerTrainer`` with a multiple-negatives ranking loss), with the
dev queries' pairs as the evaluation set for early stopping. The model is saved as a folder
that every spec loads (``cross-encoder:FOLDER``, ``onnx:FOLDER``, ``bi-encoder:FOLDER``), and the
held-out comparison reranks the test queries' candidates with the model before and after.

The test queries never reach training, the dev split or any choice: ``TrainResult`` lists the
three query sets, and a test checks that no test query is in what the trainer saw.

Example:
    >>> from rerank_kit.evaluation import load_dataset, train  # doctest: +SKIP
    >>> result = train(load_dataset("data/beir/cisi"), "bi-encoder:all-MiniLM-L6-v2", "out/model")  # doctest: +SKIP
    >>> result.after["nDCG@10"] - result.before["nDCG@10"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
import shutil
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerank_kit._core.errors import missing_extra
from rerank_kit.evaluation._dataset import Dataset
from rerank_kit.evaluation._metrics import evaluate_run
from rerank_kit.learning._tune import _difference

__all__ = ["TrainResult", "cross_encoder_length_attribute", "split_queries", "train"]

logger = logging.getLogger(__name__)

#: Dev pairs the early-stopping loss is computed on (a seeded sample when there are more): on a
#: CPU, evaluating thousands of pairs several times would cost more than the training itself.
MAX_DEV_PAIRS = 512


@dataclass
class TrainResult:
    """What ``train`` did and measured.

    Attributes:
        model_dir: The saved model folder.
        kind: ``"cross-encoder"`` or ``"bi-encoder"``.
        train_queries / dev_queries / test_queries: The query ids of each split.
        pairs: Training examples seen by the trainer (``(query, passage, label)``).
        before / after: Held-out metrics of the test queries, reranked by the model before
            and after fine-tuning.
        difference: nDCG@10 after minus before (``mean``, ``ci95``, ``better``, ``worse``).
        steps: Optimizer steps the trainer took (``max_steps`` caps them).
    """

    model_dir: Path
    kind: str
    train_queries: list[str]
    dev_queries: list[str]
    test_queries: list[str]
    pairs: list[tuple[str, str, float]] = field(repr=False)
    before: dict[str, float]
    after: dict[str, float]
    difference: dict[str, Any]
    steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (without the training pairs)."""
        return {
            "model_dir": str(self.model_dir),
            "kind": self.kind,
            "queries": {
                "train": len(self.train_queries),
                "dev": len(self.dev_queries),
                "test": len(self.test_queries),
            },
            "pairs": len(self.pairs),
            "steps": self.steps,
            "before": self.before,
            "after": self.after,
            "difference": self.difference,
        }


def split_queries(
    qids: Sequence[str], *, test_size: float, dev_size: float, seed: int
) -> tuple[list[str], list[str], list[str]]:
    """Seeded split of query ids into (train, dev, test); test and dev get at least one each.

    Example:
        >>> train, dev, test = split_queries([f"q{i}" for i in range(10)], test_size=0.3, dev_size=0.1, seed=0)
        >>> len(train), len(dev), len(test)
        (6, 1, 3)
    """
    if not 0.0 < test_size < 1.0 or not 0.0 < dev_size < 1.0 or test_size + dev_size >= 1.0:
        raise ValueError(
            f"test_size={test_size} and dev_size={dev_size} must leave training queries"
        )
    shuffled = list(qids)
    random.Random(seed).shuffle(shuffled)
    n_test = max(1, round(len(shuffled) * test_size))
    n_dev = max(1, round(len(shuffled) * dev_size))
    if n_test + n_dev >= len(shuffled):
        raise ValueError(f"{len(shuffled)} judged queries are too few to split")
    test, dev = shuffled[:n_test], shuffled[n_test : n_test + n_dev]
    return shuffled[n_test + n_dev :], dev, test


def train(
    dataset: Dataset,
    model: str,
    output_dir: str | Path,
    *,
    first_stage: str = "bm25",
    depth: int = 50,
    negatives: int = 7,
    test_size: float = 0.3,
    dev_size: float = 0.1,
    seed: int = 0,
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 2e-5,
    max_steps: int | None = None,
    max_length: int | None = None,
    k: int = 10,
    show_progress: bool = False,
    score_cache: Any = None,
) -> TrainResult:
    """Fine-tune ``model`` on the training queries; compare before/after on the test queries.

    Args:
        dataset: Judged queries and corpus.
        model: ``"cross-encoder:ID_OR_PATH"`` or ``"bi-encoder:ID_OR_PATH"`` (torch weights; a
            cross-encoder spec may name any BERT-like model, which gets a fresh one-label head).
        output_dir: Where the fine-tuned model folder is saved.
        first_stage: The first stage that supplies candidates and mined negatives.
        depth: Candidates per query (reranked for the comparison; negatives mined among them).
        negatives: Mined negatives per training query and positive.
        test_size: Share of the queries held out for the before/after comparison.
        dev_size: Share of the queries whose pairs are the early-stopping evaluation set (at
            most ``MAX_DEV_PAIRS`` of them, sampled with ``seed``).
        seed: Seed of the split, the negative sampling and the trainer.
        epochs: Passes over the training pairs (early stopping may end sooner).
        batch_size: Examples per training step.
        learning_rate: Peak learning rate.
        max_steps: Stop after this many training steps (a time budget on a CPU); ``None``:
            ``epochs`` full passes.
        max_length: Tokens per training pair (query and passage; longer ones are cut), for
            speed on a CPU; ``None``: the model's own limit. The comparison runs at the model's
            own limit.
        k: Metric cut-off.
        show_progress: Progress bars on stderr.
        score_cache: A ``ScoreCache`` or a file name for a persistent one, read and filled when
            the original model scores the test queries' candidates (what ``--dask`` fills);
            the fine-tuned model is a new model and scores afresh.

    Returns:
        A ``TrainResult``.
    """
    if max_steps is not None and (isinstance(max_steps, bool) or int(max_steps) < 1):
        raise ValueError(f"max_steps must be a positive int or None, got {max_steps!r}")
    kind, sep, name = model.partition(":")
    if not sep or kind not in ("cross-encoder", "bi-encoder") or not name.strip():
        raise ValueError(
            f"model must be 'cross-encoder:ID_OR_PATH' or 'bi-encoder:ID_OR_PATH', got {model!r}"
        )
    try:
        import datasets  # noqa: F401
    except ImportError as exc:
        raise missing_extra("train", "datasets", exc) from exc
    from rerank_kit._core.score_cache import make_score_cache
    from rerank_kit._registry import load_reranker
    from rerank_kit.evaluation._compare import attach_score_cache
    from rerank_kit.evaluation._first_stage import build_first_stages

    train_q, dev_q, test_q = split_queries(
        list(dataset.queries), test_size=test_size, dev_size=dev_size, seed=seed
    )
    (stage,) = build_first_stages([first_stage])
    candidates: dict[str, list[str]] = {}
    try:
        stage.index(dataset.corpus, show_progress=show_progress)
        for qid, query in dataset.queries.items():
            candidates[qid] = [doc_id for doc_id, _ in stage.search(query, depth)]
    finally:
        stage.close()
    rng = random.Random(seed)

    def pairs_of(qids: list[str]) -> list[tuple[str, str, float]]:
        out = []
        for qid in qids:
            query, judged = dataset.queries[qid], dataset.qrels[qid]
            positives = [d for d, g in judged.items() if g > 0 and d in dataset.corpus]
            pool = [d for d in candidates[qid] if judged.get(d, 0) <= 0]
            for pos in positives:
                out.append((query, dataset.corpus[pos].full_text, 1.0))
                for neg in rng.sample(pool, min(negatives, len(pool))):
                    out.append((query, dataset.corpus[neg].full_text, 0.0))
        return out

    train_pairs, dev_pairs = pairs_of(train_q), pairs_of(dev_q)
    if len(dev_pairs) > MAX_DEV_PAIRS:  # the dev loss is a stopping signal, not a benchmark
        dev_pairs = rng.sample(dev_pairs, MAX_DEV_PAIRS)
    if not train_pairs:
        raise ValueError("the training queries have no relevant document in the corpus")
    out = Path(output_dir)
    work = Path(
        tempfile.mkdtemp(prefix="rerank-kit-train-")
    )  # checkpoints, not in the model folder

    def evaluate(reranker: Any) -> dict[str, dict[str, float]]:
        run: dict[str, list[str]] = {}
        for qid in test_q:
            ids = candidates[qid]
            if not ids:
                run[qid] = []
                continue
            texts = [dataset.corpus[d].full_text for d in ids]
            run[qid] = [ids[r.index] for r in reranker.rerank(dataset.queries[qid], texts)]
        qrels = {q: dataset.qrels[q] for q in test_q}
        return evaluate_run(run, qrels, k=k, recall_depth=depth)[1]

    original = load_reranker(model)
    attach_score_cache(original, make_score_cache(score_cache))
    before_q = evaluate(original)
    fit = _fit_cross_encoder if kind == "cross-encoder" else _fit_bi_encoder
    options = _Options(
        epochs, batch_size, learning_rate, seed, show_progress, max_steps, max_length
    )
    try:
        steps = fit(name, _Job(train_pairs, dev_pairs, out, work, options))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    after_q = evaluate(load_reranker(f"{kind}:{out}"))

    def means(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
        names = list(next(iter(per_query.values())))
        return {n: statistics.fmean(per_query[q][n] for q in test_q) for n in names}

    main = f"nDCG@{k}"
    return TrainResult(
        model_dir=out,
        kind=kind,
        train_queries=train_q,
        dev_queries=dev_q,
        test_queries=test_q,
        pairs=train_pairs,
        before=means(before_q),
        after=means(after_q),
        difference=_difference(
            {q: after_q[q][main] for q in test_q}, {q: before_q[q][main] for q in test_q}, seed
        ),
        steps=steps,
    )


@dataclass(frozen=True)
class _Options:
    """The trainer settings ``train`` passes to both fit functions."""

    epochs: int
    batch: int
    lr: float
    seed: int
    progress: bool
    max_steps: int | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class _Job:
    """One fine-tuning run: its pairs, where it writes, and the trainer settings."""

    train_pairs: list[tuple[str, str, float]]
    dev_pairs: list[tuple[str, str, float]]
    out: Path
    work: Path
    options: _Options


def _train_and_save(
    classes: tuple[Any, Any],
    model: Any,
    loss: Any,
    train: Any,
    dev: Any,
    job: _Job,
    length: tuple[str, int | None],
) -> int:
    """Run a sentence-transformers trainer (``classes``: trainer, its arguments), save the model.

    Early stopping (patience 1) and the best checkpoint when there is a ``dev`` table; the model
    is saved with its own token limit (``length``: attribute name and value) and no training
    truncation. Returns the steps taken.
    """
    from transformers import EarlyStoppingCallback

    trainer_cls, args_cls = classes
    trainer = trainer_cls(
        model=model,
        args=_training_args(args_cls, job.work, job.options, dev is not None),
        train_dataset=train,
        eval_dataset=dev,
        loss=loss,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=1)] if dev is not None else None,
    )
    trainer.train()
    steps = int(trainer.state.global_step)
    setattr(model, *length)  # saved with its own limit
    _forget_truncation(model.tokenizer)
    model.save_pretrained(str(job.out))
    return steps


def cross_encoder_length_attribute(cross_encoder_class: Any) -> str:
    """The token-limit attribute of sentence-transformers' ``CrossEncoder``.

    Version 6 renamed ``max_length`` to ``max_seq_length`` (the old name warns); 5.x has only
    ``max_length``.

    Example:
        >>> class Old:
        ...     max_length = 512
        >>> cross_encoder_length_attribute(Old)
        'max_length'
    """
    return "max_seq_length" if hasattr(cross_encoder_class, "max_seq_length") else "max_length"


def _forget_truncation(tokenizer: Any) -> None:
    """Drop the truncation/padding state training left in a fast tokenizer.

    Otherwise ``tokenizer.json`` is saved with the training length as its truncation, and
    runtimes that read that file (the ONNX backend) would cut passages there.
    """
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()


def _training_args(cls: Any, work: Path, o: _Options, has_dev: bool) -> Any:
    steps = o.max_steps
    return cls(
        output_dir=str(work),
        num_train_epochs=o.epochs,
        max_steps=-1 if steps is None else int(steps),
        per_device_train_batch_size=o.batch,
        per_device_eval_batch_size=o.batch,
        learning_rate=o.lr,
        seed=o.seed,
        # a step budget evaluates (and may stop early) three times within it
        eval_strategy=("steps" if steps else "epoch") if has_dev else "no",
        save_strategy=("steps" if steps else "epoch") if has_dev else "no",
        eval_steps=max(1, steps // 3) if steps else None,
        save_steps=max(1, steps // 3) if steps else None,
        load_best_model_at_end=has_dev,
        metric_for_best_model="eval_loss" if has_dev else None,
        save_total_limit=1,
        report_to="none",
        disable_tqdm=not o.progress,
        use_cpu=True,
        logging_strategy="no",
    )


def _fit_cross_encoder(name: str, job: _Job) -> int:
    import datasets
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from rerank_kit._runtime.hub import resolve_hf_model

    model = CrossEncoder(resolve_hf_model(name, kind="cross-encoder"), num_labels=1, device="cpu")
    limit = cross_encoder_length_attribute(CrossEncoder)
    full_length = getattr(model, limit)
    if job.options.max_length:
        setattr(model, limit, job.options.max_length)

    def table(pairs: list[tuple[str, str, float]]) -> Any:
        return datasets.Dataset.from_dict(
            {
                "query": [p[0] for p in pairs],
                "passage": [p[1] for p in pairs],
                "label": [p[2] for p in pairs],
            }
        )

    train = table(job.train_pairs)  # built first: the training table, then the dev one
    dev = table(job.dev_pairs) if job.dev_pairs else None
    loss = BinaryCrossEntropyLoss(model)
    trainer = (CrossEncoderTrainer, CrossEncoderTrainingArguments)
    length = (limit, full_length)
    return _train_and_save(trainer, model, loss, train, dev, job, length)


def _fit_bi_encoder(name: str, job: _Job) -> int:
    import datasets
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.losses import (
            MultipleNegativesRankingLoss,
        )
    except ImportError:  # 5.x
        from sentence_transformers.losses import (  # type: ignore[no-redef]
            MultipleNegativesRankingLoss,
        )

    from rerank_kit._runtime.hub import resolve_hf_model

    model = SentenceTransformer(resolve_hf_model(name, kind="bi-encoder"), device="cpu")
    full_length = model.max_seq_length
    if job.options.max_length:
        model.max_seq_length = job.options.max_length

    def table(pairs: list[tuple[str, str, float]]) -> Any:
        positives = [p for p in pairs if p[2] > 0]  # in-batch negatives do the rest
        return datasets.Dataset.from_dict(
            {"anchor": [p[0] for p in positives], "positive": [p[1] for p in positives]}
        )

    train = table(job.train_pairs)  # built first: the training table, then the dev one
    dev = table(job.dev_pairs) if any(p[2] > 0 for p in job.dev_pairs) else None
    loss = MultipleNegativesRankingLoss(model)
    trainer = (SentenceTransformerTrainer, SentenceTransformerTrainingArguments)
    length = ("max_seq_length", full_length)
    return _train_and_save(trainer, model, loss, train, dev, job, length)
