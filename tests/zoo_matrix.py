"""The model-zoo matrix's cells: run one (architecture, path), compare it with the reference.

``run_cell`` returns a ``Cell`` (pass / fail / refused / n/a with the figures and the reason);
``tests/test_model_zoo.py`` parametrizes it and writes the results (``docs/model_zoo.json``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zoo_models import ZOO, ZooModel
from zoo_reference import Reference

from rerank_kit.demo import CORPUS

__all__ = ["BANDS", "PATHS", "TOLERANCE", "Cell", "Zoo", "run_cell"]

#: fp32 paths match the reference within this (absolute), in the same order.
TOLERANCE = 1e-5

#: What each column runs.
PATHS: dict[str, str] = {
    "torch": 'CrossEncoderReranker(folder, backend="torch"): sentence-transformers, or the '
    "generative path for a causal LM",
    "onnx": 'CrossEncoderReranker(folder, backend="onnx"): ONNX Runtime fp32 (exported once)',
    "int8": 'backend="onnx", quantize="int8": per-token int8 weights',
    "openvino-f32": 'backend="openvino", model_kwargs={"openvino_precision": "f32"}',
    "openvino-bf16": 'backend="openvino", model_kwargs={"openvino_precision": "bf16"}',
    "pre-exported": "CrossEncoderReranker(folder) on a copy of the folder holding onnx/model.onnx "
    "(the fp32 export copied there; the default backend)",
    "flashrank": "FlashRankReranker(folder) on a FlashRank-style folder (model.onnx and the "
    "tokenizer files)",
    "flashrank-native": 'FlashRankReranker(folder, backend="flashrank"): flashrank.Ranker\'s own '
    "single padded pass on the same folder (it may refuse a folder it cannot read, by name)",
    "windows": 'long_documents="max" on torch with a small max_length: every window fits the '
    "model (scored uncut) and the passage gets the max",
    "windows-onnx": 'long_documents="max" on backend="onnx"',
    "async": "await arerank(...) on the default backend",
    "long-query": "after a normal call, a query over 512 tokens and (limits up to 1024) one that "
    'fits but whose pairs do not, on backend="onnx" (torch for a causal LM): each pair cut as '
    "the recipe cuts it",
    "instruction": "instruction= a custom instruction, on the default backend",
}

#: Paths whose precision is not fp32: the error is held to a band measured per architecture
#: (max |score - reference| seen on the matrix's texts, rounded up with headroom).
#: Measured on the tiny builds (December 2026, AMD EPYC with AVX512_BF16 and VNNI, onnxruntime
#: 1.32, OpenVINO 2026.4): each band is about twice the max error seen, rounded up. They bound
#: these random-weight models (scores in [0, 1]), not a trained model's figures.
LOW_PRECISION = ("int8", "openvino-bf16")
BANDS: dict[str, dict[str, float]] = {  # max errors measured on the tiny builds: int8, bf16
    "bert": {"int8": 0.01, "openvino-bf16": 0.005},  # 0.0038, 0.0019
    "bert-2label": {"int8": 0.02, "openvino-bf16": 0.01},  # 0.0098, 0.0033
    "xlmr-m3": {"int8": 0.01, "openvino-bf16": 0.005},  # 0.0041, 0.0017
    "xlmr-base": {"int8": 0.005, "openvino-bf16": 0.01},  # 0.0021, 0.0039
    "xlmr-nomax": {"int8": 0.03, "openvino-bf16": 0.005},  # 0.0127, 0.0016
    "modernbert": {"int8": 0.03, "openvino-bf16": 0.01},  # 0.0123, 0.0035
    "deberta-v3": {"int8": 0.05, "openvino-bf16": 0.05},  # 0.0186, 0.0234
    "electra": {"int8": 0.05, "openvino-bf16": 0.01},  # 0.0199, 0.0048
    "distilbert": {"int8": 0.03, "openvino-bf16": 0.02},  # 0.0141, 0.0064
    "qwen3-seq-cls": {"int8": 0.05, "openvino-bf16": 0.03},  # 0.0216, 0.0134
    "qwen3-seq-cls-bare": {"int8": 0.05, "openvino-bf16": 0.03},  # the same model
}
#: Band of a pair not measured yet (a path that did not run when the bands were set).
DEFAULT_BAND = 0.05

#: Paths a causal LM may refuse (with a clear error naming it), as the ONNX backend documents.
CAUSAL_MAY_REFUSE = (
    "onnx",
    "int8",
    "openvino-f32",
    "openvino-bf16",
    "pre-exported",
    "windows-onnx",
)

INSTRUCTION = "Given a question, find the passage that names the city it asks about"
QUERY = "what is the capital of france"
_ALL = [text for _, text in CORPUS]
LONG = " ".join(_ALL)  # ~600 BERT tokens: over 512-token limits
MEDIUM = " ".join(_ALL[:6])
#: Over 512 tokens for every zoo tokenizer (600-1000): such a query, after a normal call, failed
#: on ONNX (issue 29: the tokenizer kept the last call's truncation).
LONG_QUERY = " ".join([*reversed(_ALL), *_ALL[:10]]) + " which of these is the capital of france?"
SHORT = [_ALL[3], _ALL[7], "Paris is the capital of France."]
TEXTS = [
    _ALL[3],
    LONG,
    _ALL[7],
    MEDIUM,
    "Paris is the capital of France.",
    "北京是中国的首都。 Berlin ist die Hauptstadt von Deutschland.",
]
#: ``max_length`` of the windows paths: encoders count the pair, decoders their recipe's length.
WINDOW_LENGTH = {"encoder": 64, "seq-cls-decoder": 192, "causal": 192}


@dataclass
class Cell:
    """One cell of the matrix."""

    status: str  # "pass", "fail", "refused", "n/a"
    max_error: float | None = None
    batch_dependence: float | None = None
    band: float | None = None
    same_order: bool | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The cell as JSON (floats in scientific notation, 3 digits)."""
        out = asdict(self)
        for key in ("max_error", "batch_dependence"):
            if out[key] is not None:
                out[key] = float(f"{out[key]:.3g}")
        return {k: v for k, v in out.items() if v is not None}


