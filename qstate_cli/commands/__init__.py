"""The commands, one group per module; ``register_all`` adds them to the app."""

from __future__ import annotations

import typer

from . import doctor, edit, live, read, shell, transfer, write


def register_all(app: typer.Typer) -> None:
    for module in (read, write, transfer, live, edit, shell, doctor):
        module.register(app)
