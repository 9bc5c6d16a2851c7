"""Terminal output: Rich tables for people, JSON for scripts. The one place numbers and times become text.

Every report formats through these helpers, so one figure reads the same everywhere:

- USDC (notional, fees, PnL, volume): to the cent, `money.ROUNDING` (half-even), never "-0.00".
- Prices: to the market's tick (0.01 -> 2 decimals, 0.001 -> 3). Prices the venue quoted or filled
  at are on the tick and print exactly; derived prices (average cost, a book midpoint) get one more
  decimal, so a mid of 0.605 between 0.60 and 0.61 is not rounded onto either side.
- Shares: `money.SIZE_PLACES` fixed decimals.
- Times: `2026-12-01 07:31:12Z` (UTC); `local=True` gives the machine's zone with its offset.

JSON (`print_json`) never rounds: Decimals become their exact strings, times stay ISO 8601.
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.text import Text

from pmbot.money import SIZE_PLACES, USDC_PLACES, fmt, round_to, tick_places

DASH = "–"


def stdout() -> Console:
    # Piped to a file or a pager, Rich would squeeze tables into 80 columns; keep rows whole instead.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 0) or 180
    return Console(highlight=False, soft_wrap=False, width=width)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    """One line on stderr that a person reads and a script's stdout never sees."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def note(message: str) -> None:
    """An informational line on stderr (keeps stdout clean for --json)."""
    print(message, file=sys.stderr, flush=True)


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return fmt(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_json(data: Any) -> None:
    """JSON on stdout. Decimals become exact strings ("0.97"), never floats."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")
    sys.stdout.flush()


# ----------------------------------------------------------------------------------- numbers


def usdc(value: Decimal | None) -> str:
    """A USDC amount to the cent: 0.13125 -> 0.13, 24.905 -> 24.90 (half-even), -0.001 -> 0.00."""
    if value is None:
        return DASH
    return f"{round_to(value, USDC_PLACES):f}"


def pnl(value: Decimal | None, places: int = USDC_PLACES) -> Text:
    """Signed USDC, green/red. The sign follows the printed figure, so +0.00 never appears."""
    if value is None:
        return Text(DASH, style="dim")
    shown = round_to(value, places)
    text = f"{shown:f}"
    if shown > 0:
        return Text("+" + text, style="green")
    if shown < 0:
        return Text(text, style="red")
    return Text(text)


def shares(value: Decimal | None) -> str:
    if value is None:
        return DASH
    return f"{round_to(value, SIZE_PLACES):f}"


def price(value: Decimal | None, tick: Decimal | None = None) -> str:
    """A price the venue quoted or filled at, to the market's tick (0.6 -> 0.60 at tick 0.01).

    Never rounded: a price finer than the tick (an old market's, or a tick that changed) keeps its
    digits rather than printing a price that did not happen."""
    if value is None:
        return DASH
    places = tick_places(tick)
    text = fmt(value)
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(places, '0')}" if places else text


def mean_price(value: Decimal | None, tick: Decimal | None = None) -> str:
    """A derived price (average cost, midpoint): the tick's decimals plus one, rounded."""
    if value is None:
        return DASH
    return f"{round_to(value, tick_places(tick) + 1):f}"


def percent(ratio: Decimal | None, places: int = 1) -> str:
    if ratio is None:
        return DASH
    return f"{round_to(ratio * 100, places):f}%"


# ------------------------------------------------------------------------------------- times


def when(ms: int | None, *, local: bool = False) -> str:
    """Epoch ms -> `2026-12-01 07:31:12Z` (UTC), or the local zone with its offset."""
    if ms is None:
        return DASH
    t = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if local:
        return t.astimezone().strftime("%Y-%m-%d %H:%M:%S%z")
    return t.strftime("%Y-%m-%d %H:%M:%SZ")


# -------------------------------------------------------------------------------------- words


def mode(dry_run: bool) -> Text:
    return Text("dry-run", style="cyan") if dry_run else Text("LIVE", style="bold magenta")


def short(token_id: str, width: int = 12) -> str:
    return token_id if len(token_id) <= width else f"{token_id[:6]}…{token_id[-5:]}"


# C0 and C1 control characters and DEL (ESC starts terminal escape sequences), plus the bidi overrides
# that reorder what a reader sees. Line breaks and tabs become spaces: one venue string stays one cell.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_BREAKS = re.compile(r"[\t\n\r\x0b\x0c\u2028\u2029]+")


def clean(text: object) -> str:
    """Venue text (questions, profile names, outcomes) with control characters removed, as a str.
    For JSON-free places that are not Rich-rendered; tables and lines should use `plain`."""
    if text is None:
        return ""
    return _CONTROL.sub("", _BREAKS.sub(" ", str(text)))


def plain(text: object, style: str = "") -> Text:
    """Venue text as a Rich Text: never parsed as markup (`Will [/dim] close` prints as written, a
    `[link=…]` stays visible text) and never carrying a terminal escape (control characters stripped)."""
    return Text(clean(text), style=style)