class Zoo:
    """The session's models, references and shared exports."""

    def __init__(
        self, folders: dict[str, Path], work: Path, missing: dict[str, str] | None = None
    ) -> None:
        self.folders, self.work = folders, work
        self.missing = dict(missing or {})  # models not built here, and why
        self._refs: dict[str, Reference] = {}
        self._scores: dict[tuple[Any, ...], list[float]] = {}
        self.exports: dict[str, Path | BaseException] = {}

    def clean(self, text: str) -> str:
        """``text`` with this session's folders shown by their names (stable in the JSON)."""
        for key, folder in self.folders.items():
            text = text.replace(str(folder), ZOO[key].folder)
        return " ".join(text.replace(str(self.work), "...").split())

    def reference(self, key: str) -> Reference:
        if key not in self._refs:
            m = ZOO[key]
            self._refs[key] = Reference(self.folders[key], m.family, m.kind)
        return self._refs[key]

    def ref_scores(
        self, key: str, texts: list[str], query: str = QUERY, **options: Any
    ) -> list[float]:
        cache_key = (key, query, tuple(texts), tuple(sorted(options.items())))
        if cache_key not in self._scores:
            self._scores[cache_key] = self.reference(key).scores(query, texts, **options)
        return self._scores[cache_key]

    def cache_dir(self, key: str) -> Path:
        return self.work / "onnx-cache" / key

    def export(self, key: str) -> Path:
        """The fp32 ONNX graph the engine exported for ``key`` (made by the onnx path)."""
        if key not in self.exports:
            try:
                _construct(self, key, "onnx")
            except Exception as exc:
                self.exports[key] = exc
        found = self.exports[key]
        if isinstance(found, BaseException):
            raise found
        return found


