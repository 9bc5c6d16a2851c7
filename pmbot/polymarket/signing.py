"""Fast CLOB V2 order signing, byte-identical to polymarket-client's, the official SDK
(tests/test_protocol_v2_signing.py proves it).

The SDK builds a typed-data dict and runs eth_account's generic EIP-712 encoder for every
order (~1-4 ms). The V2 Order struct is fixed, so its hash is just one keccak over eleven 32-byte
words with precomputed type hash and domain separators, and the signature one recoverable ECDSA
sign (libsecp256k1 via coincurve, RFC 6979 nonces and low-s, exactly what eth_account produces).

Amounts use Decimal, not the library's float helpers: its `round_down(0.57, 2)` gives 0.56.

Two protocols, chosen by the id (pmbot.polymarket.identity): V1 CTF tokens sign for CTFExchangeV2 or
NegRisk CTFExchangeV2 with EIP-712 domain version "2"; Protocol V2 position ids sign for ExchangeV3
(one contract for binary and neg-risk) with domain version "3". Same Order struct and body.

Signature type 3 (deposit wallet, POLY_1271) follows polymarket-client 0.14
(`_internal/actions/orders/typed_data.py`): the order's `signer` is the deposit wallet, the owner key
signs the ERC-7739 `TypedDataSign{contents: Order, DepositWallet domain}` under the exchange's domain,
and the signature carries a trailer: app domain separator ‖ order struct hash ‖ the Order type
string ‖ its length (2 bytes). tests/test_protocol_v2_signing.py proves byte identity with the SDK.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Final

from coincurve import PrivateKey

from pmbot.errors import InputError
from pmbot.polymarket.identity import V2_RESERVED_MASK, Module
from pmbot.polymarket.keccak import keccak256 as keccak

CHAIN_ID_POLYGON: Final = 137
# docs.polymarket.com/resources/contracts; same as py_clob_client_v2.config for chain 137.
EXCHANGE_V2: Final = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2: Final = "0xe2222d279d744050d28e00520010520000310F59"
# Protocol V2 positions, binary and neg-risk alike (docs: protocol-v2-migration; SDK exchange_v3).
EXCHANGE_V3: Final = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"
SIGNATURE_TYPE_DEPOSIT_WALLET: Final = 3
ZERO_BYTES32: Final = "0x" + "00" * 32

ORDER_TYPE_STRING: Final = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,uint256 takerAmount,"
    "uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)"
)
ORDER_TYPEHASH: Final = keccak(ORDER_TYPE_STRING.encode())
_DOMAIN_TYPEHASH: Final = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
# ERC-7739 nested typed data (deposit wallets): referenced types follow the primary type (EIP-712 encodeType).
_TYPED_DATA_SIGN_TYPEHASH: Final = keccak(
    b"TypedDataSign(Order contents,string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"
    + ORDER_TYPE_STRING.encode()
)
_DEPOSIT_WALLET_NAME_HASH: Final = keccak(b"DepositWallet")
_DEPOSIT_WALLET_VERSION_HASH: Final = keccak(b"1")
_ORDER_TYPE_TRAILER: Final = ORDER_TYPE_STRING.encode().hex() + f"{len(ORDER_TYPE_STRING):04x}"

SIDE_BUY, SIDE_SELL = 0, 1
MIN_ORDER_SIZE: Final = Decimal(5)  # shares; the CLOB rejects smaller orders

# Decimal places per tick size: (price, size, amount). Same table as py-clob-client-v2's ROUNDING_CONFIG.
ROUNDING: Final[dict[str, tuple[int, int, int]]] = {
    "0.1": (1, 2, 3),
    "0.01": (2, 2, 4),
    "0.005": (3, 2, 5),
    "0.0025": (4, 2, 6),
    "0.001": (3, 2, 5),
    "0.0001": (4, 2, 6),
}
_MICRO = Decimal(1_000_000)
_CENT = Decimal("0.01")
_SALT_BITS = 40  # 2**40 ms is 2004-11-03: below every order's timestamp, as the library's salts are
_SALTS_PER_READ = 256
# A forked child must not reuse salts its parent drew: the fork bumps this, and a pool drawn before is dropped.
_forks = [0]
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))
_ZERO_WORD = bytes(32)


def domain_separator(exchange: str, chain_id: int = CHAIN_ID_POLYGON, version: str = "2") -> bytes:
    return keccak(
        _DOMAIN_TYPEHASH
        + keccak(b"Polymarket CTF Exchange")
        + keccak(version.encode())
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(exchange[2:])
    )


def checksum_address(raw20: bytes) -> str:
    hexaddr = raw20.hex()
    digest = keccak(hexaddr.encode()).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hexaddr))


@dataclass(frozen=True, slots=True)
class Amounts:
    maker_amount: int  # micro-units: USDC paid (BUY) or shares given (SELL)
    taker_amount: int  # micro-units: shares received (BUY) or USDC received (SELL)


def _check_price(price: Decimal, tick_size: str) -> None:
    if tick_size not in ROUNDING:
        raise InputError(f"unknown tick size {tick_size}", hint=f"one of {', '.join(ROUNDING)}")
    tick = Decimal(tick_size)
    if price % tick != 0 or not tick <= price <= 1 - tick:
        raise InputError(f"price {price} is not on the {tick_size} tick grid between {tick} and {1 - tick}")


def limit_amounts(side: int, price: Decimal, size: Decimal, tick_size: str) -> Amounts:
    """maker/taker amounts of a limit (GTC/GTD) order, as the CLOB expects them."""
    _check_price(price, tick_size)
    size_dp = ROUNDING[tick_size][1]
    shares = size.quantize(Decimal(1).scaleb(-size_dp), rounding=ROUND_DOWN)
    if shares < MIN_ORDER_SIZE:
        raise InputError(f"size {size} is below the minimum order size of {MIN_ORDER_SIZE} shares")
    # Exact: an on-grid price has <= price places, so shares * price has <= the tick's amount places
    # (the library's float code needs a re-rounding guard here; Decimal does not).
    usdc = shares * price
    shares_micro, usdc_micro = int(shares * _MICRO), int(usdc * _MICRO)
    if side == SIDE_BUY:
        return Amounts(usdc_micro, shares_micro)
    return Amounts(shares_micro, usdc_micro)


def buy_spend(size: Decimal, price: Decimal) -> Decimal:
    """What a marketable (FOK/FAK) BUY of `size` shares at worst price `price` spends: size × price
    rounded down to the cent. The venue has no share-sized market BUY: it spends the signed USDC amount
    at prices no worse than `price`, so at a better price it buys more shares for the same USDC (never
    more USDC). The gate, the paper exchange and the `pmbot order` prompt all use this one rule."""
    return (size * price).quantize(_CENT, rounding=ROUND_DOWN)


def marketable_buy_terms(side: str, order_type: str, size: Decimal, price: Decimal) -> str | None:
    """What a marketable BUY will do, for a person about to confirm it (None for any other order)."""
    if side != "BUY" or order_type not in ("FOK", "FAK"):
        return None
    spend = buy_spend(size, price)
    at_limit = (spend / price).quantize(_CENT, rounding=ROUND_DOWN)
    return (
        f"BUY {order_type} spending up to {spend:f} USDC plus taker fees at prices up to {price.normalize():f}"
        f" ({at_limit.normalize():f} shares if all at {price.normalize():f}, more at better prices)"
    )


def market_amounts(side: int, amount: Decimal, price: Decimal, tick_size: str) -> Amounts:
    """Amounts of a marketable FOK/FAK order. `amount` is USDC to spend (BUY) or shares to sell (SELL).

    The CLOB takes at most 2 decimals on the maker side and 4 on the taker side of a market BUY
    (py-clob-client-v2 issue 99); shares are rounded down so the implied price never beats `price`.
    """
    _check_price(price, tick_size)
    maker = amount.quantize(_CENT, rounding=ROUND_DOWN)
    if maker <= 0:
        raise InputError(f"amount {amount} is too small")
    if side == SIDE_BUY:
        taker = (maker / price).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
    else:
        taker = (maker * price).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
    return Amounts(int(maker * _MICRO), int(taker * _MICRO))


@dataclass(frozen=True, slots=True)
class SignedOrder:
    salt: int
    maker: str
    signer: str
    token_id: str
    maker_amount: int
    taker_amount: int
    side: int
    signature_type: int
    timestamp_ms: int
    expiration: int
    metadata: str
    builder: str
    signature: str
    order_hash: str

    def to_wire(self, owner: str, order_type: str, *, post_only: bool = False, defer_exec: bool = False) -> dict:
        """The POST /order body, field for field as py-clob-client-v2's order_to_json_v2 builds it."""
        return {
            "order": {
                "salt": self.salt,
                "maker": self.maker,
                "signer": self.signer,
                "tokenId": self.token_id,
                "makerAmount": str(self.maker_amount),
                "takerAmount": str(self.taker_amount),
                "side": "BUY" if self.side == SIDE_BUY else "SELL",
                "expiration": str(self.expiration),
                "signatureType": self.signature_type,
                "timestamp": str(self.timestamp_ms),
                "metadata": self.metadata,
                "builder": self.builder,
                "signature": self.signature,
            },
            "owner": owner,
            "orderType": order_type,
            "deferExec": defer_exec,
            "postOnly": post_only,
        }


