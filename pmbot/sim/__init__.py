"""`pmbot sim`: a simulated Polymarket on 127.0.0.1 (CLOB REST + auth, Gamma, Data API, market/user
WebSockets, RTDS and a minimal Polygon JSON-RPC), speaking the recorded wire format.

Layout (each module owns one thing):

* `clock`     – sim time (real-time × speed, or manual for tests)
* `ids`       – deterministic ids/addresses derived from the seed
* `wire`      – Decimal → wire text, ISO/ms helpers
* `book`      – an outcome book (Up-token canonical, Down mirrored), price levels, hashes
* `markets`   – the market model and its Gamma / CLOB JSON shapes
* `scenario`  – the seeded BTC 15-minute generator (price path, windows, fair value, whale)
* `verify`    – independent EIP-712 order/ClobAuth signature checks
* `auth`      – API-key store, L1/L2 header checks
* `engine`    – orders, matching, fees, trades
* `hub`       – fan-out of events to WebSocket subscribers
* `venue`     – the state that ties it all together and advances with the clock
* `faults`    – injected failures
* `server/`   – aiohttp routes per API
* `scenario_file` / `replay` – recorded JSONL scenarios
* `testing`   – `SimServer`, a background-thread server for tests

Heavy imports (aiohttp, eth_account) live in the submodules, never here.
"""

from __future__ import annotations

DEFAULT_PORT = 8765
DEFAULT_SEED = 7
BUILTIN_SCENARIOS = ("btc-15m",)


def env_lines(host: str, port: int) -> dict[str, str]:
    """The PMBOT_* settings that point pmbot at a sim on host:port."""
    http, ws = f"http://{host}:{port}", f"ws://{host}:{port}"
    return {
        "PMBOT_CLOB_URL": http,
        "PMBOT_GAMMA_URL": f"{http}/gamma",
        "PMBOT_DATA_URL": f"{http}/data-api",
        "PMBOT_CLOB_WS_URL": f"{ws}/ws",
        "PMBOT_RTDS_URL": f"{ws}/rtds",
        "PMBOT_RPC_WS_URL": f"{ws}/rpc",
    }
