"""Pairs rendered through a recipe's prompt template, tokenized for a graph that reads one sequence.

A decoder sequence-classification conversion (e.g. Qwen3-Reranker "seq-cls") carries its prompt
template as part of the model: the ONNX and OpenVINO backends render each (query, passage) pair
with the model's ``rerank_kit.Recipe`` and tokenize the text as one sequence, as
sentence-transformers does through the chat template. When a pair is too long only the document's
tokens are cut (its end, or its start for ``truncation_side="left"``); the template's own tokens
and the query count against ``max_length`` and are kept.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from rerank_kit.recipes import Recipe, RenderedPair, render_parts

logger = logging.getLogger(__name__)

__all__ = [
    "TemplateEncoder",
    "TokenIds",
    "carries_pairs",
    "recipe_chat_template",
    "template_disagreement",
    "warn_if_template_differs",
]

#: Tokens of slack between a window's budget and the limit: a document tokenized alone may
#: take a token more or less than inside the prompt (merges at its edges).
_SEAM_SLACK = 2


class TokenIds:
    """One tokenized sequence, shaped like a ``tokenizers.Encoding`` for ``run_bucketed``."""

    __slots__ = ("ids", "type_ids")

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.type_ids = [0] * len(ids)


class TemplateEncoder:
    """Tokenizes (query, document) pairs rendered by a templated recipe.

    Args:
        tokenizer: A ``tokenizers.Tokenizer`` (its truncation is switched off here).
        recipe: The model's recipe (``recipe.templated``).
        instruction: The instruction in use (``None``: the recipe takes none).

    Example:
        >>> enc = TemplateEncoder(tokenizer, recipe, None)  # doctest: +SKIP
        >>> ids, truncated = enc.encode("query", ["a passage"], max_length=512)  # doctest: +SKIP
    """

    def __init__(self, tokenizer: Any, recipe: Recipe, instruction: str | None) -> None:
        if not recipe.templated:
            raise ValueError(f"recipe {recipe.name!r} has no prompt template")
        self.tokenizer = tokenizer
        self.recipe = recipe
        self.instruction = instruction
        bos: int | None = None
        if recipe.add_bos:
            for text in ("<bos>", "<s>", "<|begin_of_text|>"):
                if tokenizer.token_to_id(text) is not None:
                    bos = int(tokenizer.token_to_id(text))
                    break
        self._bos = [bos] if bos is not None else []

    def parts(self, query: str, document: str) -> RenderedPair:
        """The pair's text in the recipe's pieces (the instruction in use filled in)."""
        return render_parts(self.recipe, query, document, self.instruction)

    def _ids(self, pairs: Sequence[RenderedPair]) -> list[tuple[list[int], int, int]]:
        """Each pair's token ids and its document's token range ``[start, end)``."""
        tok = self.tokenizer
        tok.no_truncation()
        out: list[tuple[list[int], int, int]] = []
        if self.recipe.split_tokenization:  # the family's code tokenizes its pieces apart
            for pair in pairs:
                pieces = [tok.encode(p, add_special_tokens=False).ids if p else [] for p in pair]
                head = self._bos + pieces[0] + pieces[1] + pieces[2]
                ids = head + pieces[3] + pieces[4]
                out.append((ids, len(head), len(head) + len(pieces[3])))
            return out
        texts = ["".join(pair) for pair in pairs]
        for pair, enc in zip(pairs, tok.encode_batch(texts, add_special_tokens=False), strict=True):
            label = self.recipe.document_format.split("{document}")[0]
            start = len(pair.prefix) + len(pair.query) + len(pair.separator) + len(label)
            end = len(pair.prefix) + len(pair.query) + len(pair.separator) + len(pair.document)
            end -= len(self.recipe.document_format.split("{document}")[1])
            spans = enc.offsets
            inside = [i for i, (a, b) in enumerate(spans) if b > start and a < end]
            if inside:
                first, last = inside[0], inside[-1] + 1
            else:  # an empty document: its place is where the text after it starts
                first = last = next((i for i, (a, _) in enumerate(spans) if a >= end), len(spans))
            bos = len(self._bos)
            out.append((self._bos + list(enc.ids), first + bos, last + bos))
        return out

    def encode(
        self, query: str, documents: Sequence[str], max_length: int
    ) -> tuple[list[TokenIds], list[bool]]:
        """Token ids of each rendered pair, cut to ``max_length``, and whether each was cut."""
        rendered = [self.parts(query, d) for d in documents]
        encoded: list[TokenIds] = []
        truncated: list[bool] = []
        for ids, first, last in self._ids(rendered):
            excess = len(ids) - max_length
            truncated.append(excess > 0)
            if excess > 0:
                cut = min(excess, last - first)
                if self.recipe.truncation_side == "right":
                    ids = ids[: last - cut] + ids[last:]
                else:
                    ids = ids[:first] + ids[first + cut :]
                last -= cut
                if len(ids) > max_length:  # the query itself is too long: keep the template end
                    tail = ids[last:][: max_length // 2]
                    ids = ids[: max_length - len(tail)] + tail
            encoded.append(TokenIds(ids))
        return encoded, truncated

    def overhead(self, query: str) -> int:
        """Tokens of the prompt around the document for ``query`` (template, instruction, query)."""
        ids, first, last = self._ids([self.parts(query, "")])[0]
        return len(ids) - (last - first)

    def window_budget(self, query: str, max_length: int) -> int:
        """Document tokens that fit in one window beside ``query`` in the prompt."""
        return max_length - self.overhead(query) - _SEAM_SLACK


_PROBE = ("probe query 1", "probe document 2")


def _render_probe(chat_template: str) -> str | None:
    """The template's rendering of the probe pair (roles ``query``, ``document``), or ``None``."""
    try:
        from jinja2 import ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        return None
    try:
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols]
        )
        messages = [
            {"role": "query", "content": _PROBE[0]},
            {"role": "document", "content": _PROBE[1]},
        ]
        return str(env.from_string(chat_template).render(messages=messages))
    except Exception:  # a template for transformers' own environment: nothing to compare
        return None


