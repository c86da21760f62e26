"""`python -m tui` runs the incidex command."""

from tui.entry import main

main()
