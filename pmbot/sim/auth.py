"""API keys and the L1 / L2 header checks.

Creds are deterministic per (address, nonce) so a test can derive them without a round trip, and
`derive-api-key` works even before `api-key` was called (a fresh sim has no history to derive from).
The checks are the sim's own (eth_account for L1 in pmbot.sim.verify, stdlib hmac for L2), never
pmbot.polymarket.auth: a wrong header from pmbot's client fails here instead of agreeing with itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from eth_hash.auto import keccak
from eth_utils import is_address, to_checksum_address

from pmbot.sim import ids
from pmbot.sim.verify import SignatureError, recover_clob_auth

L1_HEADERS = ("POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP", "POLY_NONCE")
L2_HEADERS = ("POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP", "POLY_API_KEY", "POLY_PASSPHRASE")


def expected_hmac(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    """What the venue computes (polymarket-client's _internal/hmac.py): URL-safe base64 of
    HMAC-SHA256(b64decode(secret), timestamp + METHOD + path + body), the body as sent."""
    raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    message = f"{timestamp}{method}{path}{body}".encode()
    return base64.urlsafe_b64encode(hmac.new(raw, message, hashlib.sha256).digest()).decode("ascii")


class AuthFailedError(Exception):
    """401 from the venue; the message is the body's `error`."""


@dataclass(frozen=True)
class ApiKey:
    key: str
    secret: str
    passphrase: str
    address: str  # checksummed EOA that owns the key

    def creds(self) -> dict[str, str]:
        return {"apiKey": self.key, "secret": self.secret, "passphrase": self.passphrase}


class ApiKeys:
    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._by_key: dict[str, ApiKey] = {}

    def derive(self, address: str, nonce: int = 0) -> ApiKey:
        """The creds of (address, nonce); registers them so L2 calls with them are accepted."""
        addr = to_checksum_address(address)
        raw = keccak(f"pmbot-sim|{self._seed}|secret|{addr}|{nonce}".encode())
        k = ApiKey(
            key=ids.uuid(self._seed, "apikey", addr, nonce),
            secret=base64.urlsafe_b64encode(raw).decode(),
            passphrase=keccak(raw).hex()[:64],
            address=addr,
        )
        self._by_key[k.key] = k
        return k

    def keys_of(self, address: str) -> list[str]:
        return [k.key for k in self._by_key.values() if k.address.lower() == address.lower()]

    def revoke(self, key: str) -> None:
        """DELETE /auth/api-key: L2 calls with it are refused until it is derived again."""
        self._by_key.pop(key, None)

    def get(self, key: str) -> ApiKey | None:
        return self._by_key.get(key)

    def check_l1(self, headers: Mapping[str, str]) -> tuple[str, int]:
        """(address, nonce) of a valid L1 request, else AuthFailedError."""
        if any(not headers.get(h) for h in ("POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP")):
            raise AuthFailedError("Invalid L1 Request headers")
        address = headers["POLY_ADDRESS"]
        try:
            nonce = int(headers.get("POLY_NONCE") or "0")
        except ValueError:
            raise AuthFailedError("Invalid L1 Request headers") from None
        if not is_address(address):
            raise AuthFailedError("Invalid L1 Request headers")
        try:
            signer = recover_clob_auth(
                to_checksum_address(address), headers["POLY_TIMESTAMP"], nonce, headers["POLY_SIGNATURE"]
            )
        except SignatureError:
            raise AuthFailedError("Invalid L1 Request headers") from None
        if signer.lower() != address.lower():
            raise AuthFailedError("Invalid L1 Request headers")
        return to_checksum_address(address), nonce

    def check_l2(self, headers: Mapping[str, str], method: str, path: str, body: str) -> ApiKey:
        """The key of a valid L2 request: all five headers, known key, matching passphrase, address and HMAC."""
        if any(not headers.get(h) for h in L2_HEADERS):
            raise AuthFailedError("Unauthorized/Invalid api key")
        key = self._by_key.get(headers["POLY_API_KEY"])
        if key is None or not hmac.compare_digest(key.passphrase, headers["POLY_PASSPHRASE"]):
            raise AuthFailedError("Unauthorized/Invalid api key")
        if headers["POLY_ADDRESS"].lower() != key.address.lower():
            raise AuthFailedError("Unauthorized/Invalid api key")
        expected = expected_hmac(key.secret, headers["POLY_TIMESTAMP"], method.upper(), path, body)
        if not hmac.compare_digest(expected, headers["POLY_SIGNATURE"]):
            raise AuthFailedError("Unauthorized/Invalid api key")
        return key
