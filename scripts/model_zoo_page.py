"""Render docs/model-zoo.md from docs/model_zoo.json (the model-zoo matrix's results).

Usage: ``python scripts/model_zoo_page.py`` (rewrites the page); ``--check`` exits 1 if the
committed page differs from what the JSON renders. The JSON is written by the matrix test:
``RERANK_KIT_WRITE_ZOO=1 pytest tests/test_model_zoo.py`` (it renders the page too).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
JSON_PATH = REPO / "docs" / "model_zoo.json"
PAGE_PATH = REPO / "docs" / "model-zoo.md"

_MARK = {"pass": "pass", "fail": "**FAIL**", "refused": "refused", "n/a": "n/a"}

_INTRO = """\
# Model zoo: every architecture on every path

Which reranker architectures run on which rerank-kit path, and how close each comes to its model
card. The table is generated from the conformance matrix in the test suite
(`tests/test_model_zoo.py`): tiny random-weight models of each architecture, shaped as the real
ones (position count and offset, pooling, token types or none, special tokens, chat template,
with or without a sentence-transformers config; 2 layers, hidden size 32), built offline with
tokenizers trained in the test. Each path's scores are compared with an independent reference:
the model card's recipe (prompt template, instruction, yes/no tokens or label, activation,
truncation) run pair by pair with plain transformers and torch (`tests/zoo_reference.py`).
How rerank-kit itself knows each family's recipe: [Model recipes](guides/recipes.md).

- **pass**: fp32 paths within {tolerance:g} of the reference, in the same order; int8 and bf16
  within the band measured for the architecture (below); and the scores do not depend on the
  batch (each text scored alone vs among long and short neighbours, within {tolerance:g}).
- **refused**: the path raises a clear error naming the model and what is missing.
- **n/a**: the path does not apply (the reason is listed below).
- **FAIL**: the path runs but disagrees with the model card, or fails where it should run.

Each cell shows the largest error against the reference; the notes list batch dependence,
bands and reasons.
"""

_REFERENCES = """\
## The references

Written in the test from each family's published recipe, never from rerank-kit's code; each
pair runs alone (no padding), so the reference cannot depend on its batch.

| family | source | input | score |
|---|---|---|---|
| encoder cross-encoders (BERT, XLM-R, ModernBERT, DeBERTa-v3, ELECTRA, DistilBERT) | sentence-transformers `CrossEncoder.predict`, the models' cards | the tokenizer's pair encoding, longest-first cut at `model_max_length` within the positions (XLM-R: positions - 2) | sigmoid of the one logit; a two-label head: softmax, the relevant (last) label |
| Qwen3-Reranker (causal LM, and its seq-cls conversion) | Qwen/Qwen3-Reranker-0.6B model card, "Transformers Usage" | system prefix + `<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}` (one string, its end cut at 8192 - prefix - suffix) + assistant suffix | softmax([logit("no"), logit("yes")])[yes]; seq-cls: sigmoid(lm_head[yes] - lm_head[no] logit) |
| mxbai-rerank-v2 (Qwen2) | mixedbread-ai/mxbai-rerank `mxbai_rerank_v2.py` | chat prefix + `[instruction: ...\\n]query: {query}` (cut at 3/4 of 8192) + `\\n` + `document: {doc}` (cut to fit) + `\\n` + task prompt + chat suffix, each piece tokenized apart | logit("1") - logit("0"), raw |
| bge-reranker-v2-gemma | FlagEmbedding `BaseLLMReranker` (decoder_only/base.py) | `<bos>` + `A: {query}` (cut at 384) + `\\n` + `B: {passage}` (cut at 512) + `\\n` + prompt | logit("Yes"), raw (`normalize=False`) |
"""

_REGENERATE = """\
## Regenerating

The committed `docs/model_zoo.json` is written only when asked, so CI runs compare without
changing the tree:

```bash
RERANK_KIT_WRITE_ZOO=1 pytest tests/test_model_zoo.py -m models
python scripts/model_zoo_page.py          # re-render this page from the JSON (the run does it too)
```

