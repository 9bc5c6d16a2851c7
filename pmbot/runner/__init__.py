"""The strategy runner: the one place that owns a strategy's I/O (streams, clock, store, executor).

A strategy (pmbot.strategies.base.Strategy) is pure decision code; this package feeds it and carries out
what it decides. The same `Runner` drives live, dry-run (paper fills), `pmbot sim` (through the PMBOT_*
URLs) and backtest (a scenario on a simulated clock, in one process). It is strategy-agnostic: the
command chooses the strategy and passes `make_strategy(view) -> Strategy`.

Modules
- `core`: `Runner` (the per-event loop), `DecisionLog` (decisions → store table `decisions`),
  `result_events` (executor answer → OrderResult / OrderFilled).
- `feed`: `Translator`, adapter events (pmbot.polymarket.models) → strategy events, with local books.
- `live`: `LiveFeed` (market channel, RTDS Chainlink, timer ticks; live: user channel + reconciler),
  `Targets` (fixed markets or `--auto` series discovery), `market_info`, `resolve_market`, `discover`.
- `session`: `run_session(app, make_strategy, TargetSpec, dry_run=…, duration_s=…, stop=…)`, what
  `pmbot snipe` calls: resolves targets (bad input fails before anything is written), builds the
  executor, the view, the runner and the feed, and runs until `stop`, the duration, or a stream failure.
  Everything in a session reads the venue's clock (`session.clock`), not the wall clock.
- `venue_clock`: `VenueClock(fetch)`, the venue's time from `GET /time` samples and market-channel
  timestamps, extrapolated (offset and rate): the wall clock against Polymarket, the sim's clock against
  `pmbot sim serve --speed N`. `clock = VenueClock(venue.clob.server_time); task = await clock.start();
  clock()` → epoch seconds; `task.cancel()` when done.
- `backtest`: `run_backtest(scenario, make_strategy, settings, run_id=…, params=…, decisions=…)` and
  `prepare(scenario)`; the real dry-run executor on a throw-away store, the scenario's clock.

Using it for another strategy (e.g. `pmbot copy`):

    from pmbot.runner.session import TargetSpec, run_session
    session = await run_session(app, lambda view: CopyStrategy(view, cfg), TargetSpec(...), dry_run=True,
                                duration_s=None, stop=stop_event, on_output=print_decisions)
    session.runner.strategy.metrics  # signals, skips, fills, wins, losses, realized PnL
    session.runner.sent              # intent key → SentOrder(intent, SubmitResult)

or drive a `Runner` yourself: `await runner.start()`, `await runner.deliver(event)` per event (the view is
updated first, then the strategy; its intents go to `executor.submit` concurrently; each answer comes back
as OrderResult, and OrderFilled when it filled), `await runner.tick(now_ms)`, `await runner.stop()`.
A feed for other event sources (TargetFill from the chain / RTDS activity / Data API) calls `deliver`
the same way; `LiveFeed` is the template. Fills are read back from the executor's store per trade id
(`Runner(store=…)`), and `await runner.sync_orders()` tells the strategy of fills recorded after the
answer (a resting paper order crossed by a later book, the user channel, the reconciler): `LiveFeed`
calls it after a paper fill and every second, the backtest after a paper fill.

Pre-armed orders: with `Runner(prearm=True)` (run_session's default) `runner.arm_ahead()` (LiveFeed: every
tick) arms what `strategy.anticipate(now_ms)` predicts (signed and recorded `armed` ahead, with the market's
end as retire time), `Runner.submit` fires the armed order when the strategy submits the same order, and
unfired ones are retired at the market's end (and when the run ends). The backtest does not pre-arm.
"""