class OrderSigner:
    """Signs V2 orders for one wallet. Holds the key in libsecp256k1; never exposes or prints it."""

    __slots__ = (
        "_domains",
        "_key",
        "_parties",
        "_salts",
        "_salts_fork",
        "_side_words",
        "_wallet_word",
        "address",
        "chain_id",
        "maker",
        "order_signer",
        "signature_type",
    )

    def __init__(
        self,
        private_key: str,
        *,
        chain_id: int = CHAIN_ID_POLYGON,
        signature_type: int = 0,
        funder: str | None = None,
        exchange: str = EXCHANGE_V2,
        neg_risk_exchange: str = NEG_RISK_EXCHANGE_V2,
        exchange_v3: str = EXCHANGE_V3,
    ) -> None:
        if signature_type not in (0, 1, 2, SIGNATURE_TYPE_DEPOSIT_WALLET):
            raise InputError(
                f"signature type {signature_type} is not supported by the order signer",
                hint="use 0 (EOA), 1 (proxy), 2 (Safe) or 3 (deposit wallet)",
            )
        if signature_type == SIGNATURE_TYPE_DEPOSIT_WALLET and not funder:
            raise InputError(
                "signature type 3 (deposit wallet) needs the deposit wallet's address",
                hint="set PMBOT_FUNDER to the deposit wallet address",
            )
        try:
            self._key = PrivateKey(bytes.fromhex(private_key.removeprefix("0x")))
        except ValueError:
            raise InputError("the private key is not a valid secp256k1 key") from None
        public = self._key.public_key.format(compressed=False)[1:]
        self.address = checksum_address(keccak(public)[-20:])
        self.maker = funder or self.address
        self.signature_type = signature_type
        self.chain_id = chain_id
        # The order's `signer` field: the deposit wallet itself for type 3 (it validates by ERC-1271),
        # the key's address otherwise. L2 auth always uses `address` (the key that owns the API key).
        self.order_signer = self.maker if signature_type == SIGNATURE_TYPE_DEPOSIT_WALLET else self.address
        # (V2 position?, neg-risk?) → domain separator. ExchangeV3 serves both kinds of V2 market.
        v3 = domain_separator(exchange_v3, chain_id, version="3")
        self._domains = {
            (False, False): domain_separator(exchange, chain_id),
            (False, True): domain_separator(neg_risk_exchange, chain_id),
            (True, False): v3,
            (True, True): v3,
        }
        # The struct's words that are the same for every order of this signer (maker, signer; side with
        # signatureType), built once: an order is signed with cold caches, where each step counts.
        self._parties = _address_word(self.maker) + _address_word(self.order_signer)
        self._side_words = {
            s: s.to_bytes(32, "big") + signature_type.to_bytes(32, "big") for s in (SIDE_BUY, SIDE_SELL)
        }
        self._salts: list[int] = []
        self._salts_fork = _forks[0]
        # For the ERC-7739 wrapper: hash of the DepositWallet domain fields that follow `contents`.
        self._wallet_word = (
            _DEPOSIT_WALLET_NAME_HASH
            + _DEPOSIT_WALLET_VERSION_HASH
            + chain_id.to_bytes(32, "big")
            + _address_word(self.order_signer)
            + bytes(32)
        )

    def __repr__(self) -> str:
        return f"OrderSigner(address={self.address}, signature_type={self.signature_type})"

    def _salt(self, timestamp_ms: int) -> int:
        """A uniform random salt below 2**40, so below the order's timestamp, as the library's salts are.
        Drawn from the OS's CSPRNG 256 at a time: a read costs ~20 µs with cold caches (measured), which
        one order in 256 pays, not each. Only uniqueness matters: the salt is public, in the order."""
        if timestamp_ms <= 1 << _SALT_BITS:  # a timestamp before 2004 (tests): the exact range
            return secrets.randbelow(timestamp_ms or 1 << _SALT_BITS)
        salts = self._salts
        if self._salts_fork != _forks[0]:
            salts.clear()
            self._salts_fork = _forks[0]
        while True:
            # pop, refill on empty: a `salts` check before the pop would race another thread's pop (one
            # signer shared by threads); list.pop is atomic, so no salt is handed out twice
            try:
                return salts.pop()
            except IndexError:
                raw = os.urandom(8 * _SALTS_PER_READ)
                mask = (1 << _SALT_BITS) - 1
                salts.extend(int.from_bytes(raw[i : i + 8], "big") & mask for i in range(0, len(raw), 8))

    def sign(
        self,
        token_id: str,
        side: int,
        amounts: Amounts,
        *,
        neg_risk: bool = False,
        salt: int | None = None,
        timestamp_ms: int,
        expiration: int = 0,
        metadata: str = ZERO_BYTES32,
        builder: str = ZERO_BYTES32,
    ) -> SignedOrder:
        if salt is None:
            salt = self._salt(timestamp_ms)
        token = int(token_id)
        v2_position = token & V2_RESERVED_MASK == 0  # identity.is_v2_position_id, inlined: hot path
        if v2_position and token >> 248 == Module.COMBOS:
            raise InputError("combos positions (Protocol V2 module 3) are not traded by pmbot")
        side_words = self._side_words.get(side)
        if side_words is None:
            raise InputError(f"side {side} is neither BUY ({SIDE_BUY}) nor SELL ({SIDE_SELL})")
        struct_hash = keccak(
            b"".join(
                (
                    ORDER_TYPEHASH,
                    salt.to_bytes(32, "big"),
                    self._parties,  # maker, signer
                    token.to_bytes(32, "big"),
                    amounts.maker_amount.to_bytes(32, "big"),
                    amounts.taker_amount.to_bytes(32, "big"),
                    side_words,  # side, signatureType
                    timestamp_ms.to_bytes(32, "big"),
                    _ZERO_WORD if metadata == ZERO_BYTES32 else bytes.fromhex(metadata[2:].zfill(64)),
                    _ZERO_WORD if builder == ZERO_BYTES32 else bytes.fromhex(builder[2:].zfill(64)),
                )
            )
        )
        domain = self._domains[(v2_position, neg_risk)]
        digest = keccak(b"\x19\x01" + domain + struct_hash)  # the order hash (orderID) in every case
        if self.signature_type == SIGNATURE_TYPE_DEPOSIT_WALLET:
            wrapped = keccak(_TYPED_DATA_SIGN_TYPEHASH + struct_hash + self._wallet_word)
            sig = self._key.sign_recoverable(keccak(b"\x19\x01" + domain + wrapped), hasher=None)
            trailer = domain.hex() + struct_hash.hex() + _ORDER_TYPE_TRAILER
            signature = "0x" + sig[:64].hex() + f"{sig[64] + 27:02x}" + trailer
        else:
            sig = self._key.sign_recoverable(digest, hasher=None)  # r || s || recovery id
            signature = "0x" + sig[:64].hex() + f"{sig[64] + 27:02x}"
        return SignedOrder(
            salt=salt,
            maker=self.maker,
            signer=self.order_signer,
            token_id=token_id,
            maker_amount=amounts.maker_amount,
            taker_amount=amounts.taker_amount,
            side=side,
            signature_type=self.signature_type,
            timestamp_ms=timestamp_ms,
            expiration=expiration,
            metadata=metadata,
            builder=builder,
            signature=signature,
            order_hash="0x" + digest.hex(),
        )


def _address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])
