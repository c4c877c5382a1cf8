"""Each rerank's usage as a LangChain custom callback event (``on_custom_event``)."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.runnables.config import ensure_config, get_callback_manager_for_config

from rerank_kit.adapters import Outcome

__all__ = ["USAGE_EVENT", "areport_usage", "report_usage"]

#: The custom callback event each rerank inside a LangChain run sends (``on_custom_event``):
#: the call's ``rerank_kit.Usage`` as plain values, plus ``model``.
USAGE_EVENT = "rerank_kit.usage"


def _in_run() -> bool:
    """Whether a LangChain run is active here (a custom event then has a parent)."""
    config = ensure_config()
    return get_callback_manager_for_config(config).parent_run_id is not None


def _usage_data(outcome: Outcome) -> dict[str, Any]:
    data = outcome.usage.as_dict() if outcome.usage is not None else {}
    return {"model": outcome.model, **data}


def report_usage(outcome: Outcome) -> None:
    """Send the call's usage as ``USAGE_EVENT`` when a LangChain run is active."""
    if outcome.usage is not None and _in_run():
        dispatch_custom_event(USAGE_EVENT, _usage_data(outcome))


async def areport_usage(outcome: Outcome) -> None:
    """Async ``report_usage``."""
    if outcome.usage is not None and _in_run():
        await adispatch_custom_event(USAGE_EVENT, _usage_data(outcome))
