"""Signature checks, done with eth_account's generic EIP-712 encoder: deliberately NOT our fast
signer's code (pmbot.polymarket.signing), so the sim catches a wrong hash in the signer."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
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


def _bytes32(value: str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x") or "0")
    if len(raw) > 32:
        raise SignatureError("bytes32 field too long")
    return raw.rjust(32, b"\0")


def order_digest(order: dict[str, Any], *, neg_risk: bool, chain_id: int = 137) -> bytes:
    """EIP-712 digest of a V2 wire order (= the orderID the CLOB returns)."""
    typed = {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "Order": _ORDER_TYPE},
        "primaryType": "Order",
        "domain": {
            "name": "Polymarket CTF Exchange",
            "version": "2",
            "chainId": chain_id,
            "verifyingContract": NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2,
        },
        "message": {
            "salt": int(order["salt"]),
            "maker": order["maker"],
            "signer": order["signer"],
            "tokenId": int(order["tokenId"]),
            "makerAmount": int(order["makerAmount"]),
            "takerAmount": int(order["takerAmount"]),
            "side": 0 if order["side"] == "BUY" else 1,
            "signatureType": int(order["signatureType"]),
            "timestamp": int(order["timestamp"]),
            "metadata": _bytes32(order.get("metadata") or "0x"),
            "builder": _bytes32(order.get("builder") or "0x"),
        },
    }
    return _hash_eip191_message(encode_typed_data(full_message=typed))


def recover_order_signer(order: dict[str, Any], *, neg_risk: bool) -> tuple[str, str]:
    """(order hash 0x…, recovered checksummed address). Raises SignatureError when unrecoverable."""
    try:
        digest = order_digest(order, neg_risk=neg_risk)
        sig = str(order["signature"])
        if len(sig) != 132:  # 65-byte ECDSA only: ERC-7739 wrapped (type 3) signatures are not supported
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