def carries_pairs(chat_template: str) -> bool:
    """Whether the template renders both the query and the document of a pair.

    sentence-transformers maps a pair to messages with roles ``query`` and ``document``; a plain
    chat model's template (system/user/assistant) drops them.

    Example:
        >>> carries_pairs("{% for m in messages %}{{ m.content }}{% endfor %}")  # doctest: +SKIP
        True
    """
    shown = _render_probe(chat_template)
    return shown is not None and all(p in shown for p in _PROBE)


def template_disagreement(chat_template: str, recipe: Recipe) -> str | None:
    """Where a folder's chat template renders a probe pair differently from ``recipe``, if it does.

    ``None`` when both agree, and when the template cannot be rendered here (no ``jinja2``, or
    it needs what only transformers provides).

    Example:
        >>> from rerank_kit.recipes import list_recipes
        >>> qwen = next(r for r in list_recipes() if r.name == "qwen3-reranker-seq-cls")
        >>> template_disagreement("{{ messages[0].content }}", qwen) is not None  # doctest: +SKIP
        True
    """
    shown = _render_probe(chat_template)
    if shown is None:
        return None
    expected = "".join(render_parts(recipe, *_PROBE))
    if shown == expected:
        return None
    at = next((i for i, (a, b) in enumerate(zip(shown, expected, strict=False)) if a != b), None)
    at = min(len(shown), len(expected)) if at is None else at
    start = max(0, at - 20)
    return (
        f"from character {at}, the template gives {shown[start : at + 40]!r} and the recipe "
        f"{expected[start : at + 40]!r}"
    )


def recipe_chat_template(recipe: Recipe) -> str:
    """A Jinja chat template that renders pairs exactly as ``recipe`` does.

    For sentence-transformers, which maps a pair to messages with roles ``query`` and
    ``document``; a ``system`` message is the instruction (the recipe's default without one).

    Example:
        >>> from rerank_kit.recipes import list_recipes
        >>> qwen = next(r for r in list_recipes() if r.name == "qwen3-reranker-seq-cls")
        >>> "<Instruct>" in recipe_chat_template(qwen)
        True
    """
    pick = '(messages | selectattr("role", "eq", {!r}) | map(attribute="content") | first)'
    head = [
        "{%- set query = " + pick.format("query") + " -%}",
        "{%- set document = " + pick.format("document") + " -%}",
        "{%- set instruction = " + pick.format("system") + " -%}",
    ]
    default = recipe.default_instruction
    if default:
        head.append(
            "{%- if instruction is none or instruction is undefined %}"
            f"{{%- set instruction = {json.dumps(default)} -%}}{{%- endif -%}}"
        )
    before, _, after = recipe.instruction_format.partition("{instruction}")
    rendered_instruction = (
        "{%- if instruction %}"
        + "".join(f"{{{{ {json.dumps(t)} }}}}" for t in (before,) if t)
        + "{{ instruction }}"
        + "".join(f"{{{{ {json.dumps(t)} }}}}" for t in (after,) if t)
        + "{% endif -%}"
    )
    whole = recipe.prefix + recipe.body + recipe.suffix
    out = []
    for piece in re.split(r"(\{query\}|\{document\}|\{instruction\})", whole):
        if piece == "{query}":
            out.append("{{ query }}")
        elif piece == "{document}":
            out.append("{{ document }}")
        elif piece == "{instruction}":
            out.append(rendered_instruction)
        elif piece:
            out.append(f"{{{{ {json.dumps(piece.replace('{{', '{').replace('}}', '}'))} }}}}")
    return "\n".join(head) + "\n" + "".join(out)


def warn_if_template_differs(model: str, chat_template: str | None, recipe: Recipe) -> None:
    """Log one warning when a folder's chat template renders pairs, but not as its recipe does.

    rerank-kit renders the recipe on every backend (torch included), so a folder whose own
    template says otherwise is worth one line at load; a plain chat model's template (that
    cannot carry a pair at all, as in the published Qwen3-Reranker conversions) is not.
    """
    if not chat_template or not carries_pairs(chat_template):
        return
    differs = template_disagreement(chat_template, recipe)
    if differs:
        logger.warning(
            "%s: its chat template renders pairs differently from its recipe %r (%s); rerank-kit "
            "renders the recipe on every backend. If the template is the right one, register a "
            "recipe that matches it (rerank_kit.register_recipe)",
            model,
            recipe.name,
            differs,
        )
