"""Backups of saved analyses, outside the database.

Invariants: a backup file's name is built from sanitised ids only; files are written whole
(temp file, flush, rename) and are on disk before the save that wrote them returns.
"""
