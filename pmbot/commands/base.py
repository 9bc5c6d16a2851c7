"""What every `pmbot` command shares: help that reads like a normal CLI, and usage errors found while parsing.

`Typer` here is typer.Typer with pmbot's conventions built in, so that each command module only declares
its parameters:

- plain Click help (no Rich panels): flags show no `<bool>` value, `--open / --closed` is one row,
  arguments are `SIDE TOKEN_ID` in the usage line and in the Arguments section;
- a bare group (`pmbot`, `pmbot sim`, `pmbot config`) prints its help on stderr and exits 2, Click's
  convention for `no_args_is_help` since Click 8.2, implemented here so it does not depend on which
  Click (the separate package or the copy typer ≥ 0.29 vendors) is underneath;
- a bool flag pair given both ways (`--open --closed`, `--dry-run --live`) is a usage error instead of
  "the last one wins".

Only public typer/Click API is used at run time (`TyperCommand`, `TyperGroup`, `Context.fail`,
`Context.exit`, `HelpFormatter`), so the same code works whether typer raises its own or Click's classes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    import asyncio

    from pydantic import SecretStr
    from typer._click import Context, HelpFormatter, Parameter

    from pmbot.config import Settings

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

# `--help` first: Click's "Try 'pmbot trades --help' for help." names the first one.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["--help", "-h"]}


def _argument_label(param: Parameter) -> str:
    """`SIDE`, `[LIMIT]`, `TOKEN_ID...`: Click's classic argument label."""
    label = param.metavar or (param.name or "").upper()
    if param.nargs != 1:
        label += "..."
    return label if param.required else f"[{label}]"


def _argument_help(param: Parameter) -> str:
    text = str(getattr(param, "help", None) or "")
    extra = []
    default = param.default
    if not param.required and default not in (None, (), []) and getattr(param, "show_default", True):
        extra.append(f"default: {default}")
    if param.required:
        extra.append("required")
    return f"{text}  [{'; '.join(extra)}]" if extra else text


def _both_ways(param: Parameter, tokens: Sequence[str]) -> tuple[str, str] | None:
    """For a `--on/--off` flag: the two spellings if both were given, else None."""
    if not getattr(param, "is_flag", False) or not getattr(param, "secondary_opts", None):
        return None
    on = next((t for t in tokens if t in param.opts), None)
    off = next((t for t in tokens if t in param.secondary_opts), None)
    return (on, off) if on and off else None


def _with_context(error: Exception, ctx: Context) -> None:
    """Click's parser raises some usage errors without a context (`--limit` with no value): attach ours,
    so that they show the usage line and "Try … --help" like every other usage error."""
    if getattr(error, "ctx", False) is None and callable(getattr(error, "show", None)):
        error.ctx = ctx  # type: ignore[attr-defined]
        error.cmd = ctx.command  # type: ignore[attr-defined]


class Command(TyperCommand):
    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_argument_label(param))
        return pieces

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            if getattr(param, "hidden", False):
                continue
            if param.param_type_name == "argument":
                args.append((_argument_label(param).strip("[]"), _argument_help(param)))
            elif (record := param.get_help_record(ctx)) is not None:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        # Only tokens before "--" are options; after it everything is an argument. Parsing consumes the
        # list, and it goes first so that `--help` still wins over a contradiction.
        tokens = list(args[: args.index("--")] if "--" in args else args)
        try:
            rest = super().parse_args(ctx, args)
        except Exception as e:
            _with_context(e, ctx)
            raise
        for param in self.get_params(ctx):
            if both := _both_ways(param, tokens):
                ctx.fail(f"{both[0]} and {both[1]} cannot be used together: give one or neither")
        return rest


