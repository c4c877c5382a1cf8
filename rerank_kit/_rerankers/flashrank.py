"""``FlashRankReranker``: FlashRank's ONNX cross-encoders, batched on our runtime (no torch)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rerank_kit._core import telemetry
from rerank_kit._core.assembly.budget import tokenizer_counts
from rerank_kit._core.errors import ModelNotAvailableError, RerankError, missing_extra
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.score_cache import ScoreCache
from rerank_kit._core.types import PairScores
from rerank_kit._core.windows import WindowPlan, tokenizers_offsets
from rerank_kit._runtime.hub import hub_offline
from rerank_kit._runtime.sessions import root_logger_untouched

__all__ = ["FlashRankReranker"]

logger = logging.getLogger(__name__)

_BACKENDS = ("auto", "onnx", "openvino", "flashrank")
_NEEDED = ("tokenizer.json", "config.json", "tokenizer_config.json", "special_tokens_map.json")


class FlashRankReranker(Reranker):
    """Reranks with FlashRank's ONNX cross-encoders: light, CPU-only, no torch.

    Accepts FlashRank's built-in names (``"ms-marco-TinyBERT-L-2-v2"``, ...) looked up in
    ``cache_dir`` (FlashRank fetches them there when missing), or the path of a local folder
    holding any exported cross-encoder (one ``.onnx`` file plus ``tokenizer.json``,
    ``config.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``). Unlike
    ``flashrank.Ranker`` it never sorts or changes your list, returns ``[]`` for an empty list,
    and leaves the root logger as it was.

    FlashRank runs all passages in one ONNX call padded to the longest, which costs time and
    gigabytes of memory at 100 candidates. By default this class runs FlashRank's pairwise
    (BERT-style) models on the runtime of :class:`~rerank_kit.OnnxCrossEncoderReranker` instead,
    on the same files: pairs sorted by token length, run in token-budgeted batches of neighbours. Tokenization
    and truncation follow FlashRank's (``longest_first`` at ``min(model_max_length, max_length)``,
    its special tokens added), so scores equal ``flashrank.Ranker``'s up to padding (~1e-6) and
    the order is the same. T5 models keep FlashRank's own path; listwise LLM rankers give no
    scores and are refused.

    Setup:
        ``pip install "rerank-kit[flashrank]"`` (installs no torch); ``"rerank-kit[openvino]"``
        for ``backend="openvino"``.

    Args:
        model: A FlashRank model name or a local model folder.
        cache_dir: Where FlashRank keeps (and would download) its named models; FlashRank's own
            default (``/tmp``) if ``None``.
        long_documents: ``"truncate"`` (default) scores only the start of a passage longer
            than the token limit; ``"max"``, ``"mean"`` or ``"first"`` score it in overlapping
            windows and aggregate (see ``Reranker.set_long_documents``).
        max_length: Truncate pairs to this many tokens (capped by the model's own limit).
        backend: ``"auto"`` (ONNX Runtime batching for pairwise models, FlashRank's own pass
            for T5), ``"onnx"``, ``"openvino"`` (the same batching on OpenVINO), or
            ``"flashrank"`` (``flashrank.Ranker``'s single padded pass).
        batch_size: With ``"onnx"``/``"openvino"``: at most this many pairs per call.
        max_batch_tokens: With ``"onnx"``/``"openvino"``: also cap a call at this many padded
            tokens (pairs x longest pair); ``None``: no cap.
        threads: With ``"onnx"``/``"openvino"``: intra-op threads (default: physical cores).
        score_cache: Opt-in score cache: ``0`` (off, the default), the number of (query,
            passage) pairs to keep, or a ``ScoreCache`` shared with other rerankers.

    Attributes:
        runtime: ``"onnx"``, ``"openvino"`` or ``"flashrank"``: what scores the pairs.
        model_dir: The model's folder.

    Example:
        >>> from rerank_kit import FlashRankReranker  # doctest: +SKIP
        >>> fr = FlashRankReranker("ms-marco-TinyBERT-L-2-v2", cache_dir="~/.cache/flashrank")  # doctest: +SKIP
        >>> fr.rerank("capital of France", ["Berlin is...", "Paris is..."], top_n=1)  # doctest: +SKIP
        [Ranked(index=1, score=0.97, stage_scores={})]
        >>> fr.runtime  # doctest: +SKIP
        'onnx'
    """

    keeps_score_cache = True

    def __init__(
        self,
        model: str = "ms-marco-TinyBERT-L-2-v2",
        *,
        cache_dir: str | Path | None = None,
        max_length: int = 512,
        long_documents: str = "truncate",
        backend: str = "auto",
        batch_size: int = 32,
        max_batch_tokens: int | None = 2048,
        threads: int | None = None,
        score_cache: int | str | os.PathLike[str] | ScoreCache | None = 0,
    ) -> None:
        super().__init__(score_cache=score_cache)
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(_BACKENDS)}, got {backend!r}")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length <= 0:
            raise ValueError(f"max_length must be a positive int, got {max_length!r}")
        try:
            from flashrank import Config, Ranker, RerankRequest
        except ImportError as exc:
            raise missing_extra("flashrank", "flashrank", exc) from exc
        if not isinstance(model, str) or not model.strip():
            raise ValueError("FlashRank model must be a model name or a local folder path")
        self._request_cls = RerankRequest
        self._ranker_cls = Ranker
        self.model_name = model
        self.name = f"flashrank:{model}"
        local = Path(model).expanduser()
        if local.is_dir():
            name, folder = self._register_local(local, Config.model_file_map)
        else:
            if model not in Config.model_file_map:
                known = ", ".join(sorted(Config.model_file_map))
                raise ValueError(
                    f"unknown FlashRank model {model!r}: not a local folder, nor one of {known}"
                )
            if model in Config.listwise_rankers:
                raise ValueError(f"{model!r} is a listwise LLM ranker; it gives no scores")
            name = model
            folder = Path(cache_dir).expanduser() if cache_dir else Path(Config.default_cache_dir)
            if not (folder / name).is_dir() and hub_offline():
                raise ModelNotAvailableError(
                    f"FlashRank model {model!r} is not in {folder} and HF_HUB_OFFLINE is set. "
                    "Pass cache_dir= a folder holding it, or the path of a local model folder, "
                    "e.g. load_reranker('flashrank:/path/to/model-folder')."
                )
        self.model_dir = folder / name
        self._name, self._folder, self._max_length = name, folder, max_length
        self.ranker: Any = None
        self._onnx: Any = None
        self.max_tokens: int | None = None
        if not self.model_dir.is_dir():  # FlashRank fetches it (and builds its session)
            self.ranker = self._flashrank_ranker()
        pairwise = self._model_type() != "t5"
        if backend != "flashrank" and (pairwise or backend != "auto"):
            if not pairwise:
                raise ValueError(
                    f"{model!r} is a T5 model; only backend='auto' or 'flashrank' runs it "
                    "(FlashRank's own path)"
                )
            self._onnx = self._batched(
                Config.model_file_map[name], backend, batch_size, max_batch_tokens, threads
            )
        if self._onnx is not None:
            self.ranker = None  # one session is enough: ours
            self.runtime = str(self._onnx.backend)
            self._score_rule = self._onnx.rule
            self.max_tokens = self._onnx.max_length
        else:
            self.runtime = "flashrank"
            if self.ranker is None:
                self.ranker = self._flashrank_ranker()
            _refuse_type_ids_mismatch(self.ranker, self.model_name)
            self._setup_counter()
        self.set_long_documents(long_documents)

    def _batched(
        self,
        file_name: str,
        backend: str,
        batch_size: int,
        max_batch_tokens: int | None,
        threads: int | None,
    ) -> Any:
        """The model on our runtime, tokenizing as FlashRank does; ``None``: FlashRank's path."""
        from rerank_kit._runtime.cross_encoder import OnnxCrossEncoder

        try:
            onnx = OnnxCrossEncoder(
                str(self.model_dir),
                file_name=file_name,
                batch_size=batch_size,
                max_batch_tokens=max_batch_tokens,
                threads=threads,
                backend="openvino" if backend == "openvino" else "onnx",
                pair_truncation="longest_first",  # FlashRank's (the tokenizers default)
            )
        except ModelNotAvailableError:
            raise  # a truncated or corrupt file: FlashRank's own path would fail on it too
        except (RerankError, ValueError) as exc:
            if backend != "auto":
                raise
            # e.g. a two-label graph, which FlashRank scores with a softmax: its own path
            logger.info("%s runs on FlashRank's own path (%s)", self.model_name, exc)
            return None
        self._match_flashrank_tokenizer(onnx)
        return onnx

    def _flashrank_ranker(self) -> Any:
        """``flashrank.Ranker`` for the model (fetched into its cache folder if missing)."""
        existed = self.model_dir.exists()
        try:
            with root_logger_untouched():
                return self._ranker_cls(
                    model_name=self._name, cache_dir=str(self._folder), max_length=self._max_length
                )
        except Exception as exc:
            if not existed and self.model_dir.exists():
                shutil.rmtree(self.model_dir, ignore_errors=True)  # FlashRank leaves it empty
            if isinstance(exc, (OSError, ConnectionError)) or "Connection" in type(exc).__name__:
                raise ModelNotAvailableError(
                    f"FlashRank model {self.model_name!r} is not in {self._folder} and could "
                    f"not be downloaded ({type(exc).__name__}). Pass cache_dir= a folder holding "
                    "it, or a local model folder path."
                ) from exc
            if isinstance(exc, (RerankError, ValueError, TypeError)):
                raise
            # ONNX Runtime / tokenizers on a truncated or corrupt file: name the folder
            raise RerankError(
                f"FlashRank could not load {self.model_name!r} from {str(self.model_dir)!r} "
                f"({type(exc).__name__}: {str(exc).strip()[:300]})"
            ) from exc

    def _model_type(self) -> str:
        try:
            config = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ""
        kind = config.get("model_type") if isinstance(config, dict) else None
        return str(kind or "").lower()

    def _match_flashrank_tokenizer(self, onnx: Any) -> None:
        """Tokenize as ``flashrank.Ranker`` does: its special tokens and limit."""
        from tokenizers import AddedToken

        try:
            tok_config = json.loads((self.model_dir / "tokenizer_config.json").read_text())
            special = json.loads((self.model_dir / "special_tokens_map.json").read_text())
        except (OSError, ValueError) as exc:
            raise ModelNotAvailableError(
                f"FlashRank model folder {str(self.model_dir)!r}: unreadable tokenizer files ({exc})"
            ) from exc
        for token in special.values():
            if isinstance(token, str):
                onnx.tokenizer.add_special_tokens([token])
            elif isinstance(token, dict):
                onnx.tokenizer.add_special_tokens([AddedToken(**token)])
        limit = self._max_length
        model_max = tok_config.get("model_max_length")
        if isinstance(model_max, (int, float)) and 0 < model_max < 1_000_000:
            limit = min(limit, int(model_max))
        onnx.max_length = min(limit, int(onnx.max_length))

    def _setup_counter(self) -> None:
        tokenizer = self.ranker.tokenizer
        truncation = tokenizer.truncation or {}
        self.max_tokens = truncation.get("max_length")
        counter = type(tokenizer).from_str(tokenizer.to_str())
        counter.no_truncation()
        counter.no_padding()
        self._counter = counter

    @staticmethod
    def _register_local(folder: Path, file_map: dict[str, Any]) -> tuple[str, Path]:
        onnx_files = sorted(folder.glob("*.onnx"))
        if len(onnx_files) != 1:
            raise ModelNotAvailableError(
                f"FlashRank model folder {str(folder)!r} must hold exactly one .onnx file, "
                f"found {len(onnx_files)}"
            )
        missing = [f for f in _NEEDED if not (folder / f).is_file()]
        if missing:
            raise ModelNotAvailableError(
                f"FlashRank model folder {str(folder)!r} is missing {', '.join(missing)}"
            )
        name = folder.name
        if file_map.get(name, onnx_files[0].name) != onnx_files[0].name:
            raise ValueError(
                f"folder name {name!r} clashes with FlashRank's built-in model of that name; "
                "rename the folder"
            )
        file_map[name] = onnx_files[0].name
        return name, folder.parent

    def _score_pairs(self, query: str, texts: list[str]) -> PairScores:
        if self._onnx is not None:
            result: PairScores = self._onnx.score(query, texts)
            return result
        passages = [{"id": i, "text": text} for i, text in enumerate(texts)]
        results = self.ranker.rerank(self._request_cls(query=query, passages=passages))
        scores = [0.0] * len(texts)
        for item in results:
            scores[int(item["id"])] = float(item["score"])
        if telemetry.counting():  # Usage.tokens: the pairs as FlashRank's tokenizer cuts them
            encoded = self._counter.encode_batch([[query, t] for t in texts])
            limit = self.max_tokens or None
            telemetry.record(tokens=sum(min(len(e.ids), limit or len(e.ids)) for e in encoded))
        return PairScores(scores, truncated=self._overflow(query, texts))

    def _overflow(self, query: str, texts: list[str]) -> list[bool]:
        """Which pairs FlashRank's own tokenizer cuts (only long-enough pairs are tokenized)."""
        flags = [False] * len(texts)
        limit = self.max_tokens
        if not limit:
            return flags
        qbytes = len(query.encode("utf-8"))
        suspects = [i for i, t in enumerate(texts) if qbytes + len(t.encode("utf-8")) > limit - 4]
        if suspects:
            encoded = self._counter.encode_batch([[query, texts[i]] for i in suspects])
            for i, enc in zip(suspects, encoded, strict=True):
                flags[i] = len(enc.ids) > limit
        return flags

    def token_counts(self, texts: Sequence[str]) -> list[int] | None:
        """Each text's length in the model's tokens (see ``Reranker.token_counts``)."""
        holder = self._onnx if self._onnx is not None else self.ranker
        return tokenizer_counts(self, getattr(holder, "tokenizer", None), texts)

    def _window_plan(self, query: str) -> WindowPlan | None:
        if self._onnx is not None:
            plan: WindowPlan = self._onnx.window_plan(query)
            return plan
        if not self.max_tokens:
            return None
        counter = self._counter
        query_tokens = len(counter.encode(query, add_special_tokens=False).ids)
        budget = self.max_tokens - query_tokens - counter.num_special_tokens_to_add(True)
        return WindowPlan(budget, tokenizers_offsets(counter))


def _refuse_type_ids_mismatch(ranker: Any, model: str) -> None:
    """Refuse FlashRank's own path where it would feed a graph an input it does not take.

    ``flashrank.Ranker`` feeds ``token_type_ids`` whenever the tokenizer marks the passage as the
    second segment, whatever the graph's inputs: graphs without that input (DeBERTa-v3,
    DistilBERT exports) then fail at every call with ONNX Runtime's "Invalid input name".
    """
    session = getattr(ranker, "session", None)
    tokenizer = getattr(ranker, "tokenizer", None)
    if session is None or tokenizer is None:
        return  # a T5 / listwise model: no pair graph
    names = {i.name for i in session.get_inputs()}
    if "token_type_ids" in names:
        return
    if any(tokenizer.encode("query", "passage").type_ids):
        raise RerankError(
            f"FlashRank's own path cannot run {model!r}: its tokenizer marks the passage with "
            "token_type_ids, which the graph does not take, so flashrank.Ranker would fail on "
            "every call; use backend='auto' or 'onnx' (rerank-kit feeds only the graph's inputs)"
        )
