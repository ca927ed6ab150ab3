"""matplotlib Figures (Agg) for the commands; built here, never shown."""
