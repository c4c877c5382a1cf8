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

On a loaded machine a whole call varies by far more than 2%, so the tracing's own cost is also
measured apart: the same three ways around ``rerank_kit.testing.FakeReranker`` (a model that
costs almost nothing) on the same 50 passages, ``--machinery-reps`` alternating repetitions;
the added microseconds per call, divided by the bundled model's *fastest* call (the least loaded
one: the largest, most conservative ratio), give the overhead ratio.

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
    parser.add_argument("--machinery-reps", type=int, default=300)
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

    no_sdk = {"tracer_provider": None, "meter_provider": None}
    sdk = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}

    def ways_for(model: Any) -> dict[str, tuple[dict[str, Any], Any]]:
        def removed() -> Any:
            request = Request.build(model, query, texts, top_n=10)
            scored = model._scored(request.query, request.texts)
            return request.finish(scored, request.context(model, scored))

        def shipped() -> Any:
            return model.rerank(query, texts, top_n=10)

        return {"removed": ({}, removed), "no-sdk": (no_sdk, shipped), "sdk": (sdk, shipped)}

    def alternate(ways: dict[str, Any], reps: int, calls: int) -> dict[str, list[float]]:
        for _ in range(3):  # warm-up: sessions, allocator, the API's first look-up
            for settings, call in ways.values():
                configure_tracing(**settings) if settings else None
                call()
        per_call: dict[str, list[float]] = {name: [] for name in ways}
        names = list(ways)
        for rep in range(reps):
            for name in names[rep % 3 :] + names[: rep % 3]:
                settings, call = ways[name]
                if settings:
                    configure_tracing(**settings)
                start = time.perf_counter()
                for _ in range(calls):
                    call()
                per_call[name].append((time.perf_counter() - start) / calls)
            exporter.clear()
        return per_call

    ways = ways_for(reranker)
    assert [r.index for r in ways["removed"][1]()] == [r.index for r in ways["no-sdk"][1]()]
    load_before = machine_load()
    per_call = alternate(ways, args.reps, args.calls)
    load_mid = machine_load()
    from rerank_kit.testing import FakeReranker

    machinery = alternate(ways_for(FakeReranker()), args.machinery_reps, 20)
    load_after = machine_load()
    fastest_model_call = min(per_call["removed"])
    added_us = {
        k: round((statistics.median(v) - statistics.median(machinery["removed"])) * 1e6, 1)
        for k, v in machinery.items()
    }
    configure_tracing(**sdk)
    exporter.clear()
    ways["sdk"][1]()
    spans_per_call = len(exporter.get_finished_spans())
    base = per_call["removed"]
    result = {
        "workload": f"{args.candidates} candidates ({what}), top_n=10, {reranker.name}",
        "reps": args.reps,
        "calls_per_rep": args.calls,
        "load_average_before": load_before,
        "load_average_after_model_runs": load_mid,
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
        "machinery_median_us_per_call": {
            k: round(statistics.median(v) * 1e6, 1) for k, v in machinery.items()
        },
        "machinery_added_us_per_call": added_us,
        "fastest_model_call_ms": round(fastest_model_call * 1e3, 2),
        "overhead_ratio_vs_fastest_model_call": {
            k: round(v / 1e6 / fastest_model_call, 5) for k, v in added_us.items()
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