def _construct(zoo: Zoo, key: str, path: str) -> Any:
    """The reranker of one cell."""
    from rerank_kit import CrossEncoderReranker, FlashRankReranker

    m = ZOO[key]
    folder = str(zoo.folders[key])
    cache: dict[str, Any] = {"cache_dir": zoo.cache_dir(key)}
    if path == "torch":
        return CrossEncoderReranker(folder, backend="torch")
    if path in ("onnx", "int8"):
        quantize = "int8" if path == "int8" else None
        r = CrossEncoderReranker(folder, backend="onnx", quantize=quantize, **cache)
        if path == "onnx":
            graphs = [  # the export's folder (meta.json), not a rewrite's
                g
                for g in sorted(zoo.cache_dir(key).glob("*/model.onnx"))
                if (g.parent / "meta.json").is_file()
            ]
            zoo.exports[key] = graphs[0] if graphs else RuntimeError("no fp32 export found")
        return r
    if path.startswith("openvino"):
        precision = path.split("-")[1]
        return CrossEncoderReranker(
            folder,
            backend="openvino",
            model_kwargs={"openvino_precision": precision},
            **cache,
        )
    if path == "pre-exported":
        copy = zoo.work / "pre-exported" / m.folder
        if not copy.is_dir():
            shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".complete"))
            (copy / "onnx").mkdir()
            shutil.copy(zoo.export(key), copy / "onnx" / "model.onnx")
        return CrossEncoderReranker(str(copy))
    if path.startswith("flashrank"):
        copy = zoo.work / "flashrank" / m.folder
        if not copy.is_dir():
            copy.mkdir(parents=True)
            shutil.copy(zoo.export(key), copy / "model.onnx")
            for name in (
                "tokenizer.json",
                "config.json",
                "tokenizer_config.json",
                "special_tokens_map.json",
            ):
                shutil.copy(Path(folder) / name, copy / name)
        backend = "flashrank" if path == "flashrank-native" else "auto"
        return FlashRankReranker(str(copy), backend=backend)
    if path == "windows":
        return CrossEncoderReranker(
            folder, backend="torch", long_documents="max", max_length=WINDOW_LENGTH[m.kind]
        )
    if path == "windows-onnx":
        return CrossEncoderReranker(
            folder,
            backend="onnx",
            long_documents="max",
            max_length=WINDOW_LENGTH[m.kind],
            **cache,
        )
    if path == "async":
        return CrossEncoderReranker(folder)
    if path == "long-query":
        if m.kind == "causal":
            return CrossEncoderReranker(folder, backend="torch")
        return CrossEncoderReranker(folder, backend="onnx", **cache)
    if path == "instruction":
        return CrossEncoderReranker(folder, instruction=INSTRUCTION)
    raise ValueError(path)


def not_applicable(m: ZooModel, path: str) -> str | None:
    """Why ``path`` does not apply to ``m`` (``None``: it applies)."""
    if path.startswith("flashrank") and m.kind != "encoder":
        return (
            "FlashRank folders hold pairwise encoder graphs: its tokenization has no prompt "
            "template, which a decoder reranker needs"
        )
    if path == "instruction" and m.family == "encoder":
        return "the recipe has no instruction (encoder cross-encoders read the bare pair)"
    needs = {"openvino": "openvino", "flashrank": "flashrank"}
    for prefix, package in needs.items():
        if path.startswith(prefix) and importlib.util.find_spec(package) is None:
            return f"{package} is not installed"
    return None


def _order_ok(scores: list[float], ref: list[float], gap: float) -> bool:
    """Same order as the reference for every two texts whose reference scores differ by > gap."""
    n = len(ref)
    return all(
        (scores[i] - scores[j]) * (ref[i] - ref[j]) > 0
        for i in range(n)
        for j in range(i + 1, n)
        if abs(ref[i] - ref[j]) > gap
    )


def _scores(
    r: Any, texts: list[str], path: str, query: str = QUERY
) -> tuple[list[float], list[bool]]:
    if path == "async":
        ranked = asyncio.run(r.arerank(query, texts))
    else:
        ranked = r.rerank(query, texts)
    by_index = sorted(ranked, key=lambda x: x.index)
    return [float(x.score) for x in by_index], [bool(x.truncated) for x in by_index]


