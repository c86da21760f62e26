"""`python -m tui` runs the incidex command."""

from tui.cli import main

main()
