"""aiohttp routes of the sim, one module per API (CLOB public, CLOB trading, Gamma, Data API,
WebSockets, RTDS, JSON-RPC, admin). `app.build_app(venue)` assembles them on one port."""