def _band(key: str, path: str) -> float:
    return BANDS.get(key, {}).get(path, DEFAULT_BAND)


def _reference_for(
    zoo: Zoo, key: str, path: str, query: str, texts: list[str]
) -> tuple[list[float], list[bool]]:
    """The reference's scores of ``texts`` on ``path``, and which pairs its recipe cuts."""
    options: dict[str, Any] = {}
    if path == "instruction":
        options["instruction"] = INSTRUCTION
    if path.startswith("flashrank"):  # FlashRank cuts at min(model_max_length, max_length=512)
        options["max_length"] = min(zoo.reference(key).encoder_limit(), 512)
    ref = zoo.reference(key)
    cuts = [ref.cut(query, t, **options) for t in texts]
    return zoo.ref_scores(key, texts, query, **options), cuts


def _long_queries(zoo: Zoo, key: str) -> list[str]:
    """``LONG_QUERY``, and for limits up to 1024 tokens a query 20 tokens under the limit."""
    ref = zoo.reference(key)
    if ref.family != "encoder" or ref.encoder_limit() > 1024:
        return [LONG_QUERY]
    words, target = LONG_QUERY.split(), ref.encoder_limit() - 20
    count = len(ref.tokenizer(LONG_QUERY, add_special_tokens=False)["input_ids"])
    while count > target:  # drop words from the end until it fits
        words.pop()
        count = len(ref.tokenizer(" ".join(words), add_special_tokens=False)["input_ids"])
    return [LONG_QUERY, " ".join(words)]


def _windows(zoo: Zoo, key: str, r: Any, path: str) -> Cell:
    """Windows: every window scored uncut (= its untruncated reference), passages get the max."""
    calls: list[list[str]] = []
    inner = r._score_pairs

    def spy(query: str, texts: list[str]) -> Any:
        calls.append(list(texts))
        return inner(query, texts)

    r._score_pairs = spy  # observes what the model is given; scoring is untouched
    scores, truncated = _scores(r, TEXTS, path)
    alone_all = [_scores(r, [t], path)[0][0] for t in TEXTS]
    long_windows = calls[1 + TEXTS.index(LONG)]  # the call that scored LONG alone
    windows = [w for w in dict.fromkeys(x for call in calls for x in call) if w not in TEXTS]
    if len(long_windows) < 2:
        return Cell("fail", reason="the long passage was not split into windows")
    uncut = dict(zip(windows, zoo.ref_scores(key, windows, max_length=10**6), strict=True))
    errors = [abs(_scores(r, [w], path)[0][0] - uncut[w]) for w in windows]
    errors.append(abs(scores[TEXTS.index(LONG)] - max(uncut[w] for w in long_windows)))
    err = max(errors)
    lost = set(LONG.split()) - {word for w in long_windows for word in w.split()}
    dep = max(abs(a - b) for a, b in zip(scores, alone_all, strict=True))
    reasons = []
    if any(truncated):
        reasons.append(f"{sum(truncated)} passage(s) flagged truncated")
    if err > TOLERANCE:
        reasons.append(f"a window or passage score is {err:.2e} off its uncut reference")
    if lost:
        reasons.append(f"{len(lost)} words of the long passage are in no window")
    if dep > TOLERANCE:
        reasons.append(f"batch dependence {dep:.2e}")
    return Cell(
        "fail" if reasons else "pass",
        max_error=err,
        batch_dependence=dep,
        reason="; ".join(reasons) or f"{len(long_windows)} windows of the long passage, each uncut",
    )


