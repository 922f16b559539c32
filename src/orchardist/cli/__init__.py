"""The `orchardist` command (typer + rich)."""
