"""``python -m rerank_kit.evaluation DATA ...``: the same as ``rerank-kit eval DATA ...``."""

from __future__ import annotations

import sys

from rerank_kit.evaluation._cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
