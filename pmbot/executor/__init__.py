"""The order executor: the one path from strategies to the venue.

Strategies submit `OrderIntent`s (intents.py). Each passes the risk gate (risk.py) before it is
written ahead to the store and sent, live on CLOB V2 or, in dry-run (the default), to the paper
exchange (paper.py), which fills it against the live order book. The building blocks here are pure:
no I/O, time and ids injected, money in Decimal.
"""
