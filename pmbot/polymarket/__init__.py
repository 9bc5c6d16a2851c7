"""The Polymarket adapter: the only package that knows Polymarket's wire formats.

Heavy imports (coincurve, eth_hash, eth_account, web3) stay inside the modules that need
them; importing this package alone is cheap.
"""
