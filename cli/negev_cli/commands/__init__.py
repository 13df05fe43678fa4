"""One module per ``negev`` command."""
