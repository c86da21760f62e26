"""Ingest: reading --save input, validating and preparing records, pricing, the save stream.

Invariants: a bad record becomes one error event naming the record and the field, and never
stops or half-writes the others (however deep, large or strange it is); records are chunked
once (iter_save), a chunk saved when full or when the input pauses; memory stays bounded by
INCIDEX_MAX_DOCUMENT_BYTES; ids and content hashes are computed before any I/O; prices are
fixed at the call's time.
"""
