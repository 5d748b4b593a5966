"""The ``qstate`` console script: the app, started as cheaply as a short run allows.

Importing Typer and qstate creates some 28,000 containers that live as long as
the process. Left to the cyclic garbage collector, they are scanned again and
again while later imports (pydantic's, as Typer dispatches) allocate: ~15 ms of
a 170 ms start-up, paid by every command and every TAB of completion. So the
collector is off while the app is imported, and what the import created is
then frozen (``gc.freeze``: moved where collections never look); commands, the
shell and ``watch`` run with the collector on, as usual.
"""

from __future__ import annotations

import gc
import sys


def entry_point() -> None:
    """The console script (see pyproject.toml)."""
    gc.disable()
    try:
        from .main import run
    finally:
        gc.freeze()
        gc.enable()
    sys.exit(run())
