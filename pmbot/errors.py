"""The one exception tree.

Every error pmbot expects (bad input, bad config, a venue refusal, a risk breach) is a
`PmbotError`: the CLI prints it as one line on stderr with its hint and exits 2. Anything else
is a bug: exit 1, traceback only with --debug.

Messages must never contain secrets. `redact()` is a second line of defence: config loading
registers secret values, and the CLI passes every message it prints through it.
"""

from __future__ import annotations

import logging
import re

_SECRETS: set[str] = set()
_HEX = re.compile(r"^(0x)?[0-9a-fA-F]+$")


def register_secret(value: str) -> None:
    """Remember a secret so that `redact` scrubs it from anything printed or logged.

    A hex secret (the private key) is also remembered without 0x, in either case, and in decimal:
    an arithmetic error on a key prints it as an integer."""
    if not value or len(value) < 8:
        return
    forms = {value}
    if _HEX.match(value):
        bare = value[2:] if value.startswith("0x") else value
        forms |= {bare, bare.lower(), bare.upper()}
        if len(bare) >= 32:  # long enough to be a key, not a word that happens to be hex
            forms.add(str(int(bare, 16)))
    # Every form obeys the length rule: the decimal of a (silly) key 0x00…01 is "1", and redacting
    # every "1" would garble all output.
    _SECRETS.update(f for f in forms if len(f) >= 8)


def redact(text: str) -> str:
    # Longest first: a secret that contains another must go whole, not leave its tail behind.
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


# A venue that echoes our request headers back (in an error body) must not get them stored or shown.
_POLY_HEADER = re.compile(r"""(POLY[_-][A-Z_-]+)(["']?\s*[:=]\s*["']?)([^"'\s,;&}\]]+)""", re.IGNORECASE)


def scrub_venue_text(text: str, limit: int = 500) -> str:
    """Venue words fit for records and the terminal: POLY_* header values masked, registered secrets
    redacted, and cut to `limit` characters (a venue can answer megabytes)."""
    text = _POLY_HEADER.sub(r"\1\2***", text[: limit * 4])
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RedactingFilter(logging.Filter):
    """On pmbot's log handlers: every record leaves with registered secrets and POLY_* values masked,
    its traceback included (--debug logs exceptions)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub_venue_text(record.getMessage(), limit=100_000)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_venue_text(record.exc_text, limit=1_000_000)
        return True


class PmbotError(Exception):
    """Root of every error pmbot raises on purpose."""

    exit_code = 2
    default_hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def lines(self) -> list[str]:
        """What the CLI prints: normally one line; several only when several keys are wrong."""
        lines = [ln.rstrip(".") for ln in self.message.splitlines() if ln.strip()] or [type(self).__name__]
        if self.hint:
            lines[-1] += f" (hint: {self.hint})"
        return [redact(ln) for ln in lines]

    def one_line(self) -> str:
        return "; ".join(self.lines())


class ConfigError(PmbotError):
    default_hint = "run `pmbot config show` to see every setting and where it came from"


class InputError(PmbotError):
    """A command-line argument or input file the user gave is not acceptable."""


class StoreError(PmbotError):
    default_hint = "check PMBOT_DATABASE_URL and that its directory is writable"


class ServiceUnavailableError(PmbotError):
    """A configured dependency (Redis, PostgreSQL, the venue) cannot be reached."""


class VenueError(PmbotError):
    """The venue (Polymarket or `pmbot sim`) refused a request or answered something unusable."""

    default_hint = "run `pmbot config show` to check the venue URLs; `pmbot sim serve` runs a local venue"

    def __init__(
        self, message: str, *, status: int | None = None, hint: str | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.detail = detail if detail is not None else message  # the venue's own words, for records


class HeartbeatMismatchError(VenueError):
    """POST /v1/heartbeats with a stale id: 400 {"error_msg": "Invalid Heartbeat ID", "heartbeat_id":
    expected} (polymarket-client `OrderHeartbeatMismatchError`). Retry with `expected_id`, which may be
    empty; the refused beat did not refresh the venue's deadline."""

    def __init__(self, message: str, *, expected_id: str, status: int | None = 400) -> None:
        super().__init__(message, status=status)
        self.expected_id = expected_id


class VenueUnavailableError(VenueError, ServiceUnavailableError):
    """Could not reach the venue, or it kept failing (5xx, timeouts) after the read retries."""


class PostOnlyModeError(VenueUnavailableError):
    """The venue is in post-only mode (after its weekly matching-engine restart): 503 with `code:
    "post_only_mode"`. Only post-only orders are taken; a refused order was not placed."""


class RateLimitedError(VenueError):
    """429 from the venue, or our own bucket would have to wait longer than the caller allows."""

    default_hint = "lower the request rate or PMBOT_EXECUTOR__RATE_LIMIT_SAFETY"

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class AuthError(VenueError):
    default_hint = "check PMBOT_PRIVATE_KEY, PMBOT_FUNDER and PMBOT_SIGNATURE_TYPE (`pmbot config check`)"


class NotFoundError(VenueError):
    """An unknown token id, market, slug or user."""

    default_hint = "`pmbot markets` lists current markets and their token ids"


class OrderStateUnknownError(VenueError):
    """POST /order got no answer (timeout, dropped connection): the order may or may not exist.

    Never retry blindly: reconcile through open orders and trades first."""

    default_hint = "the order is recorded as unknown and will be reconciled with the venue"
