"""incidex test suite."""
