"""Long documents: nDCG@10 and latency with truncation against token windows (``long_documents``).

No public collection here has long passages, so this script builds one from Cranfield,
deterministically (``--seed``): every document is embedded at a random offset inside a run of
unrelated documents. The prefix before it is drawn uniformly between 0 and twice the reranker's
token limit, so for about half of the documents the document's own text starts past the limit
and a truncating reranker never reads it; a suffix of 0 to one limit follows. The filler comes
from the Cranfield documents that no query judges relevant, so it adds no relevant text; queries
and judgments are Cranfield's own (each long passage keeps its document's id).

Then ``rerank_kit.evaluation.compare`` runs BM25 over the long passages and reranks its top
``--depth`` with the same reranker twice: ``long_documents="truncate"`` (the default) and
``"max"`` (and any other ``--modes``). Quality runs with warm caches (each passage or window
is embedded once); latency is then timed apart on ``--timing-queries`` queries with every cache
emptied before each call, so it is the full cost of scoring every window of every candidate.

Usage:
    python benchmarks/long_documents.py ../shared/data/beir/cranfield --json out.json
    python benchmarks/long_documents.py DATA --reranker flashrank:/path/to/model --queries 50
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rerank_kit import load_reranker
from rerank_kit._core.windows import make_windows
from rerank_kit.evaluation import BM25FirstStage, Dataset, Document, compare, load_dataset

DEFAULT_RERANKER = "bi-encoder:all-MiniLM-L6-v2"


def _tokenizer_and_limit(reranker: Any) -> tuple[Any, int]:
    """A Hugging Face tokenizer and the passage token limit of ``reranker``."""
    model = getattr(reranker, "model", None)
    tokenizer = getattr(model, "tokenizer", None)
    limit = getattr(model, "max_seq_length", None)
    if tokenizer is None or not limit:
        raise SystemExit(f"{reranker.name}: this script needs a sentence-transformers model")
    return tokenizer, int(limit)


def _cut(tokenizer: Any, text: str, tokens: int) -> str:
    """The start of ``text`` holding ``tokens`` tokens (at a token boundary)."""
    if tokens <= 0:
        return ""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    if len(offsets) <= tokens:
        return text
    return text[: offsets[tokens - 1][1]]


def build_long_collection(
    data: Dataset, tokenizer: Any, limit: int, seed: int
) -> tuple[Dataset, dict[str, int]]:
    """Each document inside a run of filler; returns the dataset and each prefix's length."""
    rng = random.Random(seed)
    relevant = {d for judged in data.qrels.values() for d, g in judged.items() if g > 0}
    pool = [doc.full_text for i, doc in data.corpus.items() if i not in relevant]
    if len(pool) < 20:
        raise SystemExit("too few never-relevant documents to use as filler")

    def filler(tokens: int) -> str:
        parts: list[str] = []
        while True:
            parts.append(rng.choice(pool))
            text = " ".join(parts)
            if len(text) > 4 * tokens + 200 or tokens == 0:  # about 4+ characters a token
                return _cut(tokenizer, text, tokens)

    corpus: dict[str, Document] = {}
    prefix_tokens: dict[str, int] = {}
    for doc_id, doc in data.corpus.items():
        before = rng.randint(0, 2 * limit)
        after = rng.randint(0, limit)
        text = " ".join(p for p in (filler(before), doc.full_text, filler(after)) if p)
        corpus[doc_id] = Document(doc_id, text)
        prefix_tokens[doc_id] = before
    return Dataset(f"{data.name}-long", corpus, data.queries, data.qrels), prefix_tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="BEIR folder of Cranfield (or any BEIR collection)")
    parser.add_argument("--reranker", default=DEFAULT_RERANKER, help="load_reranker spec")
    parser.add_argument("--modes", nargs="+", default=["truncate", "max"])
    parser.add_argument("--queries", type=int, default=100, help="first N judged queries")
    parser.add_argument("--depth", type=int, default=30, help="BM25 candidates reranked")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--timing-queries", type=int, default=8, help="queries timed cold")
    parser.add_argument("--json", metavar="OUT", help="write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    data = load_dataset(args.data)
    judged = [q for q in data.queries if any(g > 0 for g in data.qrels.get(q, {}).values())]
    data = Dataset(
        data.name,
        data.corpus,
        {q: data.queries[q] for q in judged[: args.queries]},
        {q: data.qrels[q] for q in judged[: args.queries]},
    )
    rerankers = []
    for mode in args.modes:
        r = load_reranker(args.reranker)
        r.set_long_documents(mode)
        rerankers.append(r)
    tokenizer, limit = _tokenizer_and_limit(rerankers[0])
    start = time.perf_counter()
    long_data, prefix = build_long_collection(data, tokenizer, limit, args.seed)
    relevant = {d for q in long_data.queries for d, g in long_data.qrels[q].items() if g > 0}
    past = sum(1 for d in relevant if prefix[d] >= limit) / len(relevant)
    sizes = sorted(
        len(tokenizer(d.text, add_special_tokens=False)["input_ids"])
        for d in long_data.corpus.values()
    )
    sys.stderr.write(f"built in {time.perf_counter() - start:.0f} s\n")
    result = compare(
        long_data,
        BM25FirstStage(),
        rerankers,
        depth=args.depth,
        k=10,
        show_progress=True,
    )
    # latency: every cache emptied before each call; the modes alternate within each query
    bm25 = BM25FirstStage()
    bm25.index(long_data.corpus)
    timings: list[list[float]] = [[] for _ in rerankers]
    windows: list[int] = []
    for query in list(long_data.queries.values())[: args.timing_queries]:
        texts = [long_data.corpus[d].text for d, _ in bm25.search(query, args.depth)]
        for i, reranker in enumerate(rerankers):
            reranker.clear_cache()  # type: ignore[attr-defined]
            t0 = time.perf_counter()
            reranker.rerank(query, texts)
            timings[i].append(time.perf_counter() - t0)
        plan = rerankers[-1]._window_plan(query)
        if plan is not None:
            windows.append(len(make_windows(texts, plan)[0]))
    bm25.close()
    ms = [1000 * statistics.median(t) for t in timings]
    lines = [
        f"{long_data.name}: {len(long_data.queries)} queries, {len(long_data.corpus)} passages of "
        f"{sizes[len(sizes) // 2]} tokens (median; {sizes[0]}-{sizes[-1]}); token limit {limit}; "
        f"{100 * past:.0f}% of the relevant documents start past it",
        result.to_table(),
    ]
    base = result.systems[1]
    lines.append(
        f"cold rerank of {args.depth} candidates, median of {len(timings[0])} queries; "
        f"{statistics.mean(windows) / args.depth:.1f} windows per candidate with the last mode"
    )
    for system, cost in zip(result.systems[1:], ms, strict=True):
        lines.append(
            f"{system.reranker}: nDCG@10 {system.metrics['nDCG@10']:.3f} (truncating: "
            f"{base.metrics['nDCG@10']:.3f}); {cost:.0f} ms per query ({cost / ms[0]:.1f}x)"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        payload = result.to_dict()
        payload["settings"] = {
            **vars(args),
            "token_limit": limit,
            "relevant_past_limit": past,
            "passage_tokens_median": sizes[len(sizes) // 2],
            "cold_rerank_ms_p50": dict(zip(args.modes, ms, strict=True)),
            "windows_per_candidate": statistics.mean(windows) / args.depth if windows else None,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
