"""One module per subcommand: its typer signature and the glue from options to core to render.

Each module defines NAME, HELP and `command(...)`, and imports nothing heavy at module level.
"""
