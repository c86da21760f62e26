"""Vectors: embedders, the text that is embedded, the FAISS index and its snapshot, search.

Invariants: only PII-scrubbed text is embedded; every vector is stored in the database with its
embedder's name and dimension, so the index can always be rebuilt from it; the index never
mixes embedders; the in-memory index catches up with the database before every search, so a
search sees every committed save; the snapshot on disk is a cache, rewritten in the background,
used only when it names this store, its schema revision and a mark the store has reached, and
its bytes match their checksum (else it is rebuilt from the database, with one warning);
unusable vectors are refused at write and left out, with a warning, at load; a slow embedder's
saves (the local model's) leave the vector pending, and fillers (filler.py) write each pending
vector once, a batch a transaction, however many run at once.
"""
