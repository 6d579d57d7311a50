"""``hostd ib``: the IB host. One paced ib_async connection to IB Gateway/TWS (or the gateway
simulator) served as ``ktrdr.hostd.marketdata.v1.MarketDataService`` (docs/ib-host.md).

Modules, one job each: :mod:`.cli` (flags), :mod:`.requests` (bar sizes and how a range is split into
requests), :mod:`.pacer` (IB's historical-data pacing rules, client side), :mod:`.ib_errors` (every IB
error code → a gRPC status), :mod:`.connection` (the one connection and its reconnect loop),
:mod:`.contracts` (contract specs ⇄ ib_async contracts), :mod:`.fetch` (one range of bars, paced,
retried, deduplicated), :mod:`.columns` (bars → columnar chunks), :mod:`.service` (the RPCs) and
:mod:`.process` (the process: gRPC server, health, sd_notify, signals).
"""
