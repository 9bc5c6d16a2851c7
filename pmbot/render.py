"""Terminal output: Rich tables for people, JSON for scripts. Money is printed from Decimal, exactly."""

from __future__ import annotations

import json
import os
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
