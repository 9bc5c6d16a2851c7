"""Money and share quantities: Decimal in code, 6-decimal integer micro-units in storage.

USDC and Polymarket's conditional tokens both have 6 decimals on chain, so micro-units are the
venue's own exact unit: nothing representable on chain is lost, and SUM() in SQL stays exact.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

MICRO = 1_000_000
_QUANTUM = Decimal("0.000001")
_MICRO_D = Decimal(MICRO)

# The one rounding rule for money shown to people. Half-even (banker's) because the store already
# rounds every notional and cost to micro-units half-even: one rule end to end, and no upward bias
# in a column of rounded figures. JSON never rounds: it carries the exact stored value.
ROUNDING = ROUND_HALF_EVEN
USDC_PLACES = 2  # tables show USDC to the cent
SIZE_PLACES = 2  # tables show shares with two decimals (the venue's order-size precision)
DEFAULT_TICK = Decimal("0.01")  # most Polymarket markets; used when the market's tick is unknown


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Parse money from text or int. Floats are refused: they cannot hold 0.1 exactly."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass a str or Decimal")
    if isinstance(value, Decimal):
        result = value
    else:
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def to_micro(value: Decimal | int | str, *, exact: bool = True) -> int:
    """Decimal -> micro-units. With exact=True a value finer than 1e-6 is an error, not rounded."""
    if type(value) is Decimal:
        # Hot path (every fill): an exact value needs no quantize. NaN/inf fall through to the errors below.
        try:
            scaled = value * _MICRO_D
            as_int = int(scaled)
            if as_int == scaled:
                return as_int
        except (ValueError, OverflowError):
            pass
    d = to_decimal(value)
    q = d.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    if exact and q != d:
        raise ValueError(f"{d} has more than 6 decimal places")
    return int(q * MICRO)


def from_micro(micro: int) -> Decimal:
    return Decimal(micro).scaleb(-6)


def mul_micro(a_micro: int, b_micro: int) -> int:
    """(a * b) in micro-units, half-even rounded: price x size -> notional."""
    return div_round(a_micro * b_micro, MICRO)


def div_round(numerator: int, denominator: int) -> int:
    """Integer division rounded half-to-even (banker's), exact for any sign."""
    if denominator == 0:
        raise ZeroDivisionError("division by zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    q, r = divmod(numerator, denominator)
    twice = 2 * r
    if twice > denominator or (twice == denominator and q % 2 == 1):
        q += 1
    return q


def fmt(value: Decimal | None, places: int | None = None) -> str:
    """Plain text for a Decimal: no exponent, no trailing zeros unless `places` asks for them."""
    if value is None:
        return ""
    if places is not None:
        return f"{round_to(value, places):f}"
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def round_to(value: Decimal, places: int) -> Decimal:
    """`value` to `places` decimals with the one display rounding rule (never a negative zero)."""
    q = value.quantize(Decimal(1).scaleb(-places), rounding=ROUNDING)
    return q.copy_abs() if q.is_zero() else q


def tick_places(tick: Decimal | None) -> int:
    """Decimals of a tick size: 0.01 -> 2, 0.001 -> 3 (DEFAULT_TICK when unknown)."""
    t = (tick if tick is not None and tick > 0 else DEFAULT_TICK).normalize()
    return max(0, -int(t.as_tuple().exponent))
