"""Speed III: the CPU, its GEMM floor, where the time goes, and which path is fastest (issue 31).

In one process, on the bundled ms-marco-MiniLM-L-12-v2, systems alternating every repetition:

- ``default``: today's default (``CrossEncoderReranker`` on the bundled name: per-token int8 +
  ``MultiHeadAttention`` on ONNX Runtime, buckets of <= 16 pairs / 1024 tokens);
- ``st-torch``: sentence-transformers ``CrossEncoder`` fp32 on the dequantized weights;
- ``ov-bf16-fixed``: OpenVINO bf16 on the dequantized graph, batched, each pair padded to a
  multiple of 32 of its own length (rule ``bf16-fixed-shape/1``);
- ``ov-bf16-pair``: the same, one pair per call, unpadded (the rule before issue 31);
- ``ov-f32``: OpenVINO f32 on the dequantized graph, batched (``--ov-f32``).

Printed: the CPU model and flags; the int8 / fp32 GEMM floor (ONNX Runtime, one MatMul of
256x384 by 384x1536, ``MatMulInteger`` u8 x s8 and ``MatMul``) and the bf16 one (OpenVINO's
``MatMul`` at bf16 inference precision; ONNX Runtime has no bf16 CPU kernel), all at the
benchmark's threads; the load average before and after; per-op profiles (ONNX Runtime's
profiler on one bucket of the default path, OpenVINO's per-layer counters on the same pairs);
speed ratios on 3 CISI queries x 50 abstracts and x 50 passages of 18 words (the sets of
``batch_independence.py``); fidelity (top-10 overlap with the fp32 graph, 25 Cranfield queries
x bm25s top 50); batch dependence of the candidate paths.

Usage:
    python benchmarks/speed3.py --threads 2                  # about 15 minutes on 2 busy cores
    python benchmarks/speed3.py --threads 2 --reps-a 1 --reps-b 2 --queries 3   # a quick try
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import batch_independence as bi

DATA = Path(os.environ.get("RERANK_KIT_DATA", "/work/shared/data/beir"))
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8")
M, K, N = 256, 384, 1536


def cpu_line() -> str:
    """The CPU model (lscpu, else /proc/cpuinfo), the flags that matter here, and the tier."""
    from rerank_kit._runtime.cpu import cpu_flags, cpu_tier, fastest_path

    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln)
    except (OSError, StopIteration):
        pass
    flags = cpu_flags()
    have = [f for f in FLAGS if f in flags]
    return (
        f"CPU: {model or 'unknown'}; flags: {' '.join(have)} (absent: "
        f"{' '.join(f for f in FLAGS if f not in flags) or 'none'}); tier {cpu_tier()}, "
        f"table's path {fastest_path().name}"
    )


def gemm_floor(threads: int, seconds: float = 2.0) -> dict[str, float]:
    """GOP/s of one 256x384x1536 MatMul: int8 and fp32 on ONNX Runtime, bf16 on OpenVINO."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def graph(kind: str) -> bytes:
        if kind == "int8":
            a = helper.make_tensor_value_info("a", TensorProto.UINT8, [M, K])
            w = numpy_helper.from_array(rng.integers(-127, 127, (K, N), dtype=np.int8), "w")
            y = helper.make_tensor_value_info("y", TensorProto.INT32, [M, N])
            node = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
        else:
            a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [M, K])
            w = numpy_helper.from_array(rng.standard_normal((K, N), dtype=np.float32), "w")
            y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [M, N])
            node = helper.make_node("MatMul", ["a", "w"], ["y"])
        g = helper.make_graph([node], "gemm", [a], [y], [w])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        return bytes(model.SerializeToString())

    def rate(run: Any, feed: Any) -> float:
        run(feed)
        count, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            run(feed)
            count += 1
        return 2 * M * K * N * count / (time.perf_counter() - t0) / 1e9

    out = {}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    for kind in ("int8", "fp32"):
        sess = ort.InferenceSession(graph(kind), opts, providers=["CPUExecutionProvider"])
        feed = (
            rng.integers(0, 255, (M, K), dtype=np.uint8)
            if kind == "int8"
            else rng.standard_normal((M, K), dtype=np.float32)
        )
        out[f"{kind} (ONNX Runtime)"] = rate(lambda f, s=sess: s.run(None, {"a": f}), feed)
    try:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(onnx.load_from_string(graph("fp32")).SerializeToString(), b"")
        for precision in ("bf16", "f32"):
            compiled = core.compile_model(
                model,
                "CPU",
                {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads},
            )
            req = compiled.create_infer_request()
            feed = rng.standard_normal((M, K), dtype=np.float32)
            out[f"{precision} (OpenVINO)"] = rate(lambda f, r=req: r.infer({0: f}), feed)
    except ImportError:
        pass
    return out


