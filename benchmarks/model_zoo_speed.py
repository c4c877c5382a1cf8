"""Speed and fidelity of every rerank-kit path on three real reranker shapes (issue 29, item 5).

Three FULL-SIZE random-weight models are built offline, once, and cached in ``--cache``
(default ``~/.cache/rerank-kit-bench/model-zoo``); random weights cost what trained ones do:

- ``bge-reranker-base`` shape: XLM-RoBERTa base, 12 x 768, vocab 250,002, 514 positions,
  ``type_vocab_size`` 1, pad id 1 (Unigram tokenizer trained here);
- ``gte-reranker-modernbert-base`` shape: ModernBERT base, 22 x 768, vocab 50,368, 8,192
  positions, a global attention layer every third layer and 128-token local attention elsewhere,
  RoPE theta 160,000 / 10,000, mean pooling (byte-level BPE tokenizer trained here);
- ``mxbai-rerank-xsmall-v1`` shape: DeBERTa-v3 xsmall, 12 x 384, vocab 128,100, relative
  attention (256 buckets), ``type_vocab_size`` 0 (Unigram tokenizer trained here).

The tokenizers' vocabularies are smaller than the embedding matrices (trained on CISI and
Cranfield); the models' ``vocab_size`` is the real one, so the embedding tables weigh what the
real ones weigh.

Workload: 6 short CISI queries x 50 passages of about 150 tokens each (CISI abstracts, joined
when short, cut at the 150th token under each model's own tokenizer), 2 threads everywhere
(``torch.set_num_threads``, ONNX Runtime / OpenVINO ``threads``).

Systems, per model, in one process (ST ONNX in a child process of another venv), alternating in
rotating order query by query:

- ``st-torch``: sentence-transformers ``CrossEncoder`` on torch fp32: the peer and the reference;
- ``default``: ``CrossEncoderReranker(folder)``, whatever backend it picks (printed);
- ``onnx-fp32``, ``onnx-int8``: ``backend="onnx"`` (``quantize=None`` / ``"int8"``);
- ``openvino-f32``, ``openvino-bf16``: ``backend="openvino"`` at each precision (bf16 only when
  the CPU has AVX512_BF16 or AMX);
- ``st-onnx``: ``CrossEncoder(backend="onnx")`` (optimum) run by ``--st-onnx-python``, when
  that interpreter exists (optimum cannot share rerank-kit's venv).

A cell that fails (export, quantization, load) is recorded with its error; the run goes on.

Printed and written (``--out``, JSON): CPU model and flags, load average before and after,
threads, per system the median ms per call of 50 passages, the ratio to ``st-torch`` (median of
per-query ratios measured back to back), and fidelity against ``st-torch`` over the same pairs:
max |score diff|, mean Spearman over queries, mean top-10 overlap.

The run is capped (``--budget-min``): after building and loading, each model gets a share of
the time left and measures as many query rounds as fit (at least one, at most ``--reps`` x 6).

Usage:
    python benchmarks/model_zoo_speed.py --quick                # tiny shapes, a smoke run
    python benchmarks/model_zoo_speed.py --prepare              # build + export, no timing
    python benchmarks/model_zoo_speed.py --budget-min 15        # the measurement
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# shared/data/beir beside the checkout (or beside a folder above it, for git worktrees)
BEIR = next(
    (
        p / "shared" / "data" / "beir"
        for p in ROOT.parents
        if (p / "shared" / "data" / "beir").is_dir()
    ),
    ROOT.parent / "shared" / "data" / "beir",
)
DEFAULT_CACHE = Path("~/.cache/rerank-kit-bench/model-zoo").expanduser()
DEFAULT_ST_ONNX_PYTHON = "/tmp/optimum-venv/bin/python"
Score = Callable[[str, Sequence[str]], list[float]]

#: The three shapes. ``cost`` weighs each model's share of the time budget.
MODELS: dict[str, dict[str, Any]] = {
    "bge-reranker-base": {"arch": "xlm-roberta", "cost": 1.0},
    "gte-reranker-modernbert-base": {"arch": "modernbert", "cost": 1.3},
    "mxbai-rerank-xsmall-v1": {"arch": "deberta-v2", "cost": 0.45},
}
SYSTEMS = (
    "st-torch",
    "default",
    "onnx-fp32",
    "onnx-int8",
    "openvino-f32",
    "openvino-bf16",
    "st-onnx",
)
BUILD_VERSION = 1  # bump to rebuild cached model folders


def say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def load_now() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_info() -> dict[str, Any]:
    """CPU model and the flags that decide kernels (from ``lscpu``)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        return {"error": repr(exc)}
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = fields.get("Flags", "").split()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
    return {
        "model": fields.get("Model name", platform.processor()),
        "cpus": fields.get("CPU(s)"),
        "hypervisor": fields.get("Hypervisor vendor"),
        "key_flags": [f for f in wanted if f in flags],
        "flags": flags,
    }


