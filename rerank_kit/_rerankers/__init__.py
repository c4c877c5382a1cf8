"""One module per reranker family; each implements the core protocol's scoring hook."""
