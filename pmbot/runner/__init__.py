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
the same way; `LiveFeed` is the template. Known limits: fills that arrive later for a resting order
(paper `on_book`, the user channel) are recorded by the executor but not yet fed back as OrderFilled;
the pre-armed order seam is `Runner.submit` (see its comment).
"""
