"""Streaming clients: the CLOB market and user channels, RTDS, and Polygon OrderFilled logs.

Each stream is an async iterator of typed events (`pmbot.polymarket.models`) interleaved with
`StreamStatus` changes; it reconnects and re-subscribes on its own. Importing this package loads
neither websockets nor web3: both are imported when a stream first connects.
"""

from pmbot.polymarket.streams.base import Backoff, StreamCounters, StreamError, WsConnection
from pmbot.polymarket.streams.chain import ChainFillStream
from pmbot.polymarket.streams.market import MarketStream
from pmbot.polymarket.streams.rtds import RtdsStream, RtdsSubscription
from pmbot.polymarket.streams.user import UserStream

__all__ = [
    "Backoff",
    "ChainFillStream",
    "MarketStream",
    "RtdsStream",
    "RtdsSubscription",
    "StreamCounters",
    "StreamError",
    "UserStream",
    "WsConnection",
]
