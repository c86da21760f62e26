"""Helpers shared by tests and benchmarks: real local stand-ins for outside services."""