# ----------------------------------------------------------------------------- building


def _corpus_texts() -> list[str]:
    from rerank_kit.evaluation import load_beir

    texts = []
    for name in ("cisi", "cranfield"):
        data = load_beir(BEIR / name)
        texts += [d.full_text for _, d in sorted(data.corpus.items(), key=lambda kv: int(kv[0]))]
    return [t for t in texts if t.strip()]


def _unigram_vocab(texts: list[str], size: int, specials: list[str], unk: str) -> list[Any]:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=size, special_tokens=specials, unk_token=unk, show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    return [(piece, float(score)) for piece, score in json.loads(tok.to_str())["model"]["vocab"]]


def _build_xlmr(out: Path, texts: list[str], quick: bool) -> None:
    import torch
    from transformers import (
        XLMRobertaConfig,
        XLMRobertaForSequenceClassification,
        XLMRobertaTokenizer,
    )

    vocab = _unigram_vocab(
        texts, 800 if quick else 16000, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<unk>"
    )
    tok = XLMRobertaTokenizer(vocab=vocab, model_max_length=512)
    shape: dict[str, Any] = (
        {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
         "intermediate_size": 128, "vocab_size": len(vocab)}
        if quick
        else {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12,
              "intermediate_size": 3072, "vocab_size": 250002}
    )  # fmt: skip
    settings: dict[str, Any] = {
        **shape,
        "max_position_embeddings": 514,
        "type_vocab_size": 1,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "layer_norm_eps": 1e-5,
        "num_labels": 1,
    }
    config = XLMRobertaConfig(**settings)
    torch.manual_seed(0)
    XLMRobertaForSequenceClassification(config).eval().save_pretrained(out)
    tok.save_pretrained(out)


def _build_modernbert(out: Path, texts: list[str], quick: bool) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import (
        ModernBertConfig,
        ModernBertForSequenceClassification,
        PreTrainedTokenizerFast,
    )

    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=800 if quick else 16000,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    ids = {s: tok.token_to_id(s) for s in specials}
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_max_length=8192,
        model_input_names=["input_ids", "attention_mask"],
    )
    shape: dict[str, Any] = (
        {"num_hidden_layers": 4, "hidden_size": 64, "num_attention_heads": 2,
         "intermediate_size": 96, "vocab_size": tok.get_vocab_size(), "local_attention": 16}
        if quick
        else {"num_hidden_layers": 22, "hidden_size": 768, "num_attention_heads": 12,
              "intermediate_size": 1152, "vocab_size": 50368, "local_attention": 128}
    )  # fmt: skip
    settings: dict[str, Any] = {
        **shape,
        "max_position_embeddings": 8192,
        "global_attn_every_n_layers": 3,
        "global_rope_theta": 160000.0,
        "local_rope_theta": 10000.0,
        "classifier_pooling": "mean",
        "pad_token_id": ids["[PAD]"],
        "cls_token_id": ids["[CLS]"],
        "sep_token_id": ids["[SEP]"],
        "bos_token_id": ids["[CLS]"],
        "eos_token_id": ids["[SEP]"],
        "num_labels": 1,
    }
    config = ModernBertConfig(**settings)
    torch.manual_seed(0)
    ModernBertForSequenceClassification(config).eval().save_pretrained(out)
    fast.save_pretrained(out)
    # the pre-5.0 keys and tokenizer class too, so transformers 4.x (the optimum venv) reads
    # the same model and tokenizer
    for file, keys in (
        ("config.json", {"global_attn_every_n_layers": 3, "global_rope_theta": 160000.0,
                         "local_rope_theta": 10000.0}),
        ("tokenizer_config.json", {"tokenizer_class": "PreTrainedTokenizerFast"}),
    ):  # fmt: skip
        data = json.loads((out / file).read_text())
        data.update(keys)
        (out / file).write_text(json.dumps(data, indent=2))


