"""Terminal output: Rich tables for people, JSON for scripts. Money is printed from Decimal, exactly."""

from __future__ import annotations

import json
import os
import re
import sys
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.text import Text

from pmbot.money import fmt


def stdout() -> Console:
    # Piped to a file or a pager, Rich would squeeze tables into 80 columns; keep rows whole instead.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 0) or 180
    return Console(highlight=False, soft_wrap=False, width=width)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return fmt(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_json(data: Any) -> None:
    """JSON on stdout. Decimals become exact strings ("0.97"), never floats."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")
    sys.stdout.flush()


def pnl(value: Decimal | None, places: int = 2) -> Text:
    if value is None:
        return Text("–", style="dim")
    text = fmt(value, places)
    if value > 0:
        return Text("+" + text, style="green")
    if value < 0:
        return Text(text, style="red")
    return Text(text)


def mode(dry_run: bool) -> Text:
    return Text("dry-run", style="cyan") if dry_run else Text("LIVE", style="bold magenta")


def short(token_id: str, width: int = 12) -> str:
    return token_id if len(token_id) <= width else f"{token_id[:6]}…{token_id[-5:]}"


def price(value: Decimal | None) -> str:
    """A price with at least two decimals so columns line up (0.6 → 0.60, 0.955 stays 0.955)."""
    if value is None:
        return "–"
    text = fmt(value)
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


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
