#!/usr/bin/env bash
# Create (once) the virtual environment that runs the Infinity serving engine for the tests.
#
# infinity-emb 0.0.78 needs transformers 4.57, sentence-transformers 3.4, numpy<2 and click<8.2,
# which clash with rerank-kit's own environment, so it lives in its own venv. torch is pinned to
# the CPU build (an unpinned torch pulls several GB of CUDA wheels).
#
# Usage: scripts/infinity_venv.sh [VENV_DIR]    (default: .venv-infinity in the repo root)
# Prints the path of the venv's `infinity_emb` command on its last line. Idempotent: a venv whose
# stamp matches the requirements below is reused as is.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-${RERANK_KIT_INFINITY_VENV:-$repo/.venv-infinity}}"
python="${PYTHON:-python3}"
requirements=(
    "infinity-emb[server]==0.0.78"
    "torch==2.13.0"
    "transformers>=4.57,<4.58"
    "sentence-transformers>=3.4,<3.5"
    "numpy<2"
    "click<8.2"
)
stamp="${requirements[*]}"
if [[ -x "$venv/bin/infinity_emb" && -f "$venv/.rerank-kit-stamp" \
      && "$(cat "$venv/.rerank-kit-stamp")" == "$stamp" ]]; then
    echo "$venv/bin/infinity_emb"
    exit 0
fi
echo "creating the Infinity venv in $venv (one time, a few minutes)" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}" >&2
"$venv/bin/infinity_emb" v2 --help >/dev/null
echo "$stamp" > "$venv/.rerank-kit-stamp"
echo "$venv/bin/infinity_emb"