def _build_deberta(out: Path, texts: list[str], quick: bool) -> None:
    import torch
    from transformers import (
        DebertaV2Config,
        DebertaV2ForSequenceClassification,
        DebertaV2Tokenizer,
    )

    vocab = _unigram_vocab(
        texts, 800 if quick else 16000, ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"], "[UNK]"
    )
    tok = DebertaV2Tokenizer(vocab=vocab, model_max_length=512)
    shape: dict[str, Any] = (
        {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
         "intermediate_size": 128, "vocab_size": len(vocab), "pooler_hidden_size": 64}
        if quick
        else {"num_hidden_layers": 12, "hidden_size": 384, "num_attention_heads": 6,
              "intermediate_size": 1536, "vocab_size": 128100, "pooler_hidden_size": 384}
    )  # fmt: skip
    settings: dict[str, Any] = {
        **shape,
        "max_position_embeddings": 512,
        "relative_attention": True,
        "position_buckets": 256,
        "norm_rel_ebd": "layer_norm",
        "share_att_key": True,
        "pos_att_type": ["p2c", "c2p"],
        "layer_norm_eps": 1e-7,
        "max_relative_positions": -1,
        "position_biased_input": False,
        "type_vocab_size": 0,
        "pad_token_id": 0,
        "pooler_dropout": 0,
        "pooler_hidden_act": "gelu",
        "num_labels": 1,
    }
    config = DebertaV2Config(**settings)
    torch.manual_seed(0)
    DebertaV2ForSequenceClassification(config).eval().save_pretrained(out)
    tok.save_pretrained(out)


BUILDERS = {
    "xlm-roberta": _build_xlmr,
    "modernbert": _build_modernbert,
    "deberta-v2": _build_deberta,
}


def build_model(cache: Path, name: str, quick: bool, texts: list[str]) -> tuple[Path, float]:
    """The model folder (built once; a ``.built`` marker holds the build version)."""
    folder = cache / ("quick" if quick else "full") / name
    marker = folder / ".built"
    if marker.is_file() and marker.read_text().strip() == str(BUILD_VERSION):
        return folder, 0.0
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    BUILDERS[MODELS[name]["arch"]](folder, texts, quick)
    marker.write_text(str(BUILD_VERSION))
    return folder, time.perf_counter() - start


# ----------------------------------------------------------------------------- workload


