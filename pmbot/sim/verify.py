"""Signature checks, done with eth_account's generic EIP-712 encoder: deliberately NOT our fast
signer's code (pmbot.polymarket.signing), so the sim catches a wrong hash in the signer."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from eth_account import Account
from eth_account._utils.encode_typed_data.encoding_and_hashing import hash_domain, hash_struct
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils import keccak

EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
EXCHANGE_V3 = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"  # Protocol V2 positions, domain "3"
# Protocol V2 position ids have bits 40..103 clear (docs: protocol-v2-migration). Written out here
# rather than imported from pmbot.polymarket so that the sim checks the signer, not itself.
_V2_RESERVED = ((1 << 64) - 1) << 40
POLY_1271 = 3  # deposit wallet: ERC-7739 TypedDataSign wrapper + trailer
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"

_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_ORDER_TYPE = [
    {"name": "salt", "type": "uint256"},
    {"name": "maker", "type": "address"},
    {"name": "signer", "type": "address"},
    {"name": "tokenId", "type": "uint256"},
    {"name": "makerAmount", "type": "uint256"},
    {"name": "takerAmount", "type": "uint256"},
    {"name": "side", "type": "uint8"},
    {"name": "signatureType", "type": "uint8"},
    {"name": "timestamp", "type": "uint256"},
    {"name": "metadata", "type": "bytes32"},
    {"name": "builder", "type": "bytes32"},
]


class SignatureError(ValueError):
    pass


def _bytes32(value: object) -> bytes:
    # "0x", "" and an absent field are zero (the signer zero-fills them); a JSON number, bool, null, list or
    # object is no bytes32 text at all: the venue's decoding refuses it, so does the sim
    if not isinstance(value, str):
        raise SignatureError("bytes32 field is not a hex string")
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) > 32:
        raise SignatureError("bytes32 field too long")
    return raw.rjust(32, b"\0")


def exchange_domain(token_id: int, *, neg_risk: bool, chain_id: int = 137) -> dict[str, Any]:
    """The exchange an order for `token_id` settles on: ExchangeV3 (domain "3") for a V2 position
    id, else CTFExchangeV2 / NegRisk V2 (domain "2")."""
    if token_id & _V2_RESERVED == 0:
        return {
            "name": "Polymarket CTF Exchange",
            "version": "3",
            "chainId": chain_id,
            "verifyingContract": EXCHANGE_V3,
        }
    contract = NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2
    return {"name": "Polymarket CTF Exchange", "version": "2", "chainId": chain_id, "verifyingContract": contract}


def _order_message(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "salt": int(order["salt"]),
        "maker": order["maker"],
        "signer": order["signer"],
        "tokenId": int(order["tokenId"]),
        "makerAmount": int(order["makerAmount"]),
        "takerAmount": int(order["takerAmount"]),
        "side": 0 if order["side"] == "BUY" else 1,
        "signatureType": int(order["signatureType"]),
        "timestamp": int(order["timestamp"]),
        "metadata": _bytes32(order.get("metadata", "0x")),
        "builder": _bytes32(order.get("builder", "0x")),
    }


_ORDER_TYPES = {"Order": _ORDER_TYPE}


def _domain_separator(domain: dict[str, Any]) -> bytes:
    """hashStruct(EIP712Domain) of an `exchange_domain`, cached: there are three per chain, and eth_account's
    hash of one was a third of the sim's time to check a POST /order."""
    return _cached_separator(*domain.items())


@lru_cache(maxsize=64)
def _cached_separator(*fields: tuple[str, Any]) -> bytes:
    return bytes(hash_domain(dict(fields)))


def order_digest(order: dict[str, Any], *, neg_risk: bool, chain_id: int = 137) -> bytes:
    """EIP-712 digest of a wire order (= the orderID the CLOB returns), under the id's exchange:
    keccak(0x19 0x01 ‖ domain separator ‖ hashStruct(Order)), which is what eth_account's
    `encode_typed_data` + `_hash_eip191_message` compute (tests/test_sim_verify_fast.py checks it against them);
    the struct hash is still eth_account's generic encoder, the domain's is cached."""
    separator = _domain_separator(exchange_domain(int(order["tokenId"]), neg_risk=neg_risk, chain_id=chain_id))
    return keccak(b"\x19\x01" + separator + bytes(hash_struct("Order", _ORDER_TYPES, _order_message(order))))


