"""The `pmbot` command. Thin: it parses, asks the App for dependencies, calls one core function, renders.

Keep this module's imports light: `pmbot --help` must not pay for web3, eth_account or
py_clob_client_v2 (about a second each). Commands import heavy parts inside their bodies.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console

from pmbot import __version__
from pmbot.app import App
from pmbot.commands import config_cmd, market_cmds, migrate_cmd, order_cmds, record_cmd, reports, sim_cmd
from pmbot.errors import PmbotError, redact

app = typer.Typer(
    name="pmbot",
    help="Operator toolkit for automated trading on Polymarket. Dry-run unless you say --live.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # never print locals: they hold keys
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pmbot {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="PMBOT_CONFIG", help="TOML settings file.", show_default=False),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", envvar="PMBOT_DEBUG", help="Show tracebacks and debug logs.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Operator toolkit for automated trading on Polymarket."""
    _setup_logging(debug)
    ctx.obj = App(config_file=config, debug=debug)
    ctx.call_on_close(ctx.obj.close)


app.add_typer(config_cmd.app, name="config")
reports.register(app)
sim_cmd.register(app)
market_cmds.register(app)
record_cmd.register(app)
order_cmds.register(app)
migrate_cmd.register(app)


def _setup_logging(debug: bool) -> None:
    from rich.logging import RichHandler

    root_logger = logging.getLogger("pmbot")
    if root_logger.handlers:
        return
    handler = RichHandler(
        console=_stderr_console(), show_path=False, show_time=debug, rich_tracebacks=False, markup=False
    )
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    root_logger.propagate = False


def _stderr_console() -> Console:

    return Console(stderr=True, highlight=False)


def _want_debug(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("PMBOT_DEBUG", "").lower() in ("1", "true", "yes")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn every outcome into an exit code (0 ok, 1 bug, 2 expected error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app(args=args, prog_name="pmbot", standalone_mode=False)
    except PmbotError as e:
        for line in e.lines():
            print(f"error: {line}", file=sys.stderr)
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if _want_debug(args):
            print(redact("".join(traceback.format_exception(e))), file=sys.stderr)
        print(
            redact(f"unexpected error: {type(e).__name__}: {e} (this is a bug; rerun with --debug for a traceback)"),
            file=sys.stderr,
        )
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