def workload(
    tokenizer: Any, n_queries: int, n_passages: int, n_tokens: int, seed: int = 0
) -> tuple[list[str], list[list[str]]]:
    """Short CISI queries x CISI abstracts cut (or joined, then cut) at ``n_tokens`` tokens."""
    from rerank_kit.evaluation import load_beir

    data = load_beir(BEIR / "cisi")
    rng = random.Random(seed)
    short = [q for q in sorted(data.queries, key=int) if len(data.queries[q].split()) <= 20]
    queries = [data.queries[q] for q in rng.sample(short, n_queries)]
    texts = [d.full_text for _, d in sorted(data.corpus.items(), key=lambda kv: int(kv[0]))]
    texts = [" ".join(t.split()) for t in texts if len(t.split()) >= 20]
    passages = []
    for _ in queries:
        chosen = rng.sample(texts, n_passages * 3)
        row: list[str] = []
        while len(row) < n_passages:
            text = chosen.pop()
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            while len(enc["input_ids"]) < n_tokens:
                text = text + " " + chosen.pop()
                enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            row.append(text[: enc["offset_mapping"][n_tokens - 1][1]])
        passages.append(row)
    return queries, passages


# ----------------------------------------------------------------------------- systems


def _st_onnx_worker() -> None:  # runs in the optimum venv: stdlib + sentence-transformers only
    import torch
    from sentence_transformers import CrossEncoder

    model: Any = None
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["cmd"] == "load":
                import onnxruntime as ort

                torch.set_num_threads(msg["threads"])
                options = ort.SessionOptions()
                options.intra_op_num_threads = msg["threads"]
                options.inter_op_num_threads = 1
                saved, source = Path(msg["saved"]), msg["folder"]
                start = time.perf_counter()
                kwargs = {"session_options": options, "provider": "CPUExecutionProvider"}
                if (saved / "onnx" / "model.onnx").is_file():
                    model = CrossEncoder(str(saved), backend="onnx", model_kwargs=kwargs)
                else:
                    model = CrossEncoder(source, backend="onnx", model_kwargs=kwargs)
                    model.save_pretrained(str(saved))
                import sentence_transformers

                reply = {"seconds": time.perf_counter() - start,
                         "version": sentence_transformers.__version__}  # fmt: skip
            else:
                pairs = [(msg["query"], p) for p in msg["passages"]]
                start = time.perf_counter()
                scores = model.predict(pairs, batch_size=32, show_progress_bar=False)
                reply = {"seconds": time.perf_counter() - start,
                         "scores": [float(s) for s in scores]}  # fmt: skip
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


class StOnnx:
    """``CrossEncoder(backend="onnx")`` in a child process of another interpreter."""

    def __init__(self, python: str, folder: Path, saved: Path, threads: int) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            [python, __file__, "--st-onnx-worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        reply = self._ask({"cmd": "load", "folder": str(folder), "saved": str(saved),
                           "threads": threads})  # fmt: skip
        self.version = reply.get("version")
        self.last_seconds = 0.0

    def _ask(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"st-onnx worker exited (code {self.proc.poll()})")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def __call__(self, query: str, passages: Sequence[str]) -> list[float]:
        reply = self._ask({"cmd": "score", "query": query, "passages": list(passages)})
        self.last_seconds = float(reply["seconds"])
        return [float(s) for s in reply["scores"]]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def make_system(
    system: str, folder: Path, args: argparse.Namespace, onnx_cache: Path
) -> tuple[Score, dict[str, Any], Any]:
    """``(score, info, handle)``; raises whatever the path raises."""
    from rerank_kit import CrossEncoderReranker

    common = {"threads": args.threads, "cache_dir": onnx_cache}
    info: dict[str, Any] = {}
    if system == "st-torch":
        from sentence_transformers import CrossEncoder

        ce = CrossEncoder(str(folder), device="cpu")

        def st(query: str, passages: Sequence[str]) -> list[float]:
            pairs = [(query, p) for p in passages]
            return [float(s) for s in ce.predict(pairs, batch_size=32, show_progress_bar=False)]

        return st, {"backend": "torch (sentence-transformers)"}, ce
    if system == "st-onnx":
        handle = StOnnx(args.st_onnx_python, folder, folder.parent / (folder.name + "-st-onnx"),
                        args.threads)  # fmt: skip
        return handle, {"backend": f"onnx (sentence-transformers {handle.version})"}, handle
    if system == "default":
        rr = CrossEncoderReranker(str(folder))
    elif system == "onnx-fp32":
        rr = CrossEncoderReranker(str(folder), backend="onnx", **common)
    elif system == "onnx-int8":
        rr = CrossEncoderReranker(str(folder), backend="onnx", quantize="int8", **common)
    else:
        precision = system.rsplit("-", 1)[1]
        rr = CrossEncoderReranker(str(folder), backend="openvino", **common,
                                  model_kwargs={"openvino_precision": precision})  # fmt: skip
    info["backend"] = rr.backend
    onnx = getattr(rr, "_onnx", None)
    if onnx is not None:
        info["quantize"] = getattr(onnx, "quantize", None)
        info["rule"] = getattr(onnx, "rule", None)
    return (lambda q, ps: [float(s) for s in rr.score(q, list(ps))]), info, rr


