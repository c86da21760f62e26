"""The database: engine and transactions, tables, migrations, every SELECT and every write.

Invariants: one engine per process, built by make_engine() and passed in (nothing at import
time); every write of one analysis (incident upsert, analysis, embedding row, run metadata) is
one transaction, so after a crash there is all of it or none of it; the schema changes only
through Alembic migrations, which never lose data; timestamps are timezone-aware UTC; foreign
keys hold on SQLite (PRAGMA foreign_keys) and PostgreSQL alike; the store_info row names the
store (a uuid from its creation) and hands out embedding sequence numbers under a lock held to
commit, so they become visible in order.
"""
