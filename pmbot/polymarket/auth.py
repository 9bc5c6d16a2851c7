"""CLOB authentication headers.

L1 (a wallet signature over the EIP-712 `ClobAuth` message) creates or derives the API key; L2
(HMAC-SHA256 with the API secret over timestamp + METHOD + path + body) signs every trading request.
Both are re-derived from polymarket-client 0.14 (the unified official SDK, Polymarket/py-sdk):
`polymarket/_internal/l1_auth.py` (typed data), `_internal/actions/auth.py` (`build_l1_auth_headers`),
`_internal/hmac.py` and `clients/secure.py` (`_make_l2_header_resolver_sync`).
tests/test_auth_headers.py proves the headers byte-identical to the SDK's. The SDK is a dev
dependency only: nothing here imports it. The L2 path is stdlib only (it runs on every order); L1
imports eth_account (~1 s) inside `L1Signer`, never on the CLI's import path.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from functools import lru_cache

from pmbot.errors import AuthError
from pmbot.polymarket.models import ApiCreds

Clock = Callable[[], float]

# polymarket/_internal/l1_auth.py: the ClobAuth domain has no verifyingContract. pmbot/sim/verify.py spells
# the same struct out on its own, on purpose: the sim checks this code rather than sharing it.
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"
_CLOB_AUTH_TYPES = {
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
}


def clob_auth_typed_data(address: str, chain_id: int, timestamp: int, nonce: int) -> dict[str, object]:
    """The full EIP-712 message an L1 header signs (the timestamp is signed as a decimal string)."""
    return {
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": chain_id},
        "types": _CLOB_AUTH_TYPES,
        "primaryType": "ClobAuth",
        "message": {"address": address, "timestamp": str(timestamp), "nonce": nonce, "message": CLOB_AUTH_MESSAGE},
    }


class L1Signer:
    """Signs ClobAuth messages with the wallet key. The key lives only inside the eth_account account."""

    def __init__(self, private_key: str, chain_id: int, clock: Clock) -> None:
        from eth_account import Account

        try:
            self._account = Account.from_key(private_key)
        except Exception:  # the library's message could echo the key: say nothing of it
            raise AuthError("the configured private key is not a valid secp256k1 key") from None
        self._chain_id = chain_id
        self._clock = clock
        self.address: str = self._account.address

    def __repr__(self) -> str:
        return f"L1Signer(address={self.address})"

    def headers(self, nonce: int = 0, timestamp: int | None = None) -> dict[str, str]:
        """POLY_* headers for POST /auth/api-key and GET /auth/derive-api-key; `timestamp` in seconds
        (the clock's when None)."""
        ts = int(self._clock()) if timestamp is None else timestamp
        typed = clob_auth_typed_data(self.address, self._chain_id, ts, nonce)
        signature = self._account.sign_typed_data(full_message=typed).signature.hex()
        # Key order as the SDK's build_l1_auth_headers; hexbytes >= 1 drops the 0x, older keeps it.
        return {
            "POLY_ADDRESS": self.address,
            "POLY_NONCE": str(nonce),
            "POLY_SIGNATURE": signature if signature.startswith("0x") else "0x" + signature,
            "POLY_TIMESTAMP": str(ts),
        }


@lru_cache(maxsize=16)
def _raw_secret(secret: str) -> bytes:
    """The API secret is URL-safe base64, possibly without its padding (the SDK pads it)."""
    try:
        return base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    except (binascii.Error, ValueError):
        raise AuthError("the API secret is not valid base64", hint="derive the API key again") from None


def hmac_signature(secret: str, timestamp: int, method: str, path: str, body: str | None) -> str:
    """URL-safe base64 of HMAC-SHA256(secret, f"{timestamp}{method}{path}{body}"); the body verbatim
    (py-clob-client-v2 also replaced ' with "; the unified SDK does not, nor do we)."""
    message = f"{timestamp}{method}{path}" if body is None else f"{timestamp}{method}{path}{body}"
    # hmac.digest: OpenSSL's one-shot HMAC, the same bytes as hmac.new(...).digest() without the Python
    # HMAC object (its __init__, copy and digest are Python code, slow on a cold order path)
    digest = hmac.digest(_raw_secret(secret), message.encode("utf-8"), "sha256")
    return base64.urlsafe_b64encode(digest).decode("ascii")


def l2_headers(
    address: str, creds: ApiCreds, method: str, path: str, body: str | None, timestamp: int
) -> dict[str, str]:
    """`path` is the request path without the query string (the venue signs only the path); `body`
    the exact text sent. Key order as the SDK's L2 header resolver."""
    return {
        "POLY_ADDRESS": address,
        "POLY_API_KEY": creds.api_key,
        "POLY_PASSPHRASE": creds.passphrase,
        "POLY_SIGNATURE": hmac_signature(creds.secret, timestamp, method.upper(), path, body),
        "POLY_TIMESTAMP": str(timestamp),
    }


def creds_from(raw: object) -> ApiCreds:
    if not isinstance(raw, dict) or not raw.get("apiKey") or not raw.get("secret") or not raw.get("passphrase"):
        raise AuthError("the venue did not return API credentials")
    return ApiCreds(api_key=str(raw["apiKey"]), secret=str(raw["secret"]), passphrase=str(raw["passphrase"]))
