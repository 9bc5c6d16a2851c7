"""`pmbot copy --target NAME` (the mirroring run) and `pmbot copy report`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the group's callback (the run) and `report` to the `copy` group."""
