"""incidex's faces: the Textual app and the command line (which never imports textual)."""
