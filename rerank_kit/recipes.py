r"""Reranker recipes as data: how each model family formats a (query, document) pair and scores it.

One row per family, in the spirit of fastembed's model rows: the template (prefix, query part,
separator, document part, suffix), the default instruction, the yes/no tokens or the relevant
label, the activation, the length limits and which side is cut. A model folder is matched to its
row from what it holds (``config.json`` architectures and model type, the sentence-transformers
files, the chat template, the name): :func:`match_recipe`. A decoder (causal LM, or a decoder
sequence-classification conversion with a chat template) that no row matches is refused with a
message saying what is missing, never scored with a guess: :func:`resolve_recipe`. A new model is
supported without editing the package by :func:`register_recipe`.

Example:
    >>> from rerank_kit.recipes import Recipe, register_recipe, render
    >>> mine = Recipe(
    ...     name="my-yes-no",
    ...     kind="yes-no",
    ...     architectures=("LlamaForCausalLM",),
    ...     name_patterns=("*my-llama-reranker*",),
    ...     query_format="Q: {query}",
    ...     separator="\n",
    ...     document_format="D: {document}",
    ...     suffix="\nRelevant:",
    ...     yes_token=" yes",
    ...     no_token=" no",
    ...     activation="softmax-yes-no",
    ... )
    >>> _ = register_recipe(mine)  # doctest: +SKIP
    >>> render(mine, "capital of France", "Paris is the capital.")
    'Q: capital of France\nD: Paris is the capital.\nRelevant:'
"""

from __future__ import annotations

import fnmatch
import threading
from pathlib import Path
from typing import Any, NamedTuple

from rerank_kit._core.errors import RerankError
from rerank_kit._recipe import ACTIVATIONS, KINDS, Recipe
from rerank_kit._recipe_folder import FolderFacts, folder_facts, is_decoder

__all__ = [
    "ACTIVATIONS",
    "KINDS",
    "FolderFacts",
    "Recipe",
    "RenderedPair",
    "folder_facts",
    "effective_instruction",
    "is_decoder",
    "match_recipe",
    "list_recipes",
    "register_recipe",
    "relevant_label",
    "render",
    "render_parts",
    "resolve_recipe",
    "unknown_decoder_message",
]

#: ``id2label`` names (lowercased) that mark a two-label head's relevant label.
_RELEVANT_NAMES = ("relevant", "label_1", "yes", "positive", "true", "1")


class RenderedPair(NamedTuple):
    """A pair rendered by a recipe, in the pieces its family tokenizes (see ``render_parts``).

    ``document`` is the document part (``document_format`` filled in); only it is cut when the
    pair is too long. ``"".join(pair)`` is the model's input text.
    """

    prefix: str
    query: str
    separator: str
    document: str
    suffix: str


def _instruction_text(recipe: Recipe, instruction: str | None) -> str:
    if instruction is not None and not recipe.takes_instruction:
        raise ValueError(f"recipe {recipe.name!r} takes no instruction; got {instruction!r}")
    text = instruction if instruction is not None else recipe.default_instruction
    return recipe.instruction_format.format(instruction=text) if text else ""


def render_parts(
    recipe: Recipe, query: str, document: str, instruction: str | None = None
) -> RenderedPair:
    r"""The model input of a templated recipe, in pieces (see :class:`RenderedPair`).

    ``instruction=None`` uses the recipe's default. Raises ``ValueError`` for an instruction
    given to a recipe that takes none, and for a plain ``"cross-encoder"`` recipe (its tokenizer
    joins the pair).

    Example:
        >>> qwen = next(r for r in list_recipes() if r.name == "qwen3-reranker")
        >>> parts = render_parts(qwen, "what is rust", "Rust is a language.", "Find code")
        >>> parts.document
        '<Document>: Rust is a language.'
        >>> parts.query
        '<Instruct>: Find code\n<Query>: what is rust\n'
    """
    if not recipe.templated:
        raise ValueError(
            f"recipe {recipe.name!r} is a plain cross-encoder: its tokenizer joins the pair"
        )
    values = {"query": query, "instruction": _instruction_text(recipe, instruction)}
    return RenderedPair(
        recipe.prefix.format(**values),
        recipe.query_format.format(**values),
        recipe.separator.format(**values),
        recipe.document_format.format(document=document, **values),
        recipe.suffix.format(**values),
    )


