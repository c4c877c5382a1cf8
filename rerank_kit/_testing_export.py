"""``rerank_kit.testing.export_flashrank``: a transformers cross-encoder as a FlashRank folder."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

__all__ = ["export_flashrank"]


def export_flashrank(model_folder: str | Path, out_folder: str | Path) -> Path:
    """Export a transformers cross-encoder folder to ONNX in a folder FlashRank can load.

    The folder name is the FlashRank model name; pass its path to ``FlashRankReranker``.

    Example:
        >>> export_flashrank("/tmp/tiny-ce", "/tmp/flashrank/tiny-ce")  # doctest: +SKIP
    """
    import shutil

    import torch
    from transformers import AutoModelForSequenceClassification

    src, out = Path(model_folder), Path(out_folder)
    out.mkdir(parents=True, exist_ok=True)
    model = AutoModelForSequenceClassification.from_pretrained(src).eval()

    class _Logits(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits

    wrapper = _Logits(model).eval()
    dummy = torch.ones(2, 8, dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about shapes; the axes are dynamic
        _export(torch, wrapper, dummy, axes, out)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "config.json",
    ):
        shutil.copy(src / name, out / name)
    return out


def _export(torch: Any, wrapper: Any, dummy: Any, axes: dict[int, str], out: Path) -> None:
    torch.onnx.export(
        wrapper,
        (dummy, dummy, torch.zeros_like(dummy)),
        str(out / "model.onnx"),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_axes={
            "input_ids": axes,
            "attention_mask": axes,
            "token_type_ids": axes,
            "logits": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
