"""``--no-progress`` for the model libraries' own bars, for one command's run.

transformers draws a "Loading weights" bar when it loads a checkpoint, huggingface_hub its
download bars; neither follows rerank-kit's ``show_progress``. ``progress_bars(shown=False)``
switches both off through their own switches for the duration of the ``with`` block and then
puts back what was there, so the libraries are left as they were found (a caller running the
command in its own process keeps its settings).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["progress_bars"]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent missing, or sys.modules[module] is None
        return False


@contextmanager
def progress_bars(*, shown: bool) -> Iterator[None]:
    """Leave the libraries' progress bars on (``shown=True``) or off for the ``with`` block.

    huggingface_hub is imported (cheap) to switch its bars off; transformers, costly to
    import, is switched off now if it is already imported, and otherwise starts with its bars
    off because it reads huggingface_hub's switch when it is first imported.

    Example:
        >>> with progress_bars(shown=False):
        ...     pass
    """
    if shown or not _installed("huggingface_hub"):
        yield
        return
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    hub_was_off = are_progress_bars_disabled()
    transformers_was_on = _transformers_bars(None)
    disable_progress_bars()
    _transformers_bars(False)
    try:
        yield
    finally:
        if transformers_was_on is None:  # imported in the block: as it would have started
            transformers_was_on = not hub_was_off
        with warnings.catch_warnings():  # enabling warns where HF_HUB_DISABLE_PROGRESS_BARS=1
            warnings.simplefilter("ignore")
            if transformers_was_on:
                _transformers_bars(True)  # (switches huggingface_hub's on too)
            if hub_was_off:
                disable_progress_bars()
            else:
                enable_progress_bars()


def _transformers_bars(on: bool | None) -> bool | None:
    """The state of transformers' bars if it is imported (``None``: not); set it to ``on``."""
    if "transformers" not in sys.modules:
        return None
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # a broken install: nothing to switch
        return None
    was = hf_logging.is_progress_bar_enabled()
    if on is True:
        hf_logging.enable_progress_bar()
    elif on is False:
        hf_logging.disable_progress_bar()
    return was
