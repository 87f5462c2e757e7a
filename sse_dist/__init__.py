"""sse-dist: distributed training of self-supervised speaker embeddings."""
