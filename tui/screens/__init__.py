"""The screens of the incidex app, one per file."""
