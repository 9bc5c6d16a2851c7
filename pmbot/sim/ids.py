"""Deterministic identifiers: every id the sim hands out is a hash of the seed and what it names,
so two runs with one seed produce byte-identical markets, tokens and wallets."""

from __future__ import annotations

from eth_hash.auto import keccak

from pmbot.polymarket.signing import checksum_address


def _digest(seed: int, *parts: object) -> bytes:
    return keccak("|".join(["pmbot-sim", str(seed), *map(str, parts)]).encode())


def hex32(seed: int, *parts: object) -> str:
    """0x + 64 hex (condition ids, question ids, tx hashes, order hashes of synthetic orders)."""
    return "0x" + _digest(seed, *parts).hex()


def token_id(seed: int, *parts: object) -> str:
    """A decimal token id with 77 digits, like the CTF position ids the CLOB uses."""
    n = int.from_bytes(_digest(seed, "token", *parts), "big")
    return str(10**76 + n % (9 * 10**76))


def address(seed: int, *parts: object) -> str:
    """An EIP-55 checksummed address."""
    return checksum_address(_digest(seed, "address", *parts)[-20:])


def uuid(seed: int, *parts: object) -> str:
    """A UUID-shaped id (trade ids, API keys)."""
    h = _digest(seed, "uuid", *parts).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def small_int(seed: int, *parts: object, lo: int = 1_000_000, hi: int = 9_999_999) -> int:
    """A stable integer in [lo, hi] (Gamma numeric ids)."""
    return lo + int.from_bytes(_digest(seed, "int", *parts)[:8], "big") % (hi - lo + 1)


def v2_condition_id(seed: int, *parts: object, module: int = 1) -> str:
    """A Protocol V2 condition id (32-byte form): module byte, market bytes with bytes 19..26 zero
    (the position-id namespace: bits 40..103 of every position id are zero), trailing `00`."""
    d = _digest(seed, "v2-condition", *parts)
    raw = bytes([module]) + d[:18] + bytes(8) + d[18:22] + b"\x00"
    return "0x" + raw.hex()


def v2_position_id(condition_id: str, outcome: int) -> str:
    """A V2 position id (decimal): the 32-byte condition id with the outcome index as its last byte."""
    return str(int(condition_id, 16) | outcome)
