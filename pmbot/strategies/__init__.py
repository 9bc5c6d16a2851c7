"""Strategies: decision logic on typed venue events -> order intents.

They never touch the venue or the store directly: intents go to the one executor. The same code
runs live, in dry-run, against `pmbot sim` and in backtests (snipe and copy arrive with later issues).
"""
