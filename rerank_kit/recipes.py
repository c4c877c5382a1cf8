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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from rerank_kit._core.errors import RerankError
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

#: ``Recipe.kind`` values.
KINDS = ("cross-encoder", "seq-cls-template", "yes-no")
#: ``Recipe.activation`` values: what turns the model's output into the score.
#: ``sigmoid``/``identity``/``tanh`` of a one-logit head; ``softmax``: the probability of the
#: relevant label of a multi-label head; for causal LMs, from the last position's next-token
#: logits: ``softmax-yes-no`` = softmax([no, yes])[yes], ``yes-minus-no`` = logit(yes) - logit(no),
#: ``sigmoid-yes-minus-no`` = sigmoid of that, ``yes-logit`` = logit(yes).
ACTIVATIONS = (
    "sigmoid",
    "identity",
    "tanh",
    "softmax",
    "softmax-yes-no",
    "yes-minus-no",
    "sigmoid-yes-minus-no",
    "yes-logit",
)
_SIDES = ("left", "right")
#: ``id2label`` names (lowercased) that mark a two-label head's relevant label.
_RELEVANT_NAMES = ("relevant", "label_1", "yes", "positive", "true", "1")


@dataclass(frozen=True)
class Recipe:
    """How a reranker family formats a (query, document) pair and turns its output into a score.

    Matching (all given constraints must hold): ``architectures`` (any of them in the folder's
    ``config.json`` ``architectures``), ``model_types`` (its ``model_type``), and the head implied
    by ``kind`` (``"yes-no"``: a causal LM; else a sequence-classification head). Then, when the
    row has identifiers, at least one must fit: a ``name_patterns`` glob (case-insensitive) on the
    model name or folder name, or all ``template_markers`` in the folder's chat template.

    Templates (``"seq-cls-template"`` and ``"yes-no"`` kinds): the model reads ``prefix +
    query_format + separator + document_format + suffix``, each formatted with ``{query}``,
    ``{document}`` and ``{instruction}`` (the instruction rendered through
    ``instruction_format``, or empty when there is none). ``split_tokenization`` says whether the
    family's own code tokenizes the query part, the separator and the document part apart (as
    mxbai-rerank and FlagEmbedding do) or the whole body as one string (Qwen3-Reranker's card,
    chat templates). Only the document is cut when a pair is too long; the template's own tokens
    count against ``max_length``.

    Attributes:
        name: Unique name of the row.
        kind: ``"cross-encoder"`` (a plain pair encoder: the tokenizer's own pair template),
            ``"seq-cls-template"`` (a decoder sequence-classification conversion whose prompt
            template is part of the model) or ``"yes-no"`` (a causal LM scored from the last
            position's next-token logits).
        architectures: ``config.json`` architectures this row applies to (empty: any).
        model_types: ``config.json`` model types this row applies to (empty: any).
        name_patterns: Globs on the model name or folder name that identify the family.
        template_markers: Substrings that, all present in the chat template, identify it.
        prefix: Text before the query part (system prompt, chat markers).
        query_format: The query part, with ``{query}`` (and possibly ``{instruction}``).
        separator: Text between the query part and the document part.
        document_format: The document part, with ``{document}``.
        suffix: Text after the document part (may hold ``{instruction}``).
        instruction_format: How a given instruction renders into ``{instruction}``.
        default_instruction: The instruction used when the caller gives none; ``None``: the
            family takes no instruction at all; ``""``: it takes one, none by default.
        split_tokenization: Tokenize query part, separator and document part apart.
        add_bos: Prepend the tokenizer's BOS token (when it differs from the pad token).
        yes_token: For ``"yes-no"``: the token whose logit means relevant.
        no_token: For ``"yes-no"``: the token whose logit means not relevant (if used).
        label: For classification heads: the relevant label index (``None``: the only one, or
            for two labels the one ``id2label`` names relevant, else the last).
        activation: One of :data:`ACTIVATIONS`.
        max_length: The family's token limit (``None``: the model's own).
        position_offset: Position ids start after this many (RoBERTa: 2), so the usable length
            is ``max_position_embeddings - position_offset``.
        truncation_side: Which end of the document is cut: ``"right"`` or ``"left"``.
        padding_side: Which side a batch pads (the family's own code; scores must not depend
            on it).
        source: Where the recipe comes from (a model card or source file).
    """

    name: str
    kind: str = "cross-encoder"
    architectures: tuple[str, ...] = ()
    model_types: tuple[str, ...] = ()
    name_patterns: tuple[str, ...] = ()
    template_markers: tuple[str, ...] = ()
    prefix: str = ""
    query_format: str = "{query}"
    separator: str = ""
    document_format: str = "{document}"
    suffix: str = ""
    instruction_format: str = "{instruction}"
    default_instruction: str | None = None
    split_tokenization: bool = False
    add_bos: bool = False
    yes_token: str | None = None
    no_token: str | None = None
    label: int | None = None
    activation: str = "sigmoid"
    max_length: int | None = None
    position_offset: int = 0
    truncation_side: str = "right"
    padding_side: str = "right"
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a recipe needs a non-empty name, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(
                f"recipe {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"recipe {self.name!r}: activation must be one of {ACTIVATIONS}, "
                f"got {self.activation!r}"
            )
        for label, side in (
            ("truncation_side", self.truncation_side),
            ("padding_side", self.padding_side),
        ):
            if side not in _SIDES:
                raise ValueError(f"recipe {self.name!r}: {label} must be 'left' or 'right'")
        if self.kind == "yes-no" and not self.yes_token:
            raise ValueError(f"recipe {self.name!r}: a yes-no recipe needs yes_token")
        if self.activation in ("softmax-yes-no", "yes-minus-no", "sigmoid-yes-minus-no") and not (
            self.yes_token and self.no_token
        ):
            raise ValueError(
                f"recipe {self.name!r}: activation {self.activation!r} needs yes_token and no_token"
            )
        if self.kind != "cross-encoder":
            if "{query}" not in self.query_format:
                raise ValueError(f"recipe {self.name!r}: query_format must contain {{query}}")
            if self.document_format.count("{document}") != 1:
                raise ValueError(
                    f"recipe {self.name!r}: document_format must contain {{document}} once"
                )
        for tuple_field in ("architectures", "model_types", "name_patterns", "template_markers"):
            if not isinstance(getattr(self, tuple_field), tuple):
                raise TypeError(f"recipe {self.name!r}: {tuple_field} must be a tuple of strings")

    @property
    def causal_lm(self) -> bool:
        """True when the folder holds a causal LM (``kind == "yes-no"``)."""
        return self.kind == "yes-no"

    @property
    def templated(self) -> bool:
        """True when the recipe renders its own prompt (every kind but ``"cross-encoder"``)."""
        return self.kind != "cross-encoder"

    @property
    def takes_instruction(self) -> bool:
        """Whether an ``instruction=`` may be given (``default_instruction`` is not ``None``)."""
        return self.default_instruction is not None

    @property
    def body(self) -> str:
        """The template between prefix and suffix: query part, separator, document part."""
        return self.query_format + self.separator + self.document_format


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
    from rerank_kit._recipe_table import BUILTIN_RECIPES  # the table imports Recipe from here

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
