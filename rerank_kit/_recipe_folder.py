"""What a model folder says about its family: the facts ``rerank_kit.recipes`` matches on.

Read from the folder's JSON and template files only (no model library): ``config.json``
architectures and model type, the head they imply, the chat template, the sentence-transformers
files and the model's name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FolderFacts", "folder_facts", "is_decoder"]

#: Model types of decoder-only (causal) language models: a sequence-classification head on one
#: of these pools the last token and reads a prompt, which needs a recipe.
_DECODER_TYPES = frozenset(
    {
        "qwen2",
        "qwen3",
        "qwen2_moe",
        "qwen3_moe",
        "gemma",
        "gemma2",
        "gemma3",
        "gemma3_text",
        "llama",
        "mistral",
        "mixtral",
        "phi",
        "phi3",
        "gpt2",
        "gpt_neox",
        "falcon",
        "olmo",
        "olmo2",
        "minicpm",
        "granite",
        "smollm3",
    }
)


@dataclass(frozen=True)
class FolderFacts:
    """What a model folder says about its family (read from its JSON and template files).

    Attributes:
        architectures: ``config.json`` architectures.
        model_type: ``config.json`` model type (``""`` if none).
        head: ``"causal-lm"``, ``"sequence-classification"`` or ``""`` (neither named).
        chat_template: The chat template text (``tokenizer_config.json`` or
            ``chat_template.jinja``), ``""`` if none.
        st_modules: sentence-transformers module class names (``modules.json``), if any.
        st_config: ``config_sentence_transformers.json`` (``{}`` if none): prompts, activation.
        config: The ``config.json`` object (``{}`` if none).
        names: The model name and folder name, lowercased, for ``name_patterns``.
    """

    architectures: tuple[str, ...] = ()
    model_type: str = ""
    head: str = ""
    chat_template: str = ""
    st_modules: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    names: tuple[str, ...] = ()
    st_config: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def folder_facts(folder: str | Path, name: str | None = None) -> FolderFacts:
    """Read what matching needs from ``folder`` (missing or unreadable files count as absent).

    Example:
        >>> folder_facts("/no/such/folder", "org/Qwen3-Reranker-0.6B").names
        ('org/qwen3-reranker-0.6b', 'folder')
    """
    root = Path(folder)
    config = _json(root / "config.json")
    config = config if isinstance(config, dict) else {}
    architectures = tuple(str(a) for a in config.get("architectures") or [])
    if any(a.endswith("ForCausalLM") for a in architectures):
        head = "causal-lm"
    elif any(a.endswith("ForSequenceClassification") for a in architectures):
        head = "sequence-classification"
    else:
        head = ""
    template = ""
    tok_config = _json(root / "tokenizer_config.json")
    if isinstance(tok_config, dict):
        value = tok_config.get("chat_template")
        if isinstance(value, list):  # named templates: [{"name": ..., "template": ...}]
            value = "\n".join(str(t.get("template", "")) for t in value if isinstance(t, dict))
        template = value if isinstance(value, str) else ""
    if not template and (root / "chat_template.jinja").is_file():
        try:
            template = (root / "chat_template.jinja").read_text(encoding="utf-8")
        except OSError:
            template = ""
    modules = _json(root / "modules.json")
    st_modules = tuple(
        str(m.get("type", "")).rsplit(".", 1)[-1]
        for m in (modules if isinstance(modules, list) else [])
        if isinstance(m, dict)
    )
    names = tuple(dict.fromkeys(n.lower() for n in (name or "", root.name) if n))
    st_config = _json(root / "config_sentence_transformers.json")
    return FolderFacts(
        architectures=architectures,
        model_type=str(config.get("model_type") or ""),
        head=head,
        chat_template=template,
        st_modules=st_modules,
        config=config,
        names=names,
        st_config=st_config if isinstance(st_config, dict) else {},
    )


def is_decoder(facts: FolderFacts) -> bool:
    """Whether the folder holds a decoder-only model (a causal LM, or a decoder's classifier).

    Example:
        >>> is_decoder(FolderFacts(architectures=("Qwen3ForSequenceClassification",),
        ...     model_type="qwen3", head="sequence-classification"))
        True
    """
    if facts.head == "causal-lm" or "LogitScore" in facts.st_modules:
        return True
    return facts.model_type in _DECODER_TYPES or bool(facts.config.get("is_decoder"))