class Group(TyperGroup):
    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            # No command: the help is the answer, but nothing was done, so it is an error (exit 2) and
            # goes to stderr; `pmbot --help` prints the same on stdout and exits 0.
            typer.echo(ctx.get_help(), err=True)
            ctx.exit(2)
        try:
            return super().parse_args(ctx, args)
        except Exception as e:
            _with_context(e, ctx)
            raise

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        # Click cuts each summary to the width left on the line ("…, mark,..."): give the whole first
        # sentence and let the formatter wrap it.
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class Typer(typer.Typer):
    """typer.Typer with pmbot's CLI conventions (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("add_completion", False)
        kwargs.setdefault("rich_markup_mode", None)  # plain Click help: see the module docstring
        kwargs.setdefault("pretty_exceptions_enable", False)  # never print locals: they hold keys
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(**kwargs)

    def command(self, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
        kwargs.setdefault("cls", Command)
        return super().command(name, **kwargs)


# ----------------------------------------------------------------- parameter checks
# Each is a typer callback: it runs while the command line is parsed, before any command body, so a bad
# value is a Click usage error (usage line, "Try … --help", exit 2) and nothing has been opened or written.
# The callback returns the text unchanged: command bodies keep their `str` parameters and parse them.


def checked(parse: Callable[[str], object]) -> Callable[[Any], Any]:
    """A callback that accepts a value when `parse(value)` does; a PmbotError from it is a usage error."""
    from pmbot.errors import PmbotError

    def callback(value: Any) -> Any:
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is None:
                continue
            try:
                parse(item)
            except PmbotError as e:
                raise typer.BadParameter(e.one_line()) from None
        return value

    return callback


def _not_blank(text: str) -> None:
    from pmbot.errors import InputError

    if not text.strip():
        raise InputError("must not be empty")


def _positive_duration(text: str) -> None:
    from pmbot.errors import InputError
    from pmbot.timeutil import parse_duration

    if parse_duration(text).total_seconds() <= 0:
        raise InputError(f"must be longer than 0s, got {text!r}")


def _since(text: str) -> None:
    from pmbot.timeutil import parse_since

    parse_since(text)


def _duration(text: str) -> None:
    from pmbot.timeutil import parse_duration

    parse_duration(text)


# Far above any risk limit, far below what 6-decimal micro-units in a signed 64-bit column can hold.
MAX_SHARES = 1_000_000_000


def _decimal(text: str, what: str) -> Any:
    from decimal import Decimal, InvalidOperation

    from pmbot.errors import InputError

    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InputError(f"{what} must be a decimal number, got {text!r}") from None
    if not value.is_finite():
        raise InputError(f"{what} must be a decimal number, got {text!r}")
    return value


def _six_places(value: Any, what: str, text: str) -> None:
    """At most 6 decimal places: the store's and the chain's unit. Only for a value already in range
    (quantize needs the digits to fit the context's precision)."""
    from decimal import Decimal

    from pmbot.errors import InputError

    if value != value.quantize(Decimal("0.000001")):
        raise InputError(f"{what} has more than 6 decimal places: {text}")


def _price(text: str) -> None:
    from pmbot.errors import InputError

    price = _decimal(text, "price")
    if not 0 < price < 1:
        raise InputError(f"price must be between 0 and 1 (exclusive), got {text}")
    _six_places(price, "price", text)


def _shares(text: str) -> None:
    from pmbot.errors import InputError

    size = _decimal(text, "size")
    if size <= 0:
        raise InputError(f"size must be a positive number of shares, got {text}")
    if size > MAX_SHARES:
        raise InputError(f"size must be at most {MAX_SHARES} shares, got {text}")
    _six_places(size, "size", text)


def _token_id(text: str) -> None:
    from pmbot.lookup import check_token_id

    check_token_id(text)


def choice(*values: str) -> Callable[[Any], Any]:
    """A case-insensitive choice; the callback returns the canonical spelling.

    A callback rather than `Literal`/`Enum`: typer ≥ 0.29 words those errors as "Value error, 'x' is not
    one of …", and older typer does not take `Literal` at all."""

    def callback(value: Any) -> Any:
        if value is None:
            return value
        for v in values:
            if str(value).casefold() == v.casefold():
                return v
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(repr(v) for v in values)}.")

    return callback


def finite(value: Any) -> Any:
    """Floats: NaN passes a min/max check in some Click versions (every comparison is false)."""
    import math

    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, got {value}")
    return value


not_blank = checked(_not_blank)
duration = checked(_duration)
positive_duration = checked(_positive_duration)
since = checked(_since)
price = checked(_price)
shares = checked(_shares)
token_id = checked(_token_id)


# ------------------------------------------------------------------------------- Ctrl-C


def _leave_now() -> None:
    import os

    os.write(2, b"interrupted\n")
    os._exit(130)  # committed writes are durable (SQLite WAL, synchronous=FULL); pending orders reconcile


def check_live(settings: Settings) -> SecretStr:
    """What `--live` needs, refused before the confirmation prompt rather than after it: a wallet key (returned,
    for the prompt's wallet), secure endpoints, and the event loop the settings name (uvloop asked for and
    missing)."""
    from pmbot import event_loop
    from pmbot.config import require_secure_endpoints
    from pmbot.errors import ConfigError

    if settings.private_key is None:
        raise ConfigError("--live needs a wallet key", hint="set PMBOT_PRIVATE_KEY in the environment or .env")
    require_secure_endpoints(settings)
    event_loop.loop_factory(settings.event_loop)
    return settings.private_key


def run_trading(main: Coroutine[Any, Any, T], settings: Settings) -> T:
    """`asyncio.run(main)` on the settings' event loop (`event_loop`: uvloop unless told otherwise, see
    pmbot.event_loop): the commands that place orders. Their own SIGINT/SIGTERM handling is inside `main`
    (`stop_on_signals`)."""
    from pmbot import event_loop

    return event_loop.run(main, settings.event_loop)


def run(main: Coroutine[Any, Any, T], *, settings: Settings | None = None) -> T:
    """`asyncio.run(main)`, with one difference: a second Ctrl-C while the first is being handled ends
    the process at once ("interrupted", exit 130). With `settings`, on their event loop (as `run_trading`).

    asyncio.run turns the first Ctrl-C into a cancellation of `main` (its `finally` blocks run), and the
    second into a KeyboardInterrupt raised wherever the loop happens to be, which can leave httpx/anyio
    cancel scopes half-exited: a traceback, "unexpected error", or a loop that never finishes cleaning up.
    """
    import asyncio
    import signal

    task: asyncio.Task[T] | None = None
    interrupts = 0

    async def body() -> T:
        nonlocal task
        task = asyncio.current_task()
        return await main

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            _leave_now()
        if task is None or task.done():
            raise KeyboardInterrupt
        task.cancel()
        loop.call_soon_threadsafe(lambda: None)  # wake the loop if it sits in select()

    factory = None
    if settings is not None:
        from pmbot.event_loop import loop_for

        factory = loop_for(main, settings.event_loop)
    with asyncio.Runner(loop_factory=factory) as runner:
        loop = runner.get_loop()
        try:
            previous = signal.signal(signal.SIGINT, on_sigint)
        except ValueError:  # not the main thread: plain asyncio
            return runner.run(body())
        try:
            return runner.run(body())
        except asyncio.CancelledError:
            if interrupts:
                raise KeyboardInterrupt from None
            raise
        finally:
            # Runner's clean-up (cancel what is left, close the loop) still runs under on_sigint
            runner.close()
            signal.signal(signal.SIGINT, previous)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (inside the running loop): a long-running command stops cleanly,
    flushing its records, instead of being torn down by KeyboardInterrupt mid-write."""
    import asyncio
    import contextlib
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or no signals here
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    return stop
