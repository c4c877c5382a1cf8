"""Where exported models live, and the keys that tell a cached export is still the right one.

A cross-encoder export lives in ``CACHE/<slug>-<key>``, a sentence encoder's in
``CACHE/bi-<slug>-<key><side>``, an int8 copy of a pre-exported graph in
``CACHE/<folder>-<graph>-<key>``; ``key`` hashes the source folder's path and files, so a changed
model is exported again and an unchanged one never is.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "FORMAT_VERSION",
    "FP32",
    "INT8",
    "INT8_MATMUL",
    "META",
    "OPSET",
    "TOKENIZER",
    "cache_key",
    "default_cache_dir",
    "file_signature",
    "graph_key",
    "is_complete",
    "side_files_key",
    "slug",
    "write_file_atomically",
]

#: Bump when the exported files change in a way that old caches must not be reused.
FORMAT_VERSION = 1
#: ONNX opset of every export.
OPSET = 17
#: File names inside an export folder.
META = "meta.json"
TOKENIZER = "tokenizer.json"
FP32 = "model.onnx"
INT8 = "model.int8.onnx"  # older versions' int8 export (QAttention); kept, no longer made
#: The int8 export since the batch-independence rule: MatMul weights only (no QAttention), the
#: graph that ``batch_rule`` rewrites to per-token quantization.
INT8_MATMUL = "model.int8.matmul.onnx"
# Files whose content is hashed in the cache key; other files count by size and mtime.
_SMALL_FILE = 1 << 20


def default_cache_dir() -> Path:
    """Folder of exported ONNX models: ``$RERANK_KIT_CACHE/onnx`` or ``~/.cache/rerank-kit/onnx``.

    ``XDG_CACHE_HOME`` replaces ``~/.cache`` when set.

    Example:
        >>> default_cache_dir().name
        'onnx'
    """
    root = os.environ.get("RERANK_KIT_CACHE", "").strip()
    if root:
        return Path(root).expanduser() / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rerank-kit" / "onnx"


def file_signature(folder: Path) -> list[list[Any]]:
    """Name, size, mtime (large files) or content hash (small files) of the model's files."""
    out: list[list[Any]] = []
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith(".") or f.suffix.lower() == ".md":
            continue
        st = f.stat()
        if st.st_size <= _SMALL_FILE:
            out.append([f.name, st.st_size, hashlib.sha256(f.read_bytes()).hexdigest()])
        else:
            out.append([f.name, st.st_size, st.st_mtime_ns])
    return out


def cache_key(folder: Path) -> str:
    """20 hex digits naming the export of ``folder``: its path and files, the format and opset."""
    payload = json.dumps(
        {
            "format": FORMAT_VERSION,
            "opset": OPSET,
            "path": str(folder.resolve()),
            "files": file_signature(folder),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def side_files_key(model_dir: Path) -> str:
    """Hash of the module files in subfolders (pooling, normalize) that ``cache_key`` skips."""
    h = hashlib.sha256()
    for f in sorted(model_dir.glob("*/*.json")):
        h.update(str(f.relative_to(model_dir)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:8]


def graph_key(graph: Path) -> str:
    """20 hex digits naming one graph file (its path, size and mtime)."""
    st = graph.stat()
    payload = json.dumps([FORMAT_VERSION, str(graph.resolve()), st.st_size, st.st_mtime_ns])
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def slug(text: str) -> str:
    """``text`` reduced to the characters a folder name may safely hold.

    Example:
        >>> slug("ms marco/MiniLM")
        'ms-marco-MiniLM'
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def is_complete(folder: Path) -> bool:
    """True if ``folder`` holds a finished export (its metadata and fp32 graph)."""
    return (folder / META).is_file() and (folder / FP32).is_file()


def write_file_atomically(target: Path, build: Callable[[Path], Any]) -> None:
    """``build(path)`` in a temporary folder, then that folder renamed to ``target.parent``.

    For a cache entry that is one file in a folder of its own: readers never see half a file,
    and a build that fails leaves nothing behind (not even an empty folder). If ``target``
    exists by then (a concurrent build won), the new one is dropped; into a folder that holds
    other files, the file alone is renamed.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> write_file_atomically(root / "entry" / "model.onnx", lambda p: p.write_text("x"))
        >>> (root / "entry" / "model.onnx").read_text()
        'x'
        >>> def fails(path: Path) -> None:
        ...     raise ValueError("cannot build")
        >>> try:
        ...     write_file_atomically(root / "other" / "model.onnx", fails)
        ... except ValueError:
        ...     pass
        >>> sorted(p.name for p in root.iterdir())
        ['entry']
    """
    folder = target.parent
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name[:40]}-", dir=folder.parent))
    try:
        build(tmp / target.name)
        try:
            os.replace(tmp, folder)  # replaces a missing or empty folder in one rename
        except OSError:  # the folder holds files: a concurrent build won, or other entries
            if not target.is_file():
                os.replace(tmp / target.name, target)  # one file, still one rename
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
