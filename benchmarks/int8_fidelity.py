"""How closely does dynamic int8 follow fp32, on a cross-encoder with TRAINED weights?

Random weights say nothing about quantization error on a real model, so this script measures it
on the trained cross-encoder ms-marco-MiniLM-L-12-v2, built only from the project's own pieces:

1. the model: ``rerank_kit.models.bundled_cross_encoder_torch()``, the bundled int8 graph's
   weights dequantized to an fp32 PyTorch folder, fine-tuned on Cranfield's training queries by
   ``rerank_kit.evaluation.train`` (what ``rerank-kit train`` runs: negatives mined from the
   bm25s first stage, sentence-transformers' ``CrossEncoderTrainer``, a dev split for early
   stopping, a step budget for a CPU); ``--bundled-fp32`` skips the fine-tuning and compares on
   the dequantized weights as they are, ``--model DIR`` on any local cross-encoder folder;
2. the rerankers: ``OnnxCrossEncoderReranker`` exports that folder to ONNX, fp32 and dynamic
   int8 (and, with ``openvino`` installed, ``backend="openvino"``: bf16 on CPUs with AVX512_BF16
   or AMX, f32 elsewhere);
3. the comparison, on the test queries ``train`` held out (the same seeded split for every
   mode): each reranks the ``BM25FirstStage`` top ``--candidates``, and int8 is compared with
   fp32: top-10 overlap (|top10 fp32 & top10 int8| / 10), identical top-10 order, Kendall tau
   over the candidates, max score gap, and nDCG@10 (graded qrels) of BM25, fp32 and int8, to
   show the model ranks well and that int8 keeps it.

The fine-tuned model and its report (``train.json``) stay in ``--work``: a rerun with the same
folder compares again without training again.

Usage:
    python benchmarks/int8_fidelity.py --work /tmp/int8   # fine-tune (100 steps), compare
    python benchmarks/int8_fidelity.py --bundled-fp32     # no fine-tuning
    python benchmarks/int8_fidelity.py --quick            # small sizes, to try the script
        # (40 queries, 5 steps; 13 min on 2 busy cores: the trainer evaluates on the dev
        # queries and checkpoints at every step of so short a budget)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
CRANFIELD = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "cranfield"
# The split of ``rerank_kit.evaluation.train`` (its defaults): the test queries are held out.
TEST_SIZE, DEV_SIZE = 0.3, 0.1


def say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def model_folder(args: argparse.Namespace, data: Any, work: Path) -> tuple[Path, str]:
    """The cross-encoder folder to compare on, and one line saying where it came from."""
    from rerank_kit.evaluation import train
    from rerank_kit.models import bundled_cross_encoder_torch

    if args.model:
        return Path(args.model), f"the local model {args.model}"
    base = bundled_cross_encoder_torch(work / "ms-marco-MiniLM-L-12-v2-fp32")
    if args.bundled_fp32:
        return base, "the bundled ms-marco-MiniLM-L-12-v2, int8 weights dequantized to fp32"
    tuned = work / "ms-marco-MiniLM-L-12-v2-cranfield"
    report_file = work / "train.json"
    if not (tuned / "config.json").is_file() or not report_file.is_file():
        say(f"fine-tuning on {data.name} (at most {args.max_steps} steps)")
        start = time.perf_counter()
        result = train(
            data,
            f"cross-encoder:{base}",
            tuned,
            depth=args.candidates,
            negatives=args.negatives,
            test_size=TEST_SIZE,
            dev_size=DEV_SIZE,
            seed=args.seed,
            batch_size=args.batch_size,
            max_steps=args.max_steps,
            max_length=args.max_length,
        )
        report = {**result.to_dict(), "seconds": time.perf_counter() - start}
        report_file.write_text(json.dumps(report, indent=2) + "\n")
    report = json.loads(report_file.read_text())
    lo, hi = report["difference"]["ci95"]
    queries = report["queries"]
    return tuned, (
        f"the bundled ms-marco-MiniLM-L-12-v2 (fp32) fine-tuned by rerank_kit.evaluation.train: "
        f"{report['pairs']} pairs from {queries['train']} training queries "
        f"({queries['dev']} dev), {report['steps']} steps of {args.batch_size}, "
        f"{report['seconds']:.0f} s; nDCG@10 on the {queries['test']} test queries "
        f"{report['before']['nDCG@10']:.3f} -> {report['after']['nDCG@10']:.3f} "
        f"(torch, 95% CI of the gain [{lo:+.3f}, {hi:+.3f}])"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--data", default=str(CRANFIELD), help="BEIR folder (default: Cranfield)")
    p.add_argument("--limit-queries", type=int, metavar="N", help="only the first N queries")
    p.add_argument("--eval-queries", type=int, default=50, help="test queries compared on")
    p.add_argument("--candidates", type=int, default=50, help="BM25 candidates per query")
    p.add_argument("--max-steps", type=int, default=100, help="fine-tuning steps (CPU budget)")
    p.add_argument("--max-length", type=int, default=256, help="tokens per training pair")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--negatives", type=int, default=7, help="mined negatives per positive")
    p.add_argument("--seed", type=int, default=0, help="seed of the query split and training")
    p.add_argument("--threads", type=int, help="ONNX Runtime threads (default: its own)")
    p.add_argument("--work", help="keep the models and exports here (default: a temp dir)")
    p.add_argument("--model", help="compare on this local cross-encoder folder (no fine-tuning)")
    p.add_argument(
        "--bundled-fp32",
        action="store_true",
        help="compare on the bundled ms-marco-MiniLM-L-12-v2 dequantized to fp32, not fine-tuned",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes to try the script: 40 queries, 5 steps, 10 test queries x top 20",
    )
    args = p.parse_args()
    if args.quick:
        args.limit_queries = args.limit_queries or 40
        args.max_steps, args.max_length, args.batch_size = 5, 128, 8
        args.eval_queries, args.candidates = min(args.eval_queries, 10), min(args.candidates, 20)

    import numpy as np
    from scipy.stats import kendalltau

    from rerank_kit import OnnxCrossEncoderReranker
    from rerank_kit.evaluation import BM25FirstStage, load_dataset, ndcg_at_k
    from rerank_kit.learning import split_queries

    data = load_dataset(args.data)
    if args.limit_queries:
        data = data.head(args.limit_queries)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rerank-int8-"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir, origin = model_folder(args, data, work)
    _, _, test_q = split_queries(
        list(data.queries), test_size=TEST_SIZE, dev_size=DEV_SIZE, seed=args.seed
    )
    test_q = test_q[: args.eval_queries]

    cache = work / "onnx-cache"
    fp32 = OnnxCrossEncoderReranker(str(model_dir), cache_dir=cache, threads=args.threads)
    int8 = OnnxCrossEncoderReranker(
        str(model_dir), quantize="int8", cache_dir=cache, threads=args.threads
    )
    variants: dict[str, OnnxCrossEncoderReranker] = {"int8": int8}
    try:
        variants["openvino"] = OnnxCrossEncoderReranker(
            str(model_dir), cache_dir=cache, backend="openvino", threads=args.threads
        )
        say(f"openvino precision: {variants['openvino'].precision}")
    except ImportError:
        pass

    bm25 = BM25FirstStage()
    bm25.index(data.corpus)
    candidates = {
        qid: [doc_id for doc_id, _ in bm25.search(data.queries[qid], args.candidates)]
        for qid in test_q
    }
    test_q = [qid for qid in test_q if candidates[qid]]

    # Sanity: the fp32 export scores like sentence-transformers on the same weights.
    q0, texts0 = test_q[0], [data.corpus[d].full_text for d in candidates[test_q[0]]]
    gap_note = "pre-exported ONNX graph: no torch reference"
    if not fp32.pre_exported:
        from sentence_transformers.cross_encoder import CrossEncoder

        st = CrossEncoder(str(model_dir), device="cpu")
        reference = st.predict([(data.queries[q0], t) for t in texts0], show_progress_bar=False)
        gap = float(np.max(np.abs(np.asarray(fp32.score(data.queries[q0], texts0)) - reference)))
        gap_note = f"fp32 ONNX vs sentence-transformers max |gap| on one query: {gap:.1e}"

    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for qid in test_q:
        ids, judged = candidates[qid], data.qrels[qid]
        texts = [data.corpus[d].full_text for d in ids]
        a = np.asarray(fp32.score(data.queries[qid], texts))
        top_a = list(np.argsort(-a, kind="stable"))
        for name, variant in variants.items():
            b = np.asarray(variant.score(data.queries[qid], texts))
            top_b = list(np.argsort(-b, kind="stable"))
            rows.append(
                {
                    "variant": name,
                    "overlap10": len(set(top_a[:10]) & set(top_b[:10])) / min(10, len(ids)),
                    "same_top10_order": top_a[:10] == top_b[:10],
                    "tau": float(kendalltau(a, b).statistic) if len(ids) > 1 else 1.0,
                    "max_gap": float(np.max(np.abs(a - b))),
                    "ndcg_bm25": ndcg_at_k(ids, judged, 10),
                    "ndcg_fp32": ndcg_at_k([ids[i] for i in top_a], judged, 10),
                    "ndcg_int8": ndcg_at_k([ids[i] for i in top_b], judged, 10),
                }
            )
    elapsed = time.perf_counter() - start

    for variant_name in variants:
        rows_v = [r for r in rows if r["variant"] == variant_name]
        label = "int8" if variant_name == "int8" else f"OpenVINO {variants[variant_name].precision}"

        def mean(key: str, rows: list[dict[str, Any]] = rows_v) -> float:
            return statistics.mean(float(r[key]) for r in rows)

        n = len(rows_v)
        print()
        print(
            f"## {label} vs ONNX Runtime fp32 on {model_dir.name} ({n} held-out {data.name} "
            f"queries x BM25 top {args.candidates})"
        )
        print()
        print(f"Model: {origin}. {gap_note}. Scoring took {elapsed:.0f} s.")
        print()
        print("| metric | value |")
        print("|---|---|")
        print(f"| top-10 overlap, mean | {mean('overlap10'):.3f} |")
        print(f"| top-10 overlap, min | {min(r['overlap10'] for r in rows_v):.2f} |")
        print(
            f"| queries with top-10 overlap >= 0.9 | {sum(r['overlap10'] >= 0.9 for r in rows_v)}/{n} |"
        )
        print(f"| identical top-10 order | {sum(r['same_top10_order'] for r in rows_v)}/{n} |")
        print(f"| Kendall tau over {args.candidates}, mean | {mean('tau'):.3f} |")
        print(f"| Kendall tau, min | {min(r['tau'] for r in rows_v):.3f} |")
        print(
            f"| max score gap (sigmoid), mean / max | {mean('max_gap'):.4f} / "
            f"{max(r['max_gap'] for r in rows_v):.4f} |"
        )
        print(
            f"| nDCG@10 BM25 / fp32 / {label} | {mean('ndcg_bm25'):.3f} / {mean('ndcg_fp32'):.3f} / "
            f"{mean('ndcg_int8'):.3f} |"
        )
    print()
    print(f"work dir: {work}")


if __name__ == "__main__":
    main()
