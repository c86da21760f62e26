"""`python -m tui` runs the incidex command."""

from tui.save_client import main

main()
