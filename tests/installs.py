"""What a documented ``pip install ".[extras]"`` would give: simulated here, or in a fresh venv.

The test environment holds every extra, so a documented command that needs more than the
install it names still runs here. ``blocked_modules(extras)`` lists the modules of every
installed distribution that ``pip install ".[extras]"`` would NOT pull in (the dependency
closure is read from pyproject.toml and the installed distributions' metadata), and
``blocker_source(blocked)`` is Python source that makes importing any of them fail as it
would in a fresh virtual environment (``ModuleNotFoundError``). Run the documented command in a
subprocess that executes that source first, and it meets the install it names.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
SELF = "rerank-kit"
#: ``pip install ".[a,b]" extra-package "other>=1"``: the extras and the other requirements.
PIP_LINE = re.compile(r"pip install\s+(?P<args>[^\n#]*)")


def _optional() -> dict[str, list[str]]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {canonicalize_name(k): v for k, v in project["optional-dependencies"].items()}


def parse_pip_line(line: str) -> tuple[set[str], list[str]]:
    """``(extras of "." , other requirements)`` of a ``pip install`` line.

    Example:
        >>> parse_pip_line('pip install ".[langchain,bundled]" "langchain>=1,<2"  # note')
        ({'bundled', 'langchain'}, ['langchain>=1,<2'])
    """
    match = PIP_LINE.search(line)
    if match is None:
        raise ValueError(f"no pip install in {line!r}")
    extras: set[str] = set()
    others: list[str] = []
    for arg in re.findall(r'"[^"]*"|\'[^\']*\'|\S+', match["args"]):
        arg = arg.strip("\"'")
        if arg.startswith("-"):
            continue
        if arg.startswith(".") or arg.startswith("rerank-kit["):
            inner = re.search(r"\[(.*)\]", arg)
            extras |= {e.strip() for e in inner[1].split(",")} if inner else set()
        elif arg.startswith("("):
            break  # "(from a checkout ...)": a comment, not a package
        else:
            others.append(arg)
    return extras, others


def _dist(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def _wanted(req: Requirement, extras: Iterable[str]) -> bool:
    if req.marker is None:
        return True
    for extra in ("", *extras):
        try:
            if req.marker.evaluate({"extra": extra}):
                return True
        except UndefinedEnvironmentName:
            continue
    return False


def closure(extras: Iterable[str], others: Iterable[str] = ()) -> set[str]:
    """Canonical names of the installed distributions that the install would bring."""
    optional = _optional()
    todo = [Requirement(f"{SELF}[{','.join(extras)}]"), *(Requirement(o) for o in others)]
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(canonicalize_name(e) for e in req.extras))
        if key in seen:
            continue
        seen.add(key)
        if name == SELF:
            for extra in key[1]:
                if extra not in optional:
                    raise ValueError(f"rerank-kit has no extra {extra!r}")
                todo += [Requirement(r) for r in optional[extra]]
            continue
        dist = _dist(name)
        if dist is None:
            continue
        names.add(name)
        for text in dist.requires or []:
            try:
                sub = Requirement(text)
            except InvalidRequirement:
                continue
            if _wanted(sub, req.extras):
                todo.append(sub)
    return names


@cache
def _roots() -> dict[str, frozenset[str]]:
    """Installed distribution -> the importable names it owns (namespace packages split)."""
    out: dict[str, frozenset[str]] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        files = [str(f) for f in dist.files or []]
        inits = {f.rsplit("/", 1)[0] for f in files if f.endswith("/__init__.py")}
        roots: set[str] = set()
        for f in files:
            if f.startswith("..") or ".dist-info/" in f or ".data/" in f or "/" not in f:
                if "/" not in f and (f.endswith(".py") or f.endswith(".so")):
                    roots.add(f.split(".", 1)[0])
                continue
            if not (f.endswith(".py") or f.endswith(".so") or f.endswith(".pyd")):
                continue
            parts = f.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                if "/".join(parts[:i]) in inits:
                    roots.add(".".join(parts[:i]))
                    break
        out[name] = out.get(name, frozenset()) | frozenset(roots)
    return out


def blocked_modules(extras: Iterable[str], others: Iterable[str] = ()) -> list[str]:
    """Importable names installed here that the install would not bring (stdlib excluded)."""
    keep = closure(extras, others) | {SELF}
    roots = _roots()
    allowed = {r for name in keep for r in roots.get(name, ())}
    blocked = {r for name, rs in roots.items() if name not in keep for r in rs}
    blocked -= allowed
    blocked = {r for r in blocked if r.split(".")[0] not in sys.stdlib_module_names}
    # never a name that is (a parent of) an allowed one: a shared namespace stays importable
    blocked = {r for r in blocked if not any(a.startswith(r + ".") for a in allowed)}
    return sorted(blocked)


def blocker_source(blocked: Iterable[str]) -> str:
    """Python source that makes ``import X`` fail for each blocked name (and its submodules)."""
    return (
        "import sys\n"
        f"_BLOCKED = {sorted(blocked)!r}\n"
        "class _NotInstalled:\n"
        "    @staticmethod\n"
        "    def find_spec(name, path=None, target=None):\n"
        "        for root in _BLOCKED:\n"
        "            if name == root or name.startswith(root + '.'):\n"
        "                raise ModuleNotFoundError(\n"
        "                    f'No module named {name!r} (not in the documented install)',\n"
        "                    name=name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _NotInstalled())\n"
    )


# ------------------------------------------------------------------ a real fresh venv


def clean_run(command: list[str], cwd: Path, timeout: int = 900) -> str:
    """Run ``command`` outside this environment (no ``PYTHONPATH``, no ``VIRTUAL_ENV``, the Hub
    offline); its stdout, or a failed assertion that shows its output."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    out = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(command)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def fresh_venv(root: Path, extras: Iterable[str], others: Iterable[str] = ()) -> Path:
    """A new virtual environment under ``root`` holding what ``pip install ".[extras]" others``
    installs, from a wheel of this checkout (``pip wheel --no-deps``) and PyPI packages through
    pip's own cache (no model); its python."""
    clean_run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root), str(REPO)], root
    )
    (wheel,) = root.glob("rerank_kit-*.whl")
    clean_run([sys.executable, "-m", "venv", str(root / "venv")], root)
    python = root / "venv" / ("Scripts" if os.name == "nt" else "bin") / "python"
    spec = f"rerank-kit[{','.join(sorted(extras))}] @ {wheel.as_uri()}"
    clean_run([str(python), "-m", "pip", "install", "-q", spec, *others], root)
    return python
