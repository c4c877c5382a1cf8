# pip install ".[eval]"   (from a checkout of rerank-kit)
"""From an application's feedback log to tuned pipeline settings, and the config loaded back."""

import json
import tempfile
from pathlib import Path

from rerank_kit import load_pipeline
from rerank_kit.evaluation import load_dataset
from rerank_kit.learning import judgments_from_feedback, tune, write_judgments

corpus = {
    "reset": "To reset your password, open Settings > Security and click Reset password.",
    "lockout": "Two failed password attempts lock the account for 15 minutes.",
    "refund": "Refunds are issued within 30 days of purchase to the original payment method.",
    "invoice": "Invoices are emailed on the first day of each month and listed under Billing.",
    "vpn": "The VPN client needs version 5.2 or later; older clients cannot connect.",
    "wifi": "The office wifi is called staff-net; its password is on the notice board.",
    "printer": "Printers on floor 3 are added from the Devices page with their IP address.",
    "laptop": "A new laptop is requested through the IT portal and arrives within a week.",
}
# what the application logged: what it showed, what the user clicked or cited (ids in order)
log = [
    {"query": "forgot my password", "shown": ["lockout", "reset"], "clicked": ["reset"]},
    {"query": "account locked after password attempts", "shown": ["lockout"], "cited": ["lockout"]},
    {"query": "when do I get my refund", "shown": ["invoice", "refund"], "clicked": ["refund"]},
    {"query": "where is my invoice", "shown": ["invoice"], "clicked": ["invoice"]},
    {"query": "vpn will not connect", "shown": ["wifi", "vpn"], "cited": ["vpn"]},
    {"query": "wifi password", "shown": ["wifi"], "clicked": ["wifi"]},
    {"query": "add a printer", "shown": ["printer"], "clicked": ["printer"]},
    {"query": "order a new laptop", "shown": ["printer", "laptop"], "clicked": ["laptop"]},
]
judged, report = judgments_from_feedback(log)
print(report)  # what was kept and dropped, and why

folder = Path(tempfile.mkdtemp())
write_judgments(judged, folder / "judgments.jsonl")
with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
    for doc_id, text in corpus.items():
        f.write(json.dumps({"id": doc_id, "text": text}) + "\n")

data = load_dataset(folder)
# every candidate scored once; depth and fusion searched by arithmetic, each fold's choice made
# on the other folds (a real log: a few dozen to a few hundred queries, --folds 5)
result = tune(
    data, "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2", first_stage="bm25", depths=[4, 8], folds=2
)
print(
    "held out: default",
    result.default["nDCG@10"],
    "plain",
    result.plain["nDCG@10"],
    "tuned",
    result.tuned["nDCG@10"],
)
print("chosen:", result.config.to_dict())

result.config.save(folder / "pipeline.json")
pipeline = load_pipeline(folder / "pipeline.json")  # reranker + depth + fusion + top_n + threshold
ranked = pipeline.rerank(
    "I forgot my password", list(corpus.values()), first_stage_scores=[1.0] * len(corpus)
)
print([list(corpus)[r.index] for r in ranked[:3]])
assert list(corpus)[ranked[0].index] == "reset"
