"""Strategies: decision logic on typed venue events -> order intents.

They never touch the venue or the store directly: intents go to the one executor. The same code
runs live, in dry-run, against `pmbot sim` and in backtests.

- `events`: the typed events a strategy sees.
- `base`: the `Strategy` base, its read-only `StrategyView`, `MarketInfo`, `Output` and `Decision`.
- `reference`: resolution-rule parsing and Chainlink reference prices for crypto Up/Down markets.
- `snipe`: the expiration sniper's rules (`[snipe]`).
- `memview`: an in-memory `StrategyView` for backtests and tests.
"""
