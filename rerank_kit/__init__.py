"""rerank-kit: rerankers for RAG pipelines, one engine behind LangChain and LlamaIndex.

Importing this package loads no model library (torch, onnxruntime, ...): each reranker imports
its backend when it is constructed.

Example:
    >>> from rerank_kit import load_reranker  # doctest: +SKIP
    >>> reranker = load_reranker("flashrank:ms-marco-TinyBERT-L-2-v2")  # doctest: +SKIP
    >>> for r in reranker.rerank("what is a reranker?", passages, top_n=3):  # doctest: +SKIP
    ...     print(r.index, r.score)
"""

from __future__ import annotations

from rerank_kit._core.assembly import AssemblySettings
from rerank_kit._core.calibration import Calibration, load_calibration
from rerank_kit._core.errors import ModelNotAvailableError, RerankError
from rerank_kit._core.fusion import Fusion
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.score_cache import ScoreCache
from rerank_kit._core.telemetry import TraceSettings, configure_tracing
from rerank_kit._core.types import PairScores, Ranked
from rerank_kit._core.usage import RankedList, Usage
from rerank_kit._core.windows import WindowPlan
from rerank_kit._distributed import dask_client, score_on_dask
from rerank_kit._pipeline import Pipeline, PipelineConfig, load_pipeline
from rerank_kit._plugins import register_reranker
from rerank_kit._registry import load_reranker
from rerank_kit._rerankers.bi_encoder import BiEncoderReranker
from rerank_kit._rerankers.cascade import CascadeReranker, Stage
from rerank_kit._rerankers.cross_encoder import CrossEncoderReranker
from rerank_kit._rerankers.flashrank import FlashRankReranker
from rerank_kit._rerankers.listwise import ListwiseLLMReranker
from rerank_kit._rerankers.onnx_cross_encoder import OnnxCrossEncoderReranker
from rerank_kit._rerankers.remote import RemoteReranker, RemoteRerankError, RetryPolicy
from rerank_kit.citations import find_citations
from rerank_kit.recipes import Recipe, list_recipes, match_recipe, register_recipe
from rerank_kit.recorder import FeedbackRecorder

__version__ = "0.2.0"

__all__ = [
    "AssemblySettings",
    "BiEncoderReranker",
    "Calibration",
    "CascadeReranker",
    "CrossEncoderReranker",
    "FeedbackRecorder",
    "FlashRankReranker",
    "ListwiseLLMReranker",
    "Fusion",
    "ModelNotAvailableError",
    "OnnxCrossEncoderReranker",
    "PairScores",
    "Pipeline",
    "PipelineConfig",
    "Ranked",
    "RankedList",
    "Recipe",
    "RemoteRerankError",
    "RemoteReranker",
    "RerankError",
    "Reranker",
    "RetryPolicy",
    "ScoreCache",
    "Stage",
    "WindowPlan",
    "TraceSettings",
    "Usage",
    "__version__",
    "configure_tracing",
    "dask_client",
    "load_calibration",
    "find_citations",
    "load_pipeline",
    "load_reranker",
    "match_recipe",
    "list_recipes",
    "register_recipe",
    "register_reranker",
    "score_on_dask",
]
