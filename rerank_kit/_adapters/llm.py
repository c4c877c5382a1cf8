"""One wrapper that turns a framework LLM into ``str -> str`` callables (sync and async).

Used by both adapters' ``ListwiseLLMRerank`` and by ``rerank_kit.feedback.questions_from_llm``.
It recognises the objects by their methods, so it imports neither framework (a LlamaIndex chat
model's message class is imported only when such a model is called).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["TextLLM", "text_llm"]


@dataclass(frozen=True)
class TextLLM:
    """``call`` (and, when the LLM has one, ``acall``) send a prompt and return the answer text.

    Attributes:
        call: ``prompt -> answer`` through the LLM's sync method.
        acall: The async twin (awaits the LLM's own async method), or ``None`` for a plain
            callable.
        name: The LLM's class name, for reranker names and messages.
    """

    call: Callable[[str], str]
    acall: Callable[[str], Awaitable[str]] | None
    name: str


def _langchain_text(out: Any) -> str:
    """The text of a LangChain answer: a message (content string or blocks) or a string."""
    content = getattr(out, "content", out)
    if isinstance(content, list):  # content blocks: keep the text ones
        content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content)


def _user_message(prompt: str) -> list[Any]:
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    return [ChatMessage(role=MessageRole.USER, content=prompt)]


def _is_chat(llm: Any) -> bool:
    return bool(getattr(getattr(llm, "metadata", None), "is_chat_model", False))


def _langchain(llm: Any) -> TextLLM:
    def call(prompt: str) -> str:
        return _langchain_text(llm.invoke(prompt))

    async def acall(prompt: str) -> str:
        return _langchain_text(await llm.ainvoke(prompt))

    return TextLLM(call, acall, type(llm).__name__)


def _llamaindex(llm: Any) -> TextLLM:
    """Chat models through ``chat``/``achat``, completion models through ``complete``/``acomplete``."""

    def call(prompt: str) -> str:
        if _is_chat(llm):
            return str(llm.chat(_user_message(prompt)).message.content or "")
        return str(getattr(llm.complete(prompt), "text", "") or "")

    async def acall(prompt: str) -> str:
        if _is_chat(llm):
            return str((await llm.achat(_user_message(prompt))).message.content or "")
        return str(getattr(await llm.acomplete(prompt), "text", "") or "")

    return TextLLM(call, acall, type(llm).__name__)


def text_llm(llm: Any) -> TextLLM:
    """``llm`` (a LangChain chat model or LLM, a LlamaIndex ``LLM``, or a callable) as text calls.

    Args:
        llm: A LangChain ``Runnable`` language model (``invoke``/``ainvoke``; message content
            blocks are joined), a LlamaIndex ``LLM`` (``chat``/``achat`` for chat models,
            ``complete``/``acomplete`` otherwise) or any ``str -> str`` callable.

    Returns:
        A ``TextLLM``.

    Raises:
        TypeError: ``llm`` is none of these.

    Example:
        >>> wrapped = text_llm(lambda prompt: prompt.upper())
        >>> wrapped.call("[1] > [2]"), wrapped.acall is None
        ('[1] > [2]', True)
    """
    if hasattr(llm, "invoke") and hasattr(llm, "batch"):  # LangChain Runnable (chat model/LLM)
        return _langchain(llm)
    if hasattr(llm, "complete"):  # LlamaIndex LLM
        return _llamaindex(llm)
    if callable(llm):
        return TextLLM(lambda prompt: str(llm(prompt)), None, type(llm).__name__)
    raise TypeError(
        "llm must be a LangChain chat model, a LlamaIndex LLM or a callable str -> str, "
        f"got {type(llm).__name__}"
    )
