"""Vectors: embedders, the text that is embedded, the FAISS index and its snapshot, search.

Invariants: only PII-scrubbed text is embedded; every vector is stored in the database with its
embedder's name and dimension, so the index can always be rebuilt from it; the index never
mixes embedders; the in-memory index catches up with the database before every search, so a
search sees every committed save; the snapshot on disk is a cache, rewritten in the background.
"""
