"""Market identity under two protocols: which ids a market trades under and what an id says by itself.

Protocol V1 markets (CTF ERC-1155 tokens, CTFExchangeV2 / NegRisk V2, EIP-712 domain "2") trade
`clobTokenIds`: keccak-derived 256-bit numbers. Protocol V2 markets (ExchangeV3, domain "3") trade
`positionIds`, which are structured: byte 0 is the module (1 binary, 2 neg-risk, 3 combos), bits
40..103 are always zero, the last byte is the outcome index, and bytes 0..30 are the market's
31-byte condition id. A V1 token id has those 64 bits zero with probability 2^-64, so the id alone
tells the protocol (polymarket-client `_internal/protocol.py` `is_v2_position_id` uses the same test).

Gamma gives V2 condition ids in the 31-byte form; the CLOB, the WebSockets and the Data API want the
32-byte form (the 31 bytes + `00`) and answer 404/400 to the short one: `condition_id()` is the one
normaliser. Stdlib only: this module is on the CLI's import path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final

from pmbot.errors import InputError

UINT256_MAX: Final = (1 << 256) - 1
V2_RESERVED_MASK: Final = ((1 << 64) - 1) << 40
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_DECIMAL = re.compile(r"^[0-9]{1,78}$")


class Protocol(StrEnum):
    V1 = "v1"  # CTF tokens: CTFExchangeV2 / NegRisk CTFExchangeV2, domain "2"
    V2 = "v2"  # position ids: ExchangeV3, domain "3"


class Module(IntEnum):
    BINARY = 1
    NEG_RISK = 2
    COMBOS = 3


@dataclass(frozen=True, slots=True)
class PositionInfo:
    """What a V2 position id says about itself."""

    module: Module
    condition_id: str  # 32-byte form, lowercase 0x + 64 hex
    outcome_index: int


def is_v2_position_id(token_id: str | int) -> bool:
    """True for an id in the Protocol V2 position-id namespace (decimal text or int)."""
    try:
        value = token_id if isinstance(token_id, int) else int(token_id)
    except ValueError:
        return False
    return 0 <= value <= UINT256_MAX and value & V2_RESERVED_MASK == 0


def protocol_of(token_id: str | int) -> Protocol:
    return Protocol.V2 if is_v2_position_id(token_id) else Protocol.V1


def decode_position_id(token_id: str | int) -> PositionInfo | None:
    """Module, market and outcome of a V2 position id; None for a V1 token id or an unknown module."""
    if not is_v2_position_id(token_id):
        return None
    value = int(token_id)
    raw = value.to_bytes(32, "big")
    try:
        module = Module(raw[0])
    except ValueError:
        return None
    return PositionInfo(module=module, condition_id="0x" + raw[:31].hex() + "00", outcome_index=raw[31])


def condition_id(value: str) -> str:
    """The 32-byte condition id (lowercase) the CLOB, WebSockets and Data API want.

    Accepts the 32-byte form and Gamma's 31-byte V2 form (`0x` + 62 hex, first byte a module);
    anything else is an InputError."""
    text = value.strip()
    if _HEX.match(text):
        body = text[2:].lower()
        if len(body) == 64:
            return "0x" + body
        if len(body) == 62 and int(body[:2], 16) in (Module.BINARY, Module.NEG_RISK, Module.COMBOS):
            return "0x" + body + "00"
    raise InputError(
        f"{value[:80]!r} is not a condition id",
        hint="a condition id is 0x + 64 hex digits (Gamma's 31-byte V2 form, 0x + 62, is accepted too)",
    )


def pad_condition_id(value: str) -> str:
    """Gamma's 31-byte V2 condition id → the 32-byte form; anything else unchanged (for URL paths,
    where the venue's 404 says more about a bad id than we could)."""
    try:
        return condition_id(value)
    except InputError:
        return value


def check_token_id(token_id: str) -> str:
    """A token id or V2 position id as the CLOB writes it (decimal text); InputError otherwise.

    A hex string is refused with a line that says what it looks like: a 31- or 32-byte hex value
    where a token is expected is almost always a condition id pasted into the wrong place."""
    text = token_id.strip()
    if _HEX.match(text) and (len(text) - 2 + 1) // 2 in (31, 32):
        raise InputError(
            f"{text[:80]!r} looks like a condition id ({(len(text) - 1) // 2} bytes), not a token id",
            hint="token ids are decimal numbers: `pmbot markets` lists them",
        )
    if not _DECIMAL.match(text) or int(text) > UINT256_MAX:
        raise InputError(
            f"{token_id[:80]!r} is not a token id (a decimal number of up to 78 digits, below 2^256)",
            hint="`pmbot markets` lists token ids",
        )
    # A small number (module byte 0) passes: the venue answers "no such book", which says it better.
    return text


def check_orderable_token_id(token_id: str) -> str:
    """check_token_id, and refuse combos positions: pmbot does not trade them (they settle by RFQ)."""
    text = check_token_id(token_id)
    info = decode_position_id(text)
    if info is not None and info.module is Module.COMBOS:
        raise InputError(
            f"{render_id(text)} is a combos position (Protocol V2 module 3): pmbot does not trade combos",
            hint="choose a binary or neg-risk market's token from `pmbot markets`",
        )
    return text


def render_id(token_id: str) -> str:
    return token_id if len(token_id) <= 24 else token_id[:10] + "…" + token_id[-8:]


def market_protocol(version: object, *, has_position_ids: bool) -> Protocol:
    """Gamma's market `version` → Protocol. Unknown versions are refused (raises ValueError).

    A missing version is V1 only when the object has no `positionIds` (every market recorded before
    Protocol V2, 2026-10-05); with positionIds and no version the outcome ids are ambiguous: refused."""
    if version is None or version == "":
        if has_position_ids:
            raise ValueError("market has positionIds but no `version`: cannot tell which ids trade")
        return Protocol.V1
    if version in ("v1", "v2"):
        return Protocol(version)
    raise ValueError(f"unknown market version {str(version)[:20]!r} (expected v1 or v2)")