`tests/test_model_zoo.py::test_zoo_page_matches_json` fails when this page and the JSON disagree.
The tiny models are built once per session and kept under `~/.cache/rerank-kit-tests`
(`RERANK_KIT_TEST_CACHE=0` builds them in the session's temporary folder instead).
"""


def _cell(cell: dict[str, Any]) -> str:
    mark = _MARK.get(cell["status"], cell["status"])
    err = cell.get("max_error")
    return f"{mark} ({err:.0e})" if err is not None and cell["status"] != "n/a" else mark


def render(data: dict[str, Any]) -> str:
    """The page's Markdown for the matrix results ``data``."""
    paths: dict[str, str] = data["paths"]
    archs: dict[str, dict[str, str]] = data["architectures"]
    cells: dict[str, dict[str, dict[str, Any]]] = data["cells"]
    out = [_INTRO.format(tolerance=data["tolerance"])]
    out.append("## The matrix\n")
    out.append("| architecture | " + " | ".join(f"`{p}`" for p in paths) + " |")
    out.append("|---|" + "---|" * len(paths))
    for key, arch in archs.items():
        row = cells.get(key, {})
        shown = [_cell(row[p]) if p in row else "not run" for p in paths]
        out.append(f"| `{key}` ({arch['folder']}) | " + " | ".join(shown) + " |")
    out.append("")
    total = sum(len(row) for row in cells.values())
    counts: dict[str, int] = {}
    for row in cells.values():
        for cell in row.values():
            counts[cell["status"]] = counts.get(cell["status"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    line = f"{total} cells: {summary}."
    if "matrix_seconds" in data:
        line += (
            f" The whole matrix ran in {data['matrix_seconds']:g} s (pytest on 2 shared cores; "
            "this run's model builds included)."
        )
    out.append(line + "\n")
    out.append("## Architectures\n")
    out.append("| key | stands for | kind | shape |")
    out.append("|---|---|---|---|")
    for key, arch in archs.items():
        out.append(f"| `{key}` | {arch['real']} | {arch['kind']} | {arch['shape']} |")
    out.append("\n## Paths\n")
    for path, what in paths.items():
        out.append(f"- `{path}`: {what}")
    out.append("\n" + _REFERENCES)
    out.append("## Fidelity bands (int8, bf16)\n")
    out.append(
        "Largest error against the reference, and the band the test holds it to (about twice "
        "the error measured when the band was set, rounded up). These bound the tiny "
        "random-weight builds, whose scores lie in [0, 1]; int8 and bf16 kernels differ between "
        "CPUs (VNNI, AVX512_BF16, AMX), so another machine may see other errors.\n"
    )
    out.append("| architecture | path | max error | band | batch dependence |")
    out.append("|---|---|---|---|---|")
    for key in archs:
        for path, cell in cells.get(key, {}).items():
            if "band" in cell:
                dep = cell.get("batch_dependence")
                out.append(
                    f"| `{key}` | `{path}` | {cell.get('max_error', float('nan')):.1e} | "
                    f"{cell['band']:g} | {'' if dep is None else f'{dep:.0e}'} |"
                )
    out.append("\n## Notes per cell\n")
    out.append(
        "Batch dependence (max change of a score between alone and in a batch) and reasons.\n"
    )
    for key in archs:
        notes = []
        for path, cell in cells.get(key, {}).items():
            bits = []
            if cell.get("batch_dependence") is not None:
                bits.append(f"batch dependence {cell['batch_dependence']:.0e}")
            if cell.get("reason"):
                bits.append(cell["reason"].replace("|", "/").replace("\n", " "))
            if bits:
                notes.append(f"  - `{path}` ({cell['status']}): " + "; ".join(bits))
        if notes:
            out.append(f"- `{key}`")
            out.extend(notes)
    if data.get("environment"):
        env = data["environment"]
        versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
        out.append(f"\nMeasured with Python {env.get('python', '?')}, {versions}.\n")
    out.append("\n" + _REGENERATE)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Render (or ``--check``) the page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    args = parser.parse_args(argv)
    page = render(json.loads(JSON_PATH.read_text()))
    if args.check:
        if PAGE_PATH.read_text() != page:
            print(f"{PAGE_PATH} is stale: run python scripts/model_zoo_page.py", file=sys.stderr)
            return 1
        return 0
    PAGE_PATH.write_text(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
