"""The venue's refusals and venue-side cancellations in the user's terms.

POST /order refusals arrive as 400 `{"error": "not enough balance / allowance"}` (py-clob-client issues
287/290, clob-client issue 310), sometimes with the detail `: the balance is not enough -> balance: 0,
order amount: 10000000` (py-sdk issue 101; the SDK's order_response.py maps the phrase to the code
`not_enough_balance`). Orders the venue cancels later carry a status naming why
(`CANCELED_NOT_ENOUGH_BALANCE`, … in the SDK's models/clob/user_events.py KnownUserOrderStatus).
The venue's own words are always kept after the explanation, so nothing is lost."""

from __future__ import annotations

BALANCE_PHRASE = "not enough balance / allowance"

_BALANCE_REASON = (
    "not enough balance / allowance: the wallet lacks the pUSD (BUY) or the outcome shares (SELL) this "
    "order needs once its open orders are counted, or has not approved the exchange contracts"
)

# Venue-side cancellation statuses (plain form, prefix already stripped) → why, for order records.
_STATUS_REASONS = {
    "CANCELED_NOT_ENOUGH_BALANCE": "cancelled by the venue: the wallet's balance no longer covers the order",
    "CANCELED_MARKET_RESOLVED": "cancelled by the venue: the market resolved",
    "CANCELED_MARKET_NOT_FOUND": "cancelled by the venue: the market no longer exists",
    "CANCELED_EXPIRED_ORDER": "cancelled by the venue: the order expired",
    "CANCELED_ORDER_TIMED_OUT": "cancelled by the venue: the order timed out",
    "INVALID": "the venue marked the order invalid",
}


def refusal_code(text: str) -> str | None:
    """A machine code for a known refusal (the SDK's OrderResponseErrorCode spelling), else None."""
    return "not_enough_balance" if BALANCE_PHRASE in text.lower() else None


def explain_refusal(text: str) -> str:
    """`text` (the venue's error) with a clear reason in front when it is a known refusal."""
    if refusal_code(text) == "not_enough_balance" and not text.startswith(_BALANCE_REASON):
        return f"{_BALANCE_REASON} (venue: {text})"
    return text


def status_reason(status: str) -> str | None:
    """Why the venue closed an order, from its status (`CANCELED_NOT_ENOUGH_BALANCE`…); None if plain."""
    s = status.strip().upper().removeprefix("ORDER_STATUS_")
    if s in _STATUS_REASONS:
        return _STATUS_REASONS[s]
    if s.startswith("CANCELED_") and len(s) > len("CANCELED_"):
        return f"cancelled by the venue: {status.strip()[len('CANCELED_') :]}"  # FOK kill reasons are free text
    return None
