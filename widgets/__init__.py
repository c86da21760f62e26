"""Reusable presentational widgets: they take plain data and never reach for the store."""
