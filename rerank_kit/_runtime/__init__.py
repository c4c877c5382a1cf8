"""The ONNX Runtime / OpenVINO runtime under the ONNX cross-encoder, FlashRank and the bi-encoder.

Each module lists its interface in ``__all__``; the reranker families use only those names.
Nothing here imports a model library at import time (``import rerank_kit`` stays light).

- ``paths``: cache folder, cache keys and file signatures of exported models.
- ``options``: argument checks shared by every ONNX model; what each step needs installed.
- ``cpu``: threads (physical cores), CPU flags, bf16 support.
- ``hub``: a model name to a local folder (Hugging Face cache, fail-fast offline checks).
- ``export``: torch -> ONNX for cross-encoders and sentence encoders, fused and self-checked.
- ``quantize``: dynamic int8 weights (``MatMul`` only for exports); telling a quantized graph apart.
- ``folders``: pre-exported folders: which graph to load and what their files say.
- ``sessions``: ONNX Runtime and OpenVINO runners; the root-logger guard.
- ``batching``: length-sorted, token-budgeted batches.
- ``batch_rule``: how each graph runs so that a pair's score depends on the pair alone.
- ``per_token``: dynamic int8 -> per-token int8 graph rewrite, zero-point calibration.
- ``attention_fusion``: BERT attention -> ``MultiHeadAttention`` (fusing, or splitting ``Attention``).
- ``cross_encoder``: ``OnnxCrossEncoder``, (query, passage) pairs -> scores and truncation flags.
- ``encoder``: ``OnnxSentenceEncoder``, texts -> unit-length embeddings.
- ``dequantize``: the bundled int8 graph back as an fp32 PyTorch folder, or as an fp32 graph.
"""