def order_digest_generic(order: dict[str, Any], *, neg_risk: bool, chain_id: int = 137) -> bytes:
    """`order_digest` through eth_account's whole typed-data path (the reference the fast one is tested on)."""
    typed = {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "Order": _ORDER_TYPE},
        "primaryType": "Order",
        "domain": exchange_domain(int(order["tokenId"]), neg_risk=neg_risk, chain_id=chain_id),
        "message": _order_message(order),
    }
    return _hash_eip191_message(encode_typed_data(full_message=typed))


def _deposit_wallet_digest(order: dict[str, Any], *, neg_risk: bool, chain_id: int = 137) -> bytes:
    """ERC-7739 TypedDataSign: the owner signs {contents: Order, DepositWallet domain of the wallet}
    under the exchange's domain (polymarket-client `_internal/actions/orders/typed_data.py`)."""
    typed = {
        "types": {
            "EIP712Domain": _DOMAIN_TYPE,
            "Order": _ORDER_TYPE,
            "TypedDataSign": [
                {"name": "contents", "type": "Order"},
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
                {"name": "salt", "type": "bytes32"},
            ],
        },
        "primaryType": "TypedDataSign",
        "domain": exchange_domain(int(order["tokenId"]), neg_risk=neg_risk, chain_id=chain_id),
        "message": {
            "contents": _order_message(order),
            "name": "DepositWallet",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": order["signer"],
            "salt": b"\0" * 32,
        },
    }
    return _hash_eip191_message(encode_typed_data(full_message=typed))


def _expected_trailer(order: dict[str, Any], *, neg_risk: bool, chain_id: int = 137) -> str:
    """app domain separator ‖ contents (Order struct) hash ‖ Order type string ‖ its length, via
    eth_account's encoder (the separator and struct hash are the two halves of the order digest)."""
    domain = exchange_domain(int(order["tokenId"]), neg_risk=neg_risk, chain_id=chain_id)
    types = {"Order": _ORDER_TYPE}
    contents = hash_struct("Order", types, _order_message(order))
    type_string = (
        "Order(" + ",".join(f"{f['type']} {f['name']}" for f in _ORDER_TYPE) + ")"
    )  # EIP-712 encodeType of Order
    return _domain_separator(domain).hex() + contents.hex() + type_string.encode().hex() + f"{len(type_string):04x}"


def recover_order_signer(order: dict[str, Any], *, neg_risk: bool) -> tuple[str, str]:
    """(order hash 0x…, recovered checksummed address). Raises SignatureError when unrecoverable.

    For a deposit wallet (signatureType 3) the recovered address is the wallet's OWNER key; the
    trailer must match the order. (The real exchange asks the wallet contract, ERC-1271.)"""
    try:
        digest = order_digest(order, neg_risk=neg_risk)
        sig = str(order["signature"])
        if int(order["signatureType"]) == POLY_1271:
            if len(sig) <= 132 or sig[132:].lower() != _expected_trailer(order, neg_risk=neg_risk):
                raise SignatureError("deposit wallet signature trailer does not match the order")
            recovered = Account._recover_hash(_deposit_wallet_digest(order, neg_risk=neg_risk), signature=sig[:132])
        else:
            if len(sig) != 132:
                raise SignatureError("signature must be 65 bytes")
            recovered = Account._recover_hash(digest, signature=sig)
    except SignatureError:
        raise
    except Exception as e:  # eth_account raises several types for garbage input
        raise SignatureError(str(e)) from None
    return "0x" + digest.hex(), recovered


def recover_clob_auth(address: str, timestamp: str, nonce: int, signature: str, chain_id: int = 137) -> str:
    """Address that signed the L1 ClobAuth message (domain ClobAuthDomain/1, no verifyingContract)."""
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "ClobAuth": [
                {"name": "address", "type": "address"},
                {"name": "timestamp", "type": "string"},
                {"name": "nonce", "type": "uint256"},
                {"name": "message", "type": "string"},
            ],
        },
        "primaryType": "ClobAuth",
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": chain_id},
        "message": {"address": address, "timestamp": timestamp, "nonce": nonce, "message": CLOB_AUTH_MESSAGE},
    }
    try:
        return str(Account.recover_message(encode_typed_data(full_message=typed), signature=signature))
    except Exception as e:
        raise SignatureError(str(e)) from None
