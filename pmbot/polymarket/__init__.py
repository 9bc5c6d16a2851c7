"""The Polymarket adapter: the only package that knows Polymarket's wire formats.

Heavy imports (coincurve, eth_hash, web3, py_clob_client_v2) stay inside the modules that need
them; importing this package alone is cheap.
"""
