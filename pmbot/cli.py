"""The `pmbot` command. Thin: it parses, asks the App for dependencies, calls one core function, renders.

Keep this module's imports light: `pmbot --help` must not pay for web3, eth_account or
polymarket-client (about a second each). Commands import heavy parts inside their bodies.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import signal
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from rich.console import Console

from pmbot import __version__
from pmbot.app import App
from pmbot.commands import (
    backtest_cmd,
    balance_cmd,
    base,
    config_cmd,
    copy_cmd,
    learn_cmd,
    market_cmds,
    migrate_cmd,
    order_cmds,
    record_cmd,
    reports,
    run_all_cmd,
    settle_cmd,
    sim_cmd,
    snipe_cmd,
)
from pmbot.errors import PmbotError, RedactingFilter, redact, register_secret

app = base.Typer(
    name="pmbot",
    help="Operator toolkit for automated trading on Polymarket. Dry-run unless you say --live.",
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
        typer.Option(
            "--config", "-c", metavar="FILE", envvar="PMBOT_CONFIG", help="TOML settings file.", show_default=False
        ),
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
settle_cmd.register(app)
sim_cmd.register(app)
market_cmds.register(app)
record_cmd.register(app)
order_cmds.register(app)
snipe_cmd.register(app)
backtest_cmd.register(app)
balance_cmd.register(app)
learn_cmd.register(app)
migrate_cmd.register(app)
copy_cmd.register(app)
run_all_cmd.register(app)


def _setup_logging(debug: bool) -> None:
    from rich.logging import RichHandler

    root_logger = logging.getLogger("pmbot")
    if root_logger.handlers:
        return
    handler = RichHandler(
        console=_stderr_console(), show_path=False, show_time=debug, rich_tracebacks=False, markup=False
    )
    handler.addFilter(RedactingFilter())  # log lines carry venue words and exceptions: never secrets
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    root_logger.propagate = False


def _stderr_console() -> Console:

    return Console(stderr=True, highlight=False)


def _want_debug(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("PMBOT_DEBUG", "").lower() in ("1", "true", "yes")


def _click_classes() -> tuple[tuple[type[BaseException], ...], ...]:
    """(Exit, Abort, ClickException) classes of whichever Click the installed typer raises.

    typer ≥ 0.29 vendors its own copy of Click (its ClickException derives from typer.TyperException);
    older typer re-exports the separate `click` package. Both are covered without importing `click`: a
    Click class can only be raised if its module is already loaded.
    """
    exits: list[type[BaseException]] = [typer.Exit]
    aborts: list[type[BaseException]] = [typer.Abort]
    errors: list[type[BaseException]] = [c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"]
    if (typer_exception := getattr(typer, "TyperException", None)) is not None:
        errors.append(typer_exception)
    if (click := sys.modules.get("click")) is not None:
        exits.append(click.exceptions.Exit)
        aborts.append(click.exceptions.Abort)
        errors.append(click.exceptions.ClickException)
    return tuple(exits), tuple(aborts), tuple(errors)


_KEY_SHAPED = re.compile(r"\b(0x)?[0-9a-fA-F]{64}\b")


def _show_click_error(e: BaseException) -> int:
    """Click's own message (usage line, "Try 'pmbot … --help'", the error), secrets redacted."""
    buf = io.StringIO()
    show = getattr(e, "show", None)
    if callable(show):
        show(file=buf)
    else:
        buf.write(f"Error: {getattr(e, 'format_message', lambda: str(e))()}\n")
    # Usage errors echo what was typed: scrub anything shaped like a private key (32 bytes of hex) too.
    sys.stderr.write(_KEY_SHAPED.sub("***", redact(buf.getvalue())))
    code = getattr(e, "exit_code", 2)
    return code if isinstance(code, int) else 2


def interrupted() -> int:
    """Ctrl-C: one line, exit 130. A second Ctrl-C while we finish must not print a traceback either."""
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("interrupted", file=sys.stderr)
    return 130


def _run(args: list[str]) -> Any:
    # make_context + invoke is what Click's main() does, minus its handling of errors and Ctrl-C, which
    # differs between typer versions (typer 0.29 turns Ctrl-C into a silent Exit(130)): we map them below.
    command = typer.main.get_command(app)
    with command.make_context("pmbot", list(args)) as ctx:  # a copy: parsing consumes the list
        return command.invoke(ctx)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn every outcome into an exit code (see the README's exit-code table):
    0 done, 1 bug, 2 bad input or settings, 3 an order was not placed, 130 interrupted."""
    args = list(sys.argv[1:] if argv is None else argv)
    # Known before the settings load (a usage error comes first): what `redact` must scrub.
    register_secret(os.environ.get("PMBOT_PRIVATE_KEY", "").strip())
    exits, aborts, click_errors = _click_classes()
    try:
        result = _run(args)
    except KeyboardInterrupt:
        return interrupted()
    except PmbotError as e:
        for line in e.lines():
            print(f"error: {line}", file=sys.stderr)
        return e.exit_code
    except exits as e:
        code = getattr(e, "exit_code", 0)
        return code if isinstance(code, int) else 0
    except aborts as e:
        # Click's prompt turns Ctrl-C and end of input into Abort (the cause is kept in __context__), and
        # so does a "no" to a confirmation. The first two leave the cursor after the prompt: new line.
        if isinstance(e.__context__, KeyboardInterrupt):
            print(file=sys.stderr)
            return interrupted()
        if isinstance(e.__context__, EOFError):
            print(file=sys.stderr)
            print(
                "error: no answer to the confirmation (input closed): nothing was done (hint: --yes)", file=sys.stderr
            )
            return 2
        print("aborted: nothing was done", file=sys.stderr)
        return 130
    except click_errors as e:
        return _show_click_error(e)
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
