"""FlashRank (ONNX Runtime, no torch) reranker."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rerank_kit._base import Reranker
from rerank_kit._errors import ModelNotAvailableError, missing_extra
from rerank_kit._hub import hub_offline
from rerank_kit._windows import WindowPlan, tokenizers_offsets

__all__ = ["FlashRankReranker"]

logger = logging.getLogger(__name__)

_NEEDED = ("tokenizer.json", "config.json", "tokenizer_config.json", "special_tokens_map.json")


def _preserve_root_logger() -> tuple[list[logging.Handler], int]:
    root = logging.getLogger()
    return list(root.handlers), root.level


def _restore_root_logger(saved: tuple[list[logging.Handler], int]) -> None:
    root = logging.getLogger()
    handlers, level = saved
    root.handlers[:] = handlers
    root.setLevel(level)


class FlashRankReranker(Reranker):
    """Reranks with FlashRank's ONNX cross-encoders: light, CPU-only, no torch.

    Accepts FlashRank's built-in names (``"ms-marco-TinyBERT-L-2-v2"``, ...) looked up in
    ``cache_dir``, or the path of a local folder holding any exported cross-encoder (one
    ``.onnx`` file plus ``tokenizer.json``, ``config.json``, ``tokenizer_config.json`` and
    ``special_tokens_map.json``). Unlike ``flashrank.Ranker`` it never sorts or changes your list,
    returns ``[]`` for an empty list, and leaves the root logger as it was.

    Setup:
        ``pip install "rerank-kit[flashrank]"`` (installs no torch).

    Args:
        model: A FlashRank model name or a local model folder.
        cache_dir: Where FlashRank keeps (and would download) its named models; FlashRank's own
            default (``/tmp``) if ``None``.
        max_length: Truncate pairs to this many tokens.
        long_documents: ``"truncate"`` (default) scores only the start of a passage longer
            than the token limit; ``"max"``, ``"mean"`` or ``"first"`` score it in overlapping
            windows and aggregate (see ``Reranker.set_long_documents``).

    Example:
        >>> from rerank_kit import FlashRankReranker  # doctest: +SKIP
        >>> fr = FlashRankReranker("ms-marco-TinyBERT-L-2-v2", cache_dir="~/.cache/flashrank")  # doctest: +SKIP
        >>> fr.rerank("capital of France", ["Berlin is...", "Paris is..."], top_n=1)  # doctest: +SKIP
        [Ranked(index=1, score=0.97, stage_scores={})]
    """

    def __init__(
        self,
        model: str = "ms-marco-TinyBERT-L-2-v2",
        *,
        cache_dir: str | Path | None = None,
        max_length: int = 512,
        long_documents: str = "truncate",
    ) -> None:
        super().__init__()
        try:
            import flashrank
            from flashrank import Config, Ranker, RerankRequest
        except ImportError as exc:
            raise missing_extra("flashrank", "flashrank", exc) from exc
        if not isinstance(model, str) or not model.strip():
            raise ValueError("FlashRank model must be a model name or a local folder path")
        self._request_cls = RerankRequest
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
        saved = _preserve_root_logger()
        existed = self.model_dir.exists()
        try:
            self.ranker = Ranker(model_name=name, cache_dir=str(folder), max_length=max_length)
        except Exception as exc:
            if not existed and self.model_dir.exists():
                shutil.rmtree(self.model_dir, ignore_errors=True)  # FlashRank leaves it empty
            if isinstance(exc, (OSError, ConnectionError)) or "Connection" in type(exc).__name__:
                raise ModelNotAvailableError(
                    f"FlashRank model {model!r} is not in {folder} and could not be downloaded "
                    f"({type(exc).__name__}). Pass cache_dir= a folder holding it, or a local "
                    "model folder path."
                ) from exc
            raise
        finally:
            _restore_root_logger(saved)
        self._flashrank_version = getattr(flashrank, "__version__", "?")
        tokenizer = self.ranker.tokenizer
        truncation = tokenizer.truncation or {}
        self.max_tokens: int | None = truncation.get("max_length")
        counter = type(tokenizer).from_str(tokenizer.to_str())
        counter.no_truncation()
        counter.no_padding()
        self._counter = counter
        self.set_long_documents(long_documents)

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

    def _score(self, query: str, texts: list[str]) -> Sequence[float]:
        passages = [{"id": i, "text": text} for i, text in enumerate(texts)]
        results = self.ranker.rerank(self._request_cls(query=query, passages=passages))
        scores = [0.0] * len(texts)
        for item in results:
            scores[int(item["id"])] = float(item["score"])
        return scores

    def _window_plan(self, query: str) -> WindowPlan | None:
        if not self.max_tokens:
            return None
        counter = self._counter
        query_tokens = len(counter.encode(query, add_special_tokens=False).ids)
        budget = self.max_tokens - query_tokens - counter.num_special_tokens_to_add(True)
        return WindowPlan(budget, tokenizers_offsets(counter))

    def _truncated(self, query: str, texts: list[str]) -> list[bool] | None:
        limit = self.max_tokens
        if not limit:
            return None
        qbytes = len(query.encode("utf-8"))
        suspects = [i for i, t in enumerate(texts) if qbytes + len(t.encode("utf-8")) > limit - 4]
        flags = [False] * len(texts)
        if suspects:
            encoded = self._counter.encode_batch([[query, texts[i]] for i in suspects])
            for i, enc in zip(suspects, encoded, strict=True):
                flags[i] = len(enc.ids) > limit
        return flags
