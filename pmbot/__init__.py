"""pmbot: an operator toolkit for automated trading on Polymarket."""

__version__ = "0.1.0"
