"""CLOB authentication headers.

L1 (wallet signature over EIP-712 `ClobAuth`) creates or derives the API key; L2 (HMAC-SHA256 with
the API secret over timestamp + METHOD + path + body) signs every trading request. Both come from
py-clob-client-v2, the official implementation, so a protocol change there reaches us by upgrading;
only the transport is ours (async httpx). Its modules import eth_account (~1 s): import this module
lazily, never on the CLI's import path.
"""

from __future__ import annotations

from collections.abc import Callable

from pmbot.errors import AuthError
from pmbot.polymarket.models import ApiCreds

Clock = Callable[[], float]


class L1Signer:
    """Signs ClobAuth messages with the wallet key. The key lives only inside the library's Signer."""

    def __init__(self, private_key: str, chain_id: int, clock: Clock) -> None:
        from py_clob_client_v2.signer import Signer

        try:
            self._signer = Signer(private_key, chain_id)
        except Exception:  # the library's message could echo the key: say nothing of it
            raise AuthError("the configured private key is not a valid secp256k1 key") from None
        self._clock = clock
        self.address: str = self._signer.address()

    def __repr__(self) -> str:
        return f"L1Signer(address={self.address})"

    def headers(self, nonce: int = 0) -> dict[str, str]:
        from py_clob_client_v2.headers.headers import create_level_1_headers

        return dict(create_level_1_headers(self._signer, nonce=nonce, timestamp=int(self._clock())))


def l2_headers(
    address: str, creds: ApiCreds, method: str, path: str, body: str | None, timestamp: int
) -> dict[str, str]:
    """`path` is the request path without the query string (the venue signs only the path)."""
    from py_clob_client_v2.signing.hmac import build_hmac_signature

    return {
        "POLY_ADDRESS": address,
        "POLY_SIGNATURE": build_hmac_signature(creds.secret, timestamp, method.upper(), path, body),
        "POLY_TIMESTAMP": str(timestamp),
        "POLY_API_KEY": creds.api_key,
        "POLY_PASSPHRASE": creds.passphrase,
    }


def creds_from(raw: object) -> ApiCreds:
    if not isinstance(raw, dict) or not raw.get("apiKey") or not raw.get("secret") or not raw.get("passphrase"):
        raise AuthError("the venue did not return API credentials")
    return ApiCreds(api_key=str(raw["apiKey"]), secret=str(raw["secret"]), passphrase=str(raw["passphrase"]))