# ----------------------------------------------------------------------------- measuring


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else 1.0


def top_overlap(a: Sequence[float], b: Sequence[float], k: int = 10) -> float:
    top = lambda s: set(sorted(range(len(s)), key=lambda i: -s[i])[:k])  # noqa: E731
    return len(top(a) & top(b)) / min(k, len(a))


def fidelity(ref: dict[int, list[float]], got: dict[int, list[float]]) -> dict[str, Any]:
    common = sorted(set(ref) & set(got))
    if not common:
        return {}
    return {
        "queries": len(common),
        "max_abs_diff": max(
            abs(x - y) for q in common for x, y in zip(ref[q], got[q], strict=True)
        ),
        "spearman_mean": statistics.fmean(spearman(ref[q], got[q]) for q in common),
        "spearman_min": min(spearman(ref[q], got[q]) for q in common),
        "top10_overlap_mean": statistics.fmean(top_overlap(ref[q], got[q]) for q in common),
    }


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:600]


def measure_model(
    name: str, folder: Path, args: argparse.Namespace, until: float, onnx_cache: Path
) -> dict[str, Any]:
    """Load every system on ``folder``, then time query rounds until ``until`` (>= 1 round)."""
    import gc

    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    config = AutoConfig.from_pretrained(str(folder))
    queries, passages = workload(tokenizer, args.queries, args.passages, args.tokens)
    pair_tokens = [
        len(tokenizer(q, p)["input_ids"])
        for q, row in zip(queries, passages, strict=True)
        for p in row
    ]
    result: dict[str, Any] = {
        "folder": str(folder),
        "config": {k: getattr(config, k, None) for k in (
            "model_type", "num_hidden_layers", "hidden_size", "intermediate_size",
            "vocab_size", "max_position_embeddings", "type_vocab_size", "classifier_pooling",
            "local_attention", "layer_types", "relative_attention", "position_buckets")},
        "tokenizer_vocab": len(tokenizer),
        "tokens_per_pair": {"mean": statistics.fmean(pair_tokens), "min": min(pair_tokens),
                            "max": max(pair_tokens)},
        "systems": {},
    }  # fmt: skip
    live: dict[str, tuple[Score, Any]] = {}
    for system in args.systems:
        cell: dict[str, Any] = {}
        result["systems"][system] = cell
        if system == "openvino-bf16" and not args.bf16:
            cell.update(status="skipped", error="the CPU has neither AVX512_BF16 nor AMX")
            continue
        if system == "st-onnx" and not Path(args.st_onnx_python).is_file():
            cell.update(status="skipped", error=f"{args.st_onnx_python} not found")
            continue
        start = time.perf_counter()
        try:
            score, info, handle = make_system(system, folder, args, onnx_cache)
            cell.update(info)
            score(queries[0], passages[0][:8])  # warm-up
            cell.update(status="ok", load_s=round(time.perf_counter() - start, 1))
            live[system] = (score, handle)
            if system == "st-torch":
                result["parameters"] = int(handle.model.num_parameters())
        except Exception as exc:
            cell.update(status="failed", stage="load", error=_error(exc),
                        load_s=round(time.perf_counter() - start, 1))  # fmt: skip
        say(f"  {name} / {system}: {cell.get('status')} {cell.get('backend', '')} "
            f"({cell.get('load_s', 0)} s) {cell.get('error', '')[:300]}")  # fmt: skip
    seconds: dict[str, dict[int, float]] = {s: {} for s in live}  # round -> s
    scores: dict[str, dict[int, list[float]]] = {s: {} for s in live}
    loads: list[float] = []
    max_rounds = 0 if args.prepare else args.reps * len(queries)
    rnd = 0
    round_times: list[float] = []
    while rnd < max_rounds and live:
        if rnd and time.time() + statistics.median(round_times) > until:
            break
        t_round = time.perf_counter()
        qi = rnd % len(queries)
        names = list(live)
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        for system in order:
            score, handle = live[system]
            start = time.perf_counter()
            try:
                got = score(queries[qi], passages[qi])
            except Exception as exc:
                result["systems"][system].update(status="failed", stage="score", error=_error(exc))
                del live[system]
                continue
            took = time.perf_counter() - start
            seconds[system][rnd] = handle.last_seconds if isinstance(handle, StOnnx) else took
            scores[system].setdefault(qi, got)
        round_times.append(time.perf_counter() - t_round)
        loads.append(os.getloadavg()[0])
        say(f"  {name} round {rnd + 1} (query {qi}): {round_times[-1]:.1f} s, "
            f"load {loads[-1]:.2f}; " + ", ".join(
                f"{s} {seconds[s].get(rnd, float('nan')) * 1000:.0f}" for s in order))  # fmt: skip
        rnd += 1
    result["rounds"] = rnd
    result["load_1min_during"] = loads
    ref_t, ref_s = seconds.get("st-torch", {}), scores.get("st-torch", {})
    if ref_s:
        flat = [x for row in ref_s.values() for x in row]
        result["reference_score_spread"] = {"std": statistics.pstdev(flat), "min": min(flat),
                                            "max": max(flat)}  # fmt: skip
    for system, times in seconds.items():
        cell = result["systems"][system]
        if not times:
            continue
        cell["calls"] = len(times)
        cell["median_ms"] = round(1000 * statistics.median(times.values()), 1)
        paired = [ref_t[r] / t for r, t in times.items() if r in ref_t]
        if paired:
            cell["speedup_vs_st_torch"] = round(statistics.median(paired), 3)
        if system != "st-torch" and ref_s:
            cell["fidelity_vs_st_torch"] = fidelity(ref_s, scores[system])
    for _, handle in live.values():
        if isinstance(handle, StOnnx):
            handle.close()
    live.clear()
    gc.collect()
    return result


