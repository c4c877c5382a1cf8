"""What the cascade and listwise rankers hold beyond plain settings, in and out of YAML.

- ``ChatText``: a Haystack ``ChatGenerator`` as the ``str -> str`` callable the engine's
  listwise reranker calls (``rerank_kit.adapters.text_llm`` takes plain callables).
- cascade stages: this package's rankers stand for their settings; in a pipeline file they are
  components, spec strings stay strings.
- callables (``count_tokens``, ``prompt``) as import paths, as Haystack saves them.
"""

from __future__ import annotations

from typing import Any

from haystack.core.serialization import component_from_dict, component_to_dict
from haystack.utils import deserialize_callable, serialize_callable

__all__ = [
    "ChatText",
    "restore_callable",
    "restore_generator",
    "restore_stages",
    "save_callable",
    "save_generator",
    "save_stages",
    "stage_settings",
]

_PACKAGE = "haystack_rerank_kit."


class ChatText:
    """``prompt -> answer text`` through a ``ChatGenerator``'s ``run(messages=[user prompt])``."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator

    @classmethod
    def of(cls, generator: Any) -> ChatText:
        """A ``ChatText`` whose class is named after the generator's (the reranker's name)."""
        named = type(type(generator).__name__, (cls,), {"__module__": __name__})
        return named(generator)

    def __call__(self, prompt: str) -> str:
        """Send ``prompt`` as one user message; the first reply's text."""
        from haystack.dataclasses import ChatMessage

        replies = self.generator.run(messages=[ChatMessage.from_user(prompt)]).get("replies")
        text = replies[0].text if replies else None
        if not isinstance(text, str):
            raise ValueError(
                f"ListwiseLLMRerank: the chat generator {type(self.generator).__name__} "
                "returned no text reply"
            )
        return text


def save_generator(generator: Any) -> dict[str, Any]:
    """The chat generator as a component in a pipeline file (its secrets stay secrets)."""
    return component_to_dict(obj=generator, name="chat_generator")


def restore_generator(data: Any) -> Any:
    """The chat generator back from a pipeline file (an object is returned as it is)."""
    if not isinstance(data, dict):
        return data
    from haystack.utils import deserialize_chatgenerator_inplace

    holder = {"chat_generator": data}
    deserialize_chatgenerator_inplace(holder, key="chat_generator")
    return holder["chat_generator"]


def save_callable(value: Any) -> str | None:
    """A callable as its import path (``None`` stays ``None``)."""
    return None if value is None else serialize_callable(value)


def restore_callable(value: Any) -> Any:
    """A callable back from its import path."""
    return deserialize_callable(value) if isinstance(value, str) else value


def stage_settings(stages: Any, ranker: type[Any]) -> Any:
    """The stages with this package's rankers replaced by their ``rerank_kit.adapters`` settings."""
    if isinstance(stages, str) or not isinstance(stages, (list, tuple)):
        return stages
    out = []
    for stage in stages:
        if not isinstance(stage, (list, tuple)) or len(stage) != 2:
            raise TypeError(
                f"CascadeRerank: each stage must be a (stage, keep) pair, got {stage!r}"
            )
        item, keep = stage
        out.append((item.settings if isinstance(item, ranker) else item, keep))
    return out


def save_stages(stages: Any, ranker: type[Any]) -> Any:
    """The stages as a pipeline file holds them: spec strings, and rankers as components."""
    if isinstance(stages, str):
        return stages
    out: list[list[Any]] = []
    for i, (item, keep) in enumerate(stages):
        if isinstance(item, ranker):
            out.append([component_to_dict(obj=item, name=f"stage{i}"), keep])
        elif isinstance(item, str):
            out.append([item, keep])
        else:
            raise ValueError(
                f"CascadeRerank.to_dict(): stages[{i}] is a {type(item).__name__} object, which "
                "a pipeline file cannot hold; give it as a spec string or one of "
                "haystack_rerank_kit's rankers to save this ranker"
            )
    return out


def restore_stages(stages: Any, ranker: type[Any]) -> Any:
    """The stages back from a pipeline file: spec strings, and this package's rankers.

    A stage's ``type`` must name one of this package's rankers, which is looked up in the
    package (nothing that the file names is imported).
    """
    if isinstance(stages, str) or not isinstance(stages, list):
        return stages
    import haystack_rerank_kit

    out = []
    for i, pair in enumerate(stages):
        item, keep = pair
        if isinstance(item, dict):
            name = str(item.get("type", ""))
            cls = getattr(haystack_rerank_kit, name[len(_PACKAGE) :], None)
            if not name.startswith(_PACKAGE) or not (
                isinstance(cls, type) and issubclass(cls, ranker)
            ):
                raise ValueError(
                    f"CascadeRerank: stages[{i}] names {name!r}; a pipeline file's stage is a "
                    "spec string or one of haystack_rerank_kit's rankers"
                )
            item = component_from_dict(cls, item, name=f"stage{i}")
        out.append((item, keep))
    return out