def bucket(model: Any, query: str, texts: list[str]) -> dict[str, Any]:
    """One padded batch of the pairs (as the default path's longest bucket would be)."""
    import numpy as np

    encodings, _ = model._encode(query, texts)
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), model.pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for r, e in enumerate(encodings):
        ids[r, : len(e.ids)], mask[r, : len(e.ids)], types[r, : len(e.ids)] = e.ids, 1, e.type_ids
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def ort_profile(graph: Path, feeds: dict[str, Any], threads: int, work: Path) -> dict[str, float]:
    """Share of kernel time by op type (ONNX Runtime's profiler, 3 runs after a warm-up)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.enable_profiling = True
    opts.profile_file_prefix = str(work / "ort-profile")
    sess = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    feed = {k: v for k, v in feeds.items() if k in names}
    for _ in range(4):
        sess.run(None, feed)
    events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
    total = sum(by_op.values()) or 1
    return {op: 100 * t / total for op, t in by_op.most_common(10)}


def ov_profile(graph: Path, feeds: dict[str, Any], threads: int) -> dict[str, float]:
    """Share of time by layer type (OpenVINO's per-layer counters, bf16, 3 runs)."""
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": threads}
    compiled = core.compile_model(
        core.read_model(str(graph)), "CPU", {**config, "PERF_COUNT": True}
    )
    req = compiled.create_infer_request()
    by_type: collections.Counter[str] = collections.Counter()
    for _ in range(3):
        req.infer(feeds)
        for info in req.get_profiling_info():
            by_type[info.node_type] += info.real_time.total_seconds()
    total = sum(by_type.values()) or 1
    return {op: 100 * t / total for op, t in by_type.most_common(10)}


def candidates(work: Path, threads: int, with_f32: bool) -> dict[str, Any]:
    """The OpenVINO paths, as ``score(query, texts)`` callables, and the bf16 reranker."""
    from rerank_kit import CrossEncoderReranker
    from rerank_kit.models import BUNDLED_CROSS_ENCODER

    kwargs = {"cache_dir": work / "onnx", "threads": threads}
    out: dict[str, Any] = {}
    fixed = CrossEncoderReranker(
        BUNDLED_CROSS_ENCODER,
        backend="openvino",
        model_kwargs={**kwargs, "precision": "bf16"},
    )
    assert fixed._onnx.rule == "bf16-fixed-shape/1", fixed._onnx.plan
    out["ov-bf16-fixed"] = fixed
    pair = CrossEncoderReranker(
        BUNDLED_CROSS_ENCODER,
        backend="openvino",
        model_kwargs={**kwargs, "precision": "bf16"},
    )
    pair._onnx.plan = dataclasses.replace(pair._onnx.plan, pad_step=None, per_pair=True)
    out["ov-bf16-pair"] = pair
    if with_f32:
        out["ov-f32"] = CrossEncoderReranker(
            BUNDLED_CROSS_ENCODER,
            backend="openvino",
            model_kwargs={**kwargs, "precision": "fp32"},
        )
    return out


def floor_ms(model: Any, sets: dict[str, Any], int8_gops: float) -> dict[str, float]:
    """Per set: ms per 50 pairs at the int8 GEMM floor (the encoder's GEMMs only: 12 layers x
    12 d^2 multiply-adds per token, d = 384, over the set's real tokens; attention excluded)."""
    ops_per_token = 2 * 12 * 12 * 384 * 384
    out = {}
    for label, (queries, passages) in sets.items():
        tokens = sum(
            len(e.ids)
            for q, ps in zip(queries, passages, strict=True)
            for e in model._encode(q, ps)[0]
        )
        pairs = sum(len(ps) for ps in passages)
        out[label] = tokens * ops_per_token / (int8_gops * 1e9) * 1000 * 50 / pairs
    return out


def nbits_system(work: Path, threads: int, default_model: Any, bits: int) -> Any:
    """Weight-only ``MatMulNBits`` (``bits``, blocks of 32, symmetric, ``accuracy_level=4``: int8
    activations quantized per row and block, so batch-independent by construction) on the
    dequantized bundled graph, attention fused by ONNX Runtime's BERT optimizer and split into
    ``MatMul`` + ``MultiHeadAttention``; run in today's buckets. Needs ``onnx-ir`` (ONNX
    Runtime's quantizer imports it)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    from onnxruntime.transformers import optimizer

    from rerank_kit._runtime.attention_fusion import split_attention
    from rerank_kit._runtime.batching import run_bucketed
    from rerank_kit._runtime.dequantize import dequantized_graph

    graph = work / f"nbits{bits}.onnx"
    if not graph.is_file():
        dequantized_graph(default_model.onnx_path, work / "nbits-fp32.onnx")
        fused = optimizer.optimize_model(
            str(work / "nbits-fp32.onnx"),
            model_type="bert",
            num_heads=12,
            hidden_size=384,
            opt_level=0,
            use_gpu=False,
        )
        fused.save_model_to_file(str(work / "nbits-fused.onnx"))
        split_attention(work / "nbits-fused.onnx", work / "nbits-split.onnx")
        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(work / "nbits-split.onnx")),
            bits=bits,
            block_size=32,
            is_symmetric=True,
            accuracy_level=4,
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(graph), False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]

    def score(query: str, texts: list[str]) -> list[float]:
        encodings, _ = default_model._encode(query, texts)
        out = run_bucketed(
            lambda f: sess.run(None, f)[0], encodings, names, default_model.pad_id, 16, 1024
        )
        return [float(1 / (1 + math.exp(-x))) for x in out[:, 0]]  # the model card's sigmoid

    return score


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps-a", type=int, default=2, help="repetitions on (a) abstracts")
    p.add_argument("--reps-b", type=int, default=6, help="repetitions on (b) 18-word passages")
    p.add_argument("--queries", type=int, default=25, help="Cranfield queries for fidelity")
    p.add_argument("--ov-f32", action="store_true", help="also time OpenVINO f32")
    p.add_argument("--fidelity-default", action="store_true", help="fidelity of default too")
    p.add_argument(
        "--nbits", type=int, action="append", default=[], help="also MatMulNBits (8 and/or 4)"
    )
    p.add_argument("--work", help="keep graphs here (default: a temp dir)")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    bi.BEIR = DATA
    threads = args.threads
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="speed3-"))
    print(cpu_line())
    print(f"start: {bi.machine_load()}; {threads} threads")
    floors = gemm_floor(threads)
    print("GEMM floor 256x384x1536: " + ", ".join(f"{k} {v:.0f} GOP/s" for k, v in floors.items()))
    base = bi.build_systems(work, threads)
    ranker = candidates(work, threads, args.ov_f32)
    systems = {"default": base["new"], "st-torch": base["st-torch"], "fp32": base["fp32"]}
    systems.update({name: r.score for name, r in ranker.items()})
    for bits in args.nbits:
        systems[f"ort-nbits{bits}"] = nbits_system(work, threads, base["new"].__self__._onnx, bits)
    sets = {k: (q[:3], ps[:3]) for k, (q, ps) in bi.speed_sets().items()}

    query, texts = sets["(a) abstracts"][0][0], sets["(a) abstracts"][1][0][:16]
    default_model = base["new"].__self__._onnx
    feeds = bucket(default_model, query, texts)
    print(
        f"profile: one bucket of {feeds['input_ids'].shape[0]} pairs x "
        f"{feeds['input_ids'].shape[1]} tokens"
    )
    prof = {"default (ORT)": ort_profile(default_model.plan.graph, feeds, threads, work)}
    prof["ov-bf16 (OpenVINO)"] = ov_profile(
        ranker["ov-bf16-fixed"]._onnx.plan.graph, feeds, threads
    )
    for name, shares in prof.items():
        print(f"  {name}: " + ", ".join(f"{op} {s:.1f}%" for op, s in shares.items()))

    timed = {n: s for n, s in systems.items() if n != "fp32"}
    print(f"before timing: {bi.machine_load()}")
    times = bi.time_sets(
        {**timed, "fp32": systems["fp32"]},
        sets,
        {"(a) abstracts": args.reps_a, "(b) 18 words": args.reps_b},
    )
    print(f"after timing: {bi.machine_load()}")
    floors_ms = floor_ms(default_model, sets, floors["int8 (ONNX Runtime)"])
    for label, t in times.items():
        med = {n: round(statistics.median(v) / 3 * 1000) for n, v in t.items()}
        print(f"{label}: median ms per 50 pairs {med}")
        print(
            f"  int8 GEMM floor {floors_ms[label]:.0f} ms per 50: the default is "
            f"{med['default'] / floors_ms[label]:.1f}x it"
        )
        for name in t:
            print(
                f"  {name}: {bi.ratio(t, 'default', name):.2f}x the default, "
                f"{bi.ratio(t, 'st-torch', name):.2f}x st-torch"
            )
    nbits = [f"ort-nbits{bits}" for bits in args.nbits]
    names = ["ov-bf16-fixed", *nbits] + (["default"] if args.fidelity_default else [])
    fid = bi.fidelity(systems, bi.cranfield_bm25(args.queries), names)
    dep_sets = {k: (q[:1], ps[:1]) for k, (q, ps) in sets.items()}
    dep = bi.batch_dependence(systems, dep_sets, 1, ["ov-bf16-fixed", *nbits])
    print(f"end: {bi.machine_load()}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "cpu": cpu_line(),
                    "floors": floors,
                    "floor_ms_per_50": floors_ms,
                    "profiles": prof,
                    "times": times,
                    "fidelity": fid,
                    "batch_dependence": dep,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
