"""Backups that are proven to restore: the journal, snapshots, restore to a time, the drill.

- journal.py: the logical log, one JSON Lines file a day under `backups/journal/`; every
  saved analysis is a line with its own checksum, on disk before its commit (see there).
- snapshots.py: consistent copies of the database and the vector index with a manifest,
  under `backups/snapshots/<id>/`, listed only once whole.
- restore.py: the newest snapshot before a time plus the journal replayed up to it, into a
  new directory or database; drill.py proves it on a scratch copy.
- pg_wal.py: on PostgreSQL whose server archives WAL where incidex reads it, snapshots are
  pg_basebackups and a restore replays the archive to the time in a scratch server.
- entries.py: what a journal line holds (an analysis, or another write) and its replay.
- mirrors.py, s3.py: further copies in other folders and in S3-compatible buckets.
- codec.py: the seam where encryption plugs in (journal bodies and snapshot frames).

Invariants: nothing here writes to the live store's database; files and folders are
owner-only; anything damaged is reported with its file, line or checksum, never replayed.
"""
