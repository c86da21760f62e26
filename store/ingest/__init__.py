"""Ingest: reading --save input, validating and preparing records, pricing, the save stream.

Invariants: a bad record becomes one error event naming the record and the field, and never
stops or half-writes the others; records are chunked once (iter_save); ids and content hashes
are computed before any I/O; prices are fixed at the call's time.
"""
