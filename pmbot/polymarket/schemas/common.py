"""Small field readers shared by the REST and stream parsers: lenient about form (string or number,
seconds or ms), strict about sense. The venue is not trusted: every number is finite and of a sane
magnitude, every book / fill price is inside (0, 1), every size positive, and anything else (NaN,
Infinity, 1e999999999, a 5000-digit timestamp, 200 000 nested brackets) is a VenueError, never an
arithmetic or recursion error escaping as a bug."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pmbot.errors import VenueError
from pmbot.store.models import Side

# Anything below this is epoch seconds; ms timestamps passed it in 1973. Polymarket mixes both,
# sometimes in one message (created_at seconds, timestamp ms).
_MS_THRESHOLD = 100_000_000_000
_MAX_MS = 100_000_000_000_000  # year 5138: later is no timestamp
_MAX_NUMBER_TEXT = 64  # characters: longer is not a price, size or amount
MAX_ABS = 10**15  # no amount, size or price anywhere on Polymarket comes near
_MAX_ADJUSTED = 15  # the same bound as a leading-digit exponent: |d| < 10^15
MIN_EXP = -30  # nor this many decimals
MAX_SHARES = Decimal("1e10")  # one level, one fill: $10 billion of outcome tokens is a broken venue


_JSON_RECURSION_LIMIT = 2000  # frames: the caller's stack plus ~1900 levels of JSON, a few hundred kB of C stack


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _finite_float(text: str) -> float:
    if len(text) > _MAX_NUMBER_TEXT:
        raise ValueError("number too long")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} overflows")
    return value


# Built once: json.loads with hooks builds a decoder (and its scanner) on every call, which costs as much
# as decoding a small frame. (The hooks are defined above.)
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)


def loads_venue(data: str | bytes, what: str) -> Any:
    """JSON from the venue, or VenueError. NaN / Infinity / overflowing numbers are refused (the JSON
    spec has none of them), and so are deep nesting and huge integers.

    Nesting: json's C decoder recurses once per bracket and stops only at the recursion limit, which
    py_ecc (imported with eth_account) raises to 100 000, far past what the C stack holds: 200 000
    nested brackets then kill the process with SIGSEGV. So the limit is lowered while decoding."""
    saved = sys.getrecursionlimit()
    lowered = saved > _JSON_RECURSION_LIMIT
    if lowered:
        try:
            sys.setrecursionlimit(_JSON_RECURSION_LIMIT)
        except RecursionError:  # already deeper than that: keep the limit, the stack is the judge
            lowered = False
    try:
        if isinstance(data, bytes | bytearray):  # as json.loads reads bytes
            data = data.decode(json.detect_encoding(data), "surrogatepass")
        if data.startswith("\ufeff"):  # as json.loads refuses a BOM
            raise ValueError("Unexpected UTF-8 BOM")
        return _DECODER.decode(data)
    except RecursionError:
        raise VenueError(f"{what}: answer nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as e:  # JSONDecodeError and UnicodeDecodeError too
        text = data[:60].decode(errors="replace") if isinstance(data, bytes) else data[:60]
        raise VenueError(f"{what}: answer is not valid JSON ({str(e)[:60]}; starts {text!r})") from None
    finally:
        if lowered:
            sys.setrecursionlimit(saved)


def dec(value: Any) -> Decimal | None:
    """A Decimal from a string or JSON number; None for null / "" (the venue's "no value")."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise VenueError(f"expected a number, got {type(value).__name__}")
    if isinstance(value, int):
        if not -MAX_ABS < value < MAX_ABS:  # before str(): a 5000-digit int cannot even be printed
            raise VenueError("number out of range")
        return Decimal(value)
    # str() first: a float like 0.5699998232997013 keeps exactly the digits the venue sent.
    text = str(value)
    if len(text) > _MAX_NUMBER_TEXT:
        raise VenueError(f"expected a number, got {len(text)} characters")
    try:
        d = Decimal(text)
    except (InvalidOperation, ValueError):
        raise VenueError(f"expected a number, got {str(value)[:40]!r}") from None
    # adjusted() is the exponent of the leading digit; unlike abs() or a comparison with MAX_ABS it
    # involves no context arithmetic, which would itself overflow on 1e999999999.
    if not d.is_finite() or (d and not MIN_EXP <= d.adjusted() < _MAX_ADJUSTED):
        raise VenueError(f"number out of range: {str(value)[:40]!r}")
    return d if d else Decimal(0)  # 0E+999999999 is zero, without its exponent


def dec0(value: Any) -> Decimal:
    d = dec(value)
    return d if d is not None else Decimal(0)


def epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds from seconds or ms (int or string), or an ISO / "YYYY-MM-DD HH:MM:SS+00" date."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise VenueError(f"unreadable timestamp {value!r}")
    if isinstance(value, int | float):
        if not abs(value) < _MAX_MS:  # also NaN and infinities
            raise VenueError(f"timestamp out of range: {str(value)[:30]}")
        n = int(value)
    else:
        text = str(value).strip()
        if len(text) > _MAX_NUMBER_TEXT:
            raise VenueError(f"unreadable timestamp ({len(text)} characters)")
        if text.lstrip("-").isdigit():
            n = int(text)
        else:
            return iso_ms(text)
    ms = n if abs(n) >= _MS_THRESHOLD else n * 1000
    if abs(ms) >= _MAX_MS:
        raise VenueError(f"timestamp out of range: {str(value)[:30]}")
    return ms


def iso_ms(text: str | None) -> int | None:
    if not text:
        return None
    t = text.strip().replace(" ", "T", 1)
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    elif t.endswith("+00") or t.endswith("-00"):
        t += ":00"
    if len(t) > _MAX_NUMBER_TEXT:
        raise VenueError(f"unreadable date ({len(t)} characters)")
    try:
        dt = datetime.fromisoformat(t)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        raise VenueError(f"unreadable date {text!r}") from None


def json_list(value: Any) -> list[Any]:
    """Gamma's clobTokenIds / outcomes / outcomePrices are JSON *strings* holding arrays; newer
    fields (positionIds) are real arrays. Accept both."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if not isinstance(value, str | bytes):
        raise VenueError(f"expected a JSON array, got {type(value).__name__}")
    parsed = loads_venue(value, "JSON-encoded array")
    if not isinstance(parsed, list):
        raise VenueError(f"expected a JSON array, got {str(value)[:60]!r}")
    return parsed


def venue_status(value: Any, prefix: str) -> str:
    """An order or trade status in its plain upper-case form. REST answers carry the venue's raw
    constants (`ORDER_STATUS_LIVE`, `TRADE_STATUS_FAILED`), streams the plain values (`LIVE`,
    `FAILED`); the official SDK (models/clob/account.py `_normalize_trade_status`) strips the prefix
    the same way. Normalised here so no caller compares against two spellings."""
    text = str(value or "").strip().upper()
    return text[len(prefix) :] if text.startswith(prefix) else text


ORDER_STATUS_PREFIX, TRADE_STATUS_PREFIX = "ORDER_STATUS_", "TRADE_STATUS_"


def side(value: Any) -> Side:
    text = str(value or "").upper()
    if text in ("BUY", "0"):
        return Side.BUY
    if text in ("SELL", "1"):
        return Side.SELL
    raise VenueError(f"unknown side {value!r}")


def opt_side(value: Any) -> Side | None:
    return side(value) if value not in (None, "") else None


def req(obj: Mapping[str, Any], key: str, what: str) -> Any:
    """A field that must be present and non-empty."""
    value = obj.get(key)
    if value is None or value == "":
        raise VenueError(f"{what}: missing {key!r}")
    return value


def opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


# ----------------------------------------------------------------------------- checked quantities


def price01(value: Any, what: str) -> Decimal:
    """A book or fill price: strictly between 0 and 1 (an outcome token is worth 0..1 USDC)."""
    p = dec(value)
    if p is None or not 0 < p < 1:
        raise VenueError(f"{what}: price {str(value)[:30]!r} is not between 0 and 1")
    return p


def opt_price01(value: Any, what: str) -> Decimal | None:
    """A price that may be absent, and may be 0 or 1 (a resolved market's mark)."""
    p = dec(value)
    if p is not None and not 0 <= p <= 1:
        raise VenueError(f"{what}: price {str(value)[:30]!r} is not between 0 and 1")
    return p


def shares(value: Any, what: str, *, allow_zero: bool = False) -> Decimal:
    """A size in shares: positive (or zero where the wire uses 0 for "level removed") and sane."""
    s = dec0(value)
    if s < 0 or (s == 0 and not allow_zero) or s > MAX_SHARES:
        raise VenueError(f"{what}: size {str(value)[:30]!r} is not a sane positive number of shares")
    return s


def nonneg(value: Any, what: str) -> Decimal:
    d = dec0(value)
    if d < 0:
        raise VenueError(f"{what}: {str(value)[:30]!r} is negative")
    return d


def small_int(value: Any, what: str, *, default: int, lo: int = 0, hi: int = 10_000) -> int:
    """A small integer field (fee exponent, bps): within [lo, hi], from a number or a string."""
    d = dec(value)
    if d is None:
        return default
    if d != d.to_integral_value() or not lo <= d <= hi:
        raise VenueError(f"{what}: {str(value)[:30]!r} is not an integer in [{lo}, {hi}]")
    return int(d)
