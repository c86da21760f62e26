"""Synthetic demo data: incidents and analyses from templates, the same for a given seed.

Invariants: record i depends only on (seed, i), never on how many are made, so runs with
--offset in several processes make the same store as one run.
"""
