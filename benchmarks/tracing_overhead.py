"""What does tracing cost a rerank? (issue 36)

The bundled ms-marco-MiniLM-L-12-v2 (``onnx:cross-encoder/ms-marco-MiniLM-L-12-v2``) reranks 50
candidates (CISI abstracts when the shared BEIR copy is there, else generated passages), in one
process, three ways, in alternating order (a rotating order per repetition):

- ``removed``: the engine's path with the tracing code taken out: ``Request.build``, the scoring
  (``Reranker._scored``) and ``Request.finish``, with no rerank scope, span, metric or usage;
- ``no-sdk``: ``rerank()`` as shipped, with ``opentelemetry-api`` installed but no SDK configured
  (the API's non-recording spans: what a user without tracing set up runs);
- ``sdk``: ``rerank()`` with an SDK ``TracerProvider`` (``SimpleSpanProcessor`` into an
  ``InMemorySpanExporter``) and a ``MeterProvider`` (``InMemoryMetricReader``): every span and
  attribute built and exported, every metric recorded.

Each repetition times ``--calls`` calls per way; the figures are medians over repetitions of
per-call means, and ratios are medians of per-repetition ratios against ``removed``. The load
average is recorded before and after (the machine is shared).

Usage:
    python benchmarks/tracing_overhead.py                     # about 2 minutes on 2 busy cores
    python benchmarks/tracing_overhead.py --reps 5 --calls 5  # a quick try
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# the shared BEIR copy sits beside the checkout (../shared), or beside a worktree's parent
CISI = next(
    (
        p / "shared" / "data" / "beir" / "cisi"
        for p in Path(__file__).resolve().parents[2:4]
        if (p / "shared" / "data" / "beir" / "cisi").exists()
    ),
    Path("missing"),
)


def say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def machine_load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def workload(n: int) -> tuple[str, list[str], str]:
    corpus = CISI / "corpus.jsonl"
    if corpus.exists():
        texts = []
        with corpus.open() as f:
            for line in f:
                row = json.loads(line)
                text = " ".join(str(row.get("text", "")).split()[:120])
                if text:
                    texts.append(text)
                if len(texts) == n:
                    break
        return "the use of computers in library cataloguing", texts, "CISI abstracts (<=120 words)"
    words = "retrieval library index catalogue query relevance document user search system".split()
    texts = [" ".join(words[(i + j) % len(words)] for j in range(60 + i % 40)) for i in range(n)]
    return "library catalogue search", texts, "generated passages (60-99 words)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from rerank_kit import configure_tracing, load_reranker
    from rerank_kit._core.ranking import Request

    query, texts, what = workload(args.candidates)
    reranker = load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])

    def removed() -> Any:
        request = Request.build(reranker, query, texts, top_n=10)
        scored = reranker._scored(request.query, request.texts)
        return request.finish(scored, request.context(reranker, scored))

    def shipped() -> Any:
        return reranker.rerank(query, texts, top_n=10)

    ways = {
        "removed": ({}, removed),
        "no-sdk": ({"tracer_provider": None, "meter_provider": None}, shipped),
        "sdk": ({"tracer_provider": tracer_provider, "meter_provider": meter_provider}, shipped),
    }
    for _ in range(3):  # warm-up: sessions, allocator, the API's first look-up
        for settings, call in ways.values():
            configure_tracing(**settings) if settings else None
            call()
    assert [r.index for r in removed()] == [r.index for r in shipped()]
    load_before = machine_load()
    per_call: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for rep in range(args.reps):
        order = names[rep % 3 :] + names[: rep % 3]
        for name in order:
            settings, call = ways[name]
            if settings:
                configure_tracing(**settings)
            start = time.perf_counter()
            for _ in range(args.calls):
                call()
            per_call[name].append((time.perf_counter() - start) / args.calls)
        exporter.clear()
    load_after = machine_load()
    spans_per_call = 0
    configure_tracing(tracer_provider=tracer_provider, meter_provider=meter_provider)
    shipped()
    spans_per_call = len(exporter.get_finished_spans())
    base = per_call["removed"]
    result = {
        "workload": f"{args.candidates} candidates ({what}), top_n=10, {reranker.name}",
        "reps": args.reps,
        "calls_per_rep": args.calls,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpus": os.cpu_count(),
        "median_ms_per_call": {
            k: round(statistics.median(v) * 1e3, 2) for k, v in per_call.items()
        },
        "median_ratio_vs_removed": {
            k: round(statistics.median(a / b for a, b in zip(v, base, strict=True)), 4)
            for k, v in per_call.items()
        },
        "spans_per_call_with_sdk": spans_per_call,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