def render(recipe: Recipe, query: str, document: str, instruction: str | None = None) -> str:
    r"""The text a templated recipe's model reads for one pair (the pieces joined).

    Example:
        >>> gemma = next(r for r in list_recipes() if r.name == "bge-reranker-v2-gemma")
        >>> render(gemma, "q", "p", instruction="Is B relevant to A?")
        'A: q\nB: p\nIs B relevant to A?'
    """
    return "".join(render_parts(recipe, query, document, instruction))


_LOCK = threading.Lock()
_USER: list[Recipe] = []


def _builtins() -> tuple[Recipe, ...]:
    from rerank_kit._recipe_table import BUILTIN_RECIPES

    return BUILTIN_RECIPES


def list_recipes() -> tuple[Recipe, ...]:
    """Every recipe: the ones registered with :func:`register_recipe` first, then the built-ins.

    Example:
        >>> "qwen3-reranker" in {r.name for r in list_recipes()}
        True
    """
    with _LOCK:
        return (*reversed(_USER), *_builtins())


def register_recipe(recipe: Recipe, *, replace: bool = False) -> Recipe:
    """Add ``recipe`` to the table, ahead of the built-ins (a later registration wins).

    A name already in the table is refused unless ``replace=True`` (which removes an earlier
    registration of that name; a built-in name is then shadowed). Returns the recipe.

    Example:
        >>> register_recipe(Recipe(name="qwen3-reranker"))
        Traceback (most recent call last):
        ...
        ValueError: a recipe named 'qwen3-reranker' exists; pass replace=True to override it
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"register_recipe takes a Recipe, got {type(recipe).__name__}")
    with _LOCK:
        taken = {r.name for r in (*_USER, *_builtins())}
        if recipe.name in taken and not replace:
            raise ValueError(
                f"a recipe named {recipe.name!r} exists; pass replace=True to override it"
            )
        _USER[:] = [r for r in _USER if r.name != recipe.name]
        _USER.append(recipe)
    return recipe


def _unregister(name: str) -> None:
    """Remove a registered recipe (for tests)."""
    with _LOCK:
        _USER[:] = [r for r in _USER if r.name != name]


def _fits(recipe: Recipe, facts: FolderFacts) -> bool:
    """The structural constraints: architectures, model type, head."""
    if recipe.architectures and not set(recipe.architectures) & set(facts.architectures):
        return False
    if recipe.model_types and facts.model_type not in recipe.model_types:
        return False
    if recipe.causal_lm:
        return facts.head == "causal-lm"
    return facts.head != "causal-lm"


def _identified(recipe: Recipe, facts: FolderFacts) -> bool | None:
    """``None`` when the row has no identifiers, else whether a name or the template fits."""
    if not recipe.name_patterns and not recipe.template_markers:
        return None
    for pattern in recipe.name_patterns:
        if any(fnmatch.fnmatchcase(n, pattern.lower()) for n in facts.names):
            return True
    markers = recipe.template_markers
    return bool(markers) and all(m in facts.chat_template for m in markers)


def match_recipe(folder: str | Path, name: str | None = None) -> Recipe | None:
    """The recipe of the model in ``folder`` (``name``: its Hub id or spec), or ``None``.

    The first row of :func:`recipes` (registered ones first) whose constraints fit and that is
    identified by name or chat template; failing that, the first fitting row without
    identifiers (the plain encoder families). ``None`` when nothing fits: an encoder then runs
    as a plain cross-encoder, a decoder is refused (see :func:`resolve_recipe`).

    Example:
        >>> match_recipe("/no/such/folder") is None
        True
    """
    facts = folder_facts(folder, name)
    generic: Recipe | None = None
    for recipe in list_recipes():
        if not _fits(recipe, facts):
            continue
        identified = _identified(recipe, facts)
        if identified:
            return recipe
        if identified is None and generic is None and (recipe.architectures or recipe.model_types):
            generic = recipe
    return generic


def unknown_decoder_message(facts: FolderFacts, model: str) -> str:
    """Why a decoder without a recipe is refused, and how to supply one."""
    what = facts.architectures[0] if facts.architectures else facts.model_type or "a decoder"
    template = "a chat template" if facts.chat_template else "no chat template"
    return (
        f"{model!r} is a decoder reranker ({what}, {template}) that matches no reranker recipe, "
        "so rerank-kit does not know its prompt template, instruction, yes/no tokens or label "
        "and activation, and will not score it with a guess. Supply them with "
        "rerank_kit.register_recipe(rerank_kit.Recipe(name=..., kind='yes-no' or "
        "'seq-cls-template', architectures=(...), name_patterns=(...), prefix=..., "
        "query_format=..., document_format=..., suffix=..., yes_token=..., no_token=..., "
        "activation=...)) before loading it; rerank_kit.recipes.list_recipes() lists the built-in ones"
    )


def resolve_recipe(folder: str | Path, model: str | None = None) -> Recipe | None:
    """:func:`match_recipe`, refusing a decoder that no recipe matches.

    Returns the matched recipe, or ``None`` for an unmatched encoder (a plain cross-encoder).
    Raises ``RerankError`` for an unmatched causal LM, and for an unmatched decoder
    sequence-classification folder with a chat template (its prompt is part of the model).

    Example:
        >>> resolve_recipe("/no/such/folder") is None
        True
    """
    recipe = match_recipe(folder, model)
    if recipe is not None:
        return recipe
    facts = folder_facts(folder, model)
    unknown_prompt = facts.head == "causal-lm" or "LogitScore" in facts.st_modules
    if unknown_prompt or (is_decoder(facts) and facts.chat_template):
        raise RerankError(unknown_decoder_message(facts, model or str(folder)))
    return None


def effective_instruction(recipe: Recipe | None, instruction: str | None, model: str) -> str | None:
    """The instruction a reranker of ``model`` uses: the given one, else the recipe's default.

    Raises ``ValueError`` naming the model when an instruction is given to a model whose
    recipe takes none (or that has no recipe: a plain cross-encoder reads the pair alone).

    Example:
        >>> qwen = next(r for r in list_recipes() if r.name == "qwen3-reranker")
        >>> effective_instruction(qwen, None, "Qwen/Qwen3-Reranker-0.6B")[:22]
        'Given a web search que'
        >>> effective_instruction(None, "find code", "cross-encoder/ms-marco-MiniLM-L6-v2")
        Traceback (most recent call last):
        ...
        ValueError: 'cross-encoder/ms-marco-MiniLM-L6-v2' takes no instruction (a plain cross-encoder reads the (query, passage) pair alone); got instruction='find code'
    """
    if instruction is not None and not isinstance(instruction, str):
        raise TypeError(f"instruction must be a string or None, got {type(instruction).__name__}")
    if recipe is None or not recipe.takes_instruction:
        if instruction is not None:
            family = (
                f"its recipe {recipe.name!r} has none"
                if recipe is not None and recipe.templated
                else "a plain cross-encoder reads the (query, passage) pair alone"
            )
            raise ValueError(
                f"{model!r} takes no instruction ({family}); got instruction={instruction!r}"
            )
        return None
    return instruction if instruction is not None else recipe.default_instruction


def relevant_label(config: dict[str, Any], recipe: Recipe | None = None) -> int:
    """Index of the relevant label of a classification head (``config.json`` as a dict).

    One label: 0. Otherwise the recipe's ``label`` if it names one, else the label ``id2label``
    names relevant (``relevant``, ``LABEL_1``, ``yes``, ``positive``, ``true``, ``1``, any
    case), else the last.

    Example:
        >>> relevant_label({"num_labels": 2, "id2label": {"0": "irrelevant", "1": "relevant"}})
        1
        >>> relevant_label({"id2label": {"0": "yes", "1": "no"}})
        0
        >>> relevant_label({"id2label": {"0": "a", "1": "b", "2": "c"}})
        2
    """
    id2label = config.get("id2label") or {}
    count = int(config.get("num_labels") or len(id2label) or 1)
    if count == 1:
        return 0
    if recipe is not None and recipe.label is not None:
        if not 0 <= recipe.label < count:
            raise ValueError(f"recipe {recipe.name!r}: label {recipe.label} out of {count}")
        return recipe.label
    names = {}
    for key, value in id2label.items():
        try:
            names[int(key)] = str(value).strip().lower()
        except (TypeError, ValueError):
            continue
    for wanted in _RELEVANT_NAMES:
        for index in sorted(names):
            if names[index] == wanted and 0 <= index < count:
                return index
    return count - 1