def run_cell(zoo: Zoo, key: str, path: str) -> Cell:
    """Run one cell."""
    from rerank_kit import RerankError

    m = ZOO[key]
    why = not_applicable(m, path)
    if key in zoo.missing:
        why = f"the model could not be built here ({zoo.missing[key]})"
    if why:
        return Cell("n/a", reason=why)
    try:
        r = _construct(zoo, key, path)
    except Exception as exc:
        text = zoo.clean(f"{type(exc).__name__}: {exc}")
        clear = isinstance(exc, (RerankError, ValueError)) and m.folder in text
        may_refuse = (
            m.family == "unknown"
            or (m.kind == "causal" and path in CAUSAL_MAY_REFUSE)
            or path == "flashrank-native"  # flashrank.Ranker reads fewer folders than we do
        )
        if may_refuse and clear:
            return Cell("refused", reason=text[:400])
        return Cell("fail", reason=f"construction failed: {text[:400]}")
    if m.family == "unknown":
        return Cell("fail", reason="a causal LM without a recipe was accepted (scored by a guess)")
    try:
        if path.startswith("windows"):
            return _windows(zoo, key, r, path)
        cases = [(QUERY, TEXTS)]
        if path == "long-query":
            r.score(QUERY, TEXTS[:2])  # a normal call first
            cases = [(q, SHORT) for q in _long_queries(zoo, key)]
        ref: list[float] = []
        cuts: list[bool] = []
        scores: list[float] = []
        flags: list[bool] = []
        alone: list[float] = []
        per_case: list[str] = []
        for query, texts in cases:
            ref_scores, ref_cuts = _reference_for(zoo, key, path, query, texts)
            got, got_flags = _scores(r, texts, path, query)
            if len(cases) > 1:
                gap = max(abs(a - b) for a, b in zip(got, ref_scores, strict=True))
                tokens = len(
                    zoo.reference(key).tokenizer(query, add_special_tokens=False)["input_ids"]
                )
                per_case.append(f"{tokens}-token query: max error {gap:.1e}")
            ref, cuts = ref + ref_scores, cuts + ref_cuts
            scores, flags = scores + got, flags + got_flags
            alone += [_scores(r, [t], path, query)[0][0] for t in texts]
    except Exception as exc:
        return Cell("fail", reason=zoo.clean(f"scoring failed: {type(exc).__name__}: {exc}")[:400])
    err = max(abs(a - b) for a, b in zip(scores, ref, strict=True))
    dep = max(abs(a - b) for a, b in zip(scores, alone, strict=True))
    low = path in LOW_PRECISION
    band = _band(key, path) if low else TOLERANCE
    order = _order_ok(scores, ref, 2 * band)
    reasons = []
    if err > band:
        reasons.append(f"max error {err:.2e} > {band:g}")
    if not order:
        reasons.append("order differs from the reference")
    if dep > TOLERANCE:
        reasons.append(f"batch dependence {dep:.2e} > {TOLERANCE:g}")
    if flags != cuts:
        wrong = [i for i, (a, b) in enumerate(zip(flags, cuts, strict=True)) if a != b]
        reasons.append(
            f"truncation flags of texts {wrong} are {[flags[i] for i in wrong]}, the recipe "
            f"cuts {[cuts[i] for i in wrong]}"
        )
    if reasons and per_case:
        reasons.append(" / ".join(per_case))
    return Cell(
        "fail" if reasons else "pass",
        max_error=err,
        batch_dependence=dep,
        band=band if low else None,
        same_order=order,
        reason="; ".join(reasons) or None,
    )


def merge_results(path: Path, cells: dict[str, dict[str, Cell]], meta: dict[str, Any]) -> None:
    """Write the cells that ran into ``path`` (kept cells of an earlier run stay)."""
    data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    data.update(meta)
    data["tolerance"] = TOLERANCE
    data["paths"] = PATHS
    data["architectures"] = {
        m.key: {"folder": m.folder, "real": m.real, "kind": m.kind, "shape": m.note}
        for m in ZOO.values()
    }
    table = data.setdefault("cells", {})
    for key, row in cells.items():
        table.setdefault(key, {}).update({p: c.to_json() for p, c in row.items()})
    data["cells"] = {
        k: {p: table[k][p] for p in PATHS if p in table.get(k, {})} for k in ZOO if k in table
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
