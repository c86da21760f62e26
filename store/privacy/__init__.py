"""Privacy: PII found in incident text and replaced by keyed pseudonyms, and the keys.

Invariants: the same value under the same key always gives the same pseudonym (so similarity
survives scrubbing) and nothing else reveals the value; keys live outside the data directory in
files readable by their owner only.
"""
