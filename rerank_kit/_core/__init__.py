"""The engine's core: the ``Reranker`` protocol and everything every reranker shares.

``protocol`` (the ``Reranker`` base class and its one scoring hook), ``types`` (``PairScores``,
``Ranked``), ``checks`` (input checks), ``scoring`` (blanks, cache, windows around one call),
``ranking`` (order, fuse, threshold, ``top_n``), ``score_cache``, ``fusion``, ``windows`` and
``errors``. Nothing here imports a model library.
"""