# ----------------------------------------------------------------------------- main


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "sentence-transformers", "onnxruntime", "openvino",
                 "onnx", "tokenizers"):  # fmt: skip
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        out["rerank-kit (git)"] = head
    except (OSError, subprocess.CalledProcessError):
        pass
    return out


def table(report: dict[str, Any]) -> str:
    lines = [
        "| model | system | backend | median ms / 50 | x ST torch | max abs diff | Spearman "
        "(mean / min) | top-10 overlap | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in report["models"].items():
        for system, cell in res["systems"].items():
            fid = cell.get("fidelity_vs_st_torch") or {}
            backend = cell.get("backend", "")
            if cell.get("rule"):
                backend += f" ({cell['rule']})"
            note = cell.get("error", "")[:140] if cell.get("status") != "ok" else ""
            lines.append(
                f"| {name} | {system} | {backend} | {cell.get('median_ms', '-')} | "
                f"{cell.get('speedup_vs_st_torch', '-')} | "
                + (f"{fid['max_abs_diff']:.2g} | {fid['spearman_mean']:.4f} / "
                   f"{fid['spearman_min']:.4f} | {fid['top10_overlap_mean']:.3f}"
                   if fid else "- | - | -")
                + f" | {cell.get('status')}{': ' + note if note else ''} |"
            )  # fmt: skip
    lines.append("")
    for name, res in report["models"].items():
        spread = res.get("reference_score_spread", {})
        tokens = res["tokens_per_pair"]
        lines.append(
            f"- {name}: {res.get('parameters', 0):,} parameters, {tokens['mean']:.0f} tokens "
            f"per pair ({tokens['min']}-{tokens['max']}), {res.get('rounds', 0)} query rounds; "
            f"ST torch scores std {spread.get('std', float('nan')):.2g} "
            f"(range {spread.get('min', float('nan')):.4f}-{spread.get('max', float('nan')):.4f})"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "model_zoo_speed.json")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 2 queries x 10")
    parser.add_argument("--prepare", action="store_true", help="build, export, load; no timing")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--queries", type=int, default=6)
    parser.add_argument("--passages", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=150, help="tokens per passage")
    parser.add_argument("--reps", type=int, default=3, help="at most this many passes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget-min", type=float, default=15.0)
    parser.add_argument("--st-onnx-python", default=DEFAULT_ST_ONNX_PYTHON)
    parser.add_argument("--st-onnx-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--table-from", type=Path, help="print the table of a results JSON")
    args = parser.parse_args()
    if args.st_onnx_worker:
        _st_onnx_worker()
        return
    if args.table_from:
        print(table(json.loads(args.table_from.read_text())))
        return
    started = time.time()
    deadline = started + 60 * args.budget_min
    if args.quick:
        args.queries, args.passages, args.tokens = min(args.queries, 2), 10, 40
    cache = args.cache.expanduser()
    os.environ["RERANK_KIT_CACHE"] = str(cache / "rerank-kit")  # the default path's exports too
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT))
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "sequence longer than 512" while cutting passages
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    cpu = cpu_info()
    args.bf16 = bool({"avx512_bf16", "amx_bf16"} & set(cpu.get("flags", [])))
    report: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
        "quick": args.quick,
        "cpu": {k: v for k, v in cpu.items() if k != "flags"},
        "cpu_flags": " ".join(cpu.get("flags", [])),
        "threads": args.threads,
        "load_before": load_now(),
        "versions": versions(),
        "workload": {"queries": args.queries, "passages": args.passages,
                     "tokens_per_passage": args.tokens, "source": "CISI abstracts"},
        "budget_min": args.budget_min,
        "models": {},
    }  # fmt: skip
    say(f"CPU: {cpu.get('model')} ({cpu.get('cpus')} CPUs), flags {cpu.get('key_flags')}; "
        f"load before {report['load_before']}; threads {args.threads}")  # fmt: skip
    texts: list[str] | None = None
    folders = {}
    for name in args.models:
        folder = cache / ("quick" if args.quick else "full") / name
        if not (folder / ".built").is_file() and texts is None:
            texts = _corpus_texts()
        folders[name], took = build_model(cache, name, args.quick, texts or [])
        state = f"built in {took:.0f} s" if took else "cached"
        say(f"{name}: {folders[name]} ({state})")
    onnx_cache = cache / "rerank-kit" / "onnx"
    for i, name in enumerate(args.models):
        weights = [MODELS[m]["cost"] for m in args.models[i:]]
        until = time.time() + (deadline - time.time()) * weights[0] / sum(weights)
        say(f"{name}: measuring until {time.strftime('%H:%M:%S', time.gmtime(until))} UTC")
        report["models"][name] = measure_model(name, folders[name], args, until, onnx_cache)
    report["load_after"] = load_now()
    report["wall_min"] = round((time.time() - started) / 60, 1)
    say(f"load after {report['load_after']}; {report['wall_min']} min in all")
    print(table(report))
    if not args.prepare:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        say(f"wrote {args.out}")


if __name__ == "__main__":
    main()
