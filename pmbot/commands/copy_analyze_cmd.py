"""`pmbot copy analyze TARGET`: would copying this wallet have paid?"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds `analyze` to the `copy` group."""
