"""``Recipe``: one reranker family's template and scoring, as a value (``rerank_kit.recipes``).

Defined here, beneath both ``rerank_kit.recipes`` (which re-exports it) and the built-in table
``rerank_kit._recipe_table``, so that neither imports the other in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ACTIVATIONS", "KINDS", "Recipe"]

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
