"""Balances and allowances as the CLOB sees them: `GET /balance-allowance` (L2, read-only).

The venue answers `{"balance": "<base units>", "allowances": {"<spender>": "<base units>", …}}` (the
official SDK's `models/clob/account.py` BalanceAllowance); 6 decimals for pUSD and for shares alike.
The asset type is chosen by the id: a V1 CTF token is `CONDITIONAL`, a Protocol V2 position id
`CONDITIONAL-V2` (identity.is_v2_position_id), pUSD is `COLLATERAL`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from pmbot.errors import VenueError
from pmbot.polymarket.identity import is_v2_position_id
from pmbot.polymarket.signing import EXCHANGE_V2, EXCHANGE_V3, NEG_RISK_EXCHANGE_V2

if TYPE_CHECKING:
    from pmbot.polymarket.factory import Venue
    from pmbot.polymarket.models import DataPosition
    from pmbot.polymarket.trading import TradingClient

COLLATERAL: Final = "COLLATERAL"
CONDITIONAL: Final = "CONDITIONAL"
CONDITIONAL_V2: Final = "CONDITIONAL-V2"
ASSET_TYPES: Final = (COLLATERAL, CONDITIONAL, CONDITIONAL_V2)
# Protocol V2 approvals go to ExchangeV3 and the PositionManager (docs: protocol-v2-migration).
POSITION_MANAGER: Final = "0x006F54F7f9A22e0000CC2AB60031000000ae9fEF"
# Every contract a trading wallet must have approved, by the name an operator knows it under.
SPENDERS: Final = {
    "CTFExchangeV2": EXCHANGE_V2,
    "NegRisk CTFExchangeV2": NEG_RISK_EXCHANGE_V2,
    "ExchangeV3": EXCHANGE_V3,
    "PositionManager": POSITION_MANAGER,
}
SIGNATURE_TYPES: Final = {0: "EOA", 1: "POLY_PROXY", 2: "POLY_GNOSIS_SAFE", 3: "POLY_1271 deposit wallet"}
_MICRO: Final = Decimal(1_000_000)


def asset_type_of(token_id: str) -> str:
    return CONDITIONAL_V2 if is_v2_position_id(token_id) else CONDITIONAL


@dataclass(frozen=True, slots=True)
class BalanceAllowance:
    asset_type: str
    token_id: str | None
    balance: Decimal  # pUSD or shares, exact
    allowances: dict[str, int] = field(default_factory=dict)  # spender address (lowercase) -> base units

    def missing(self) -> list[str]:
        """Names of the SPENDERS this wallet has not approved (absent or zero allowance)."""
        return [name for name, addr in SPENDERS.items() if self.allowances.get(addr.lower(), 0) <= 0]


def parse_balance_allowance(raw: Any, asset_type: str, token_id: str | None) -> BalanceAllowance:
    what = "GET /balance-allowance"
    if not isinstance(raw, dict):
        raise VenueError(f"{what}: expected an object, got {type(raw).__name__}")
    try:
        balance = Decimal(int(str(raw.get("balance", "0")))) / _MICRO
        allowances = {str(k).lower(): int(str(v)) for k, v in (raw.get("allowances") or {}).items()}
    except (ValueError, TypeError, AttributeError):
        raise VenueError(f"{what}: balance or allowances are not integers in base units") from None
    return BalanceAllowance(asset_type, token_id, balance, allowances)


async def balance_allowance(trading: TradingClient, asset_type: str, token_id: str | None = None) -> BalanceAllowance:
    """One read of the venue's ledger for the configured wallet (signature type decides which address)."""
    if asset_type not in ASSET_TYPES:
        raise VenueError(f"asset type {asset_type!r} is not one of {', '.join(ASSET_TYPES)}")
    params = {"asset_type": asset_type, "token_id": token_id, "signature_type": trading.signer.signature_type}
    raw = await trading._private("GET", "/balance-allowance", params=params, idempotent=True)
    return parse_balance_allowance(raw, asset_type, token_id)


@dataclass(frozen=True, slots=True)
class PositionBalance:
    position: DataPosition
    asset_type: str
    clob_balance: Decimal  # what the CLOB can sell now (the Data API lags the chain by seconds)


@dataclass(frozen=True, slots=True)
class Balances:
    wallet: str  # the address that trades (funder for types 1-3)
    signature_type: int
    collateral: BalanceAllowance
    positions: list[PositionBalance]


async def read_balances(venue: Venue, *, limit: int = 500) -> Balances:
    """pUSD from the CLOB, open positions from the Data API, each position's CLOB balance by asset type."""
    trading = await venue.trading(create_key=False)
    wallet = trading.signer.maker
    collateral, positions = await asyncio.gather(
        balance_allowance(trading, COLLATERAL), venue.data.positions(wallet, limit=limit)
    )
    kinds = [asset_type_of(p.token_id) for p in positions]
    reads = (balance_allowance(trading, k, p.token_id) for k, p in zip(kinds, positions, strict=True))
    clob = await asyncio.gather(*reads)
    rows = [PositionBalance(p, k, c.balance) for p, k, c in zip(positions, kinds, clob, strict=True)]
    return Balances(wallet, trading.signer.signature_type, collateral, rows)
