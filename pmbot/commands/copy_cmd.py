"""`pmbot copy`: whale mirroring (`pmbot copy --target NAME`), `copy report` and `copy analyze`.

The group only; the commands live in their own modules (copy_run_cmd: the mirroring run and `report`;
copy_analyze_cmd: `analyze`), each with a `register(app)`."""

from __future__ import annotations

import typer

from pmbot.commands import base, copy_analyze_cmd, copy_run_cmd

app = base.Typer(
    name="copy",
    help="Mirror a wallet's fills (dry-run unless --live), report on it, or analyze whether it is worth copying.",
)


def register(root: typer.Typer) -> None:
    copy_run_cmd.register(app)
    copy_analyze_cmd.register(app)
    root.add_typer(app, name="copy")
