"""qstate command line (Typer)."""
