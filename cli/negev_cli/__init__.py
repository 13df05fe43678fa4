"""The ``negev`` command line (Typer). Entry point: :func:`negev_cli.app.main`."""
