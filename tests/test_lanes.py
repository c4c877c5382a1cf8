"""The test lanes (CONTRIBUTING.md): the ``slow`` marker, and skips that name a missing extra.

``tests/conftest.py`` marks the slow lane centrally and turns a ``ModuleNotFoundError`` of an
optional dependency into a skip naming its extra. These tests run small pytest subprocesses with
a module hidden (a ``-p`` plugin puts ``None`` in ``sys.modules``, as a missing package behaves).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SLOW_FIXTURES, missing_extra_reason

HERE = Path(__file__).resolve().parent
BLOCKER = """\
import os
import sys

for name in os.environ["LANES_BLOCK"].split(","):
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]
    sys.modules[name] = None
"""
LANGCHAIN = 'needs the langchain extra: pip install "rerank-kit[langchain]"'


def _pytest(
    args: list[str], cwd: Path, tmp_path: Path, block: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "lanes_block.py").write_text(BLOCKER, encoding="utf-8")
    env = dict(os.environ, LANES_BLOCK=block, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    command = [sys.executable, "-m", "pytest", "-p", "lanes_block", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, "-q", "-rfs", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_missing_extra_skips_at_collection_and_at_run_time_naming_it(tmp_path: Path) -> None:
    pytest.importorskip("httpx")  # installed, then hidden by a probe test itself
    probe = tmp_path / "probe"
    probe.mkdir()
    shutil.copy(HERE / "conftest.py", probe / "conftest.py")
    (probe / "test_top.py").write_text(
        "import langchain_core\n\ndef test_a():\n    pass\n", encoding="utf-8"
    )
    (probe / "test_lazy.py").write_text(
        "def test_lazy():\n    import langchain_core.documents\n\n"
        "def test_own_module_missing_still_fails():\n    import rerank_kit._no_such_module\n\n"
        "def test_plain():\n    assert True\n\n"
        "def test_hidden_by_the_test_itself_still_fails(monkeypatch):\n"
        "    monkeypatch.setitem(__import__('sys').modules, 'httpx', None)\n"
        "    import httpx\n",
        encoding="utf-8",
    )
    run = _pytest([str(probe)], probe, tmp_path, "langchain_core")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "2 failed, 1 passed, 2 skipped" in out, out
    # a missing module of rerank-kit, or an extra's module hidden after the session started
    # (as tests do to check rerank-kit's own message), is a failure, not a skip
    assert "FAILED test_lazy.py::test_own_module_missing_still_fails" in out, out
    assert "FAILED test_lazy.py::test_hidden_by_the_test_itself_still_fails" in out, out
    assert f"SKIPPED [1] test_top.py: {LANGCHAIN}" in out, out
    assert f"SKIPPED [1] test_lazy.py:1: {LANGCHAIN}" in out, out


def test_reliability_without_langchain_skips_instead_of_failing(tmp_path: Path) -> None:
    """The issue's case: test_reliability.py without LangChain had 36 failures and 7 errors."""
    run = _pytest(["test_reliability.py", "-k", "langchain"], HERE, tmp_path, "langchain_core")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    summary = out.strip().splitlines()[-1]
    assert "skipped" in summary and "failed" not in summary and "error" not in summary, out
    assert LANGCHAIN in out, out


def test_only_absent_optional_modules_give_a_skip_reason() -> None:
    assert missing_extra_reason("rerank_kit._no_such_module") is None  # ours: a real failure
    assert missing_extra_reason("no_such_package_xyz") is None  # not an extra's module
    assert missing_extra_reason("pytest") is None  # not optional
    installed = pytest.importorskip("langchain_core")
    assert missing_extra_reason(installed.__name__) is None  # installed: failures stay failures


def test_the_slow_lane_is_marked_centrally(tmp_path: Path) -> None:
    """Each of the four rules puts a test in the slow lane; the rest stay in the fast one."""
    assert {"tiny_ce_dir", "tiny_flashrank_dir", "minilm_path"} <= SLOW_FIXTURES
    files = ["test_speed2.py", "test_generative.py", "test_notebooks.py", "test_zoo_defects.py"]
    files.append("test_lanes.py")
    run = _pytest(["--collect-only", "-m", "slow", *files], HERE, tmp_path, "no_such_module")
    ids = [line.split("[")[0] for line in run.stdout.splitlines() if "::" in line]
    slow = {name.removeprefix("tests/") for name in ids}
    assert run.returncode == 0, run.stdout + run.stderr
    assert "test_speed2.py::test_openvino_f32_matches_torch_and_bf16_stays_close" in slow  # fixture
    assert "test_speed2.py::test_openvino_reads_the_bundled_int8_graph" in slow  # SLOW_TESTS
    assert "test_generative.py::test_loads_as_generative_reranker" in slow  # the models marker
    assert "test_notebooks.py::test_the_tutorials_are_there" in slow  # SLOW_MODULES
    assert not any(name.startswith("test_lanes.py::") for name in slow)
    fast = (
        "test_zoo_defects.py::test_a_missing_model_is_model_not_available_without_the_torch_extra"
    )
    assert fast not in slow
    assert any(name.startswith("test_zoo_defects.py::") for name in slow)
