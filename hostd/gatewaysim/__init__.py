"""TWS gateway simulator: the server side of the TWS API subset that ib_async 2.1.0 uses.

It serves contract details, head timestamps and historical bars (from ktrdr bar files or a seeded
generator that follows each asset class's trading calendar), enforces IB's historical-data pacing
with error 162, and injects faults (latency, dropped connections, errors 200/321/326/1100/1102).

Modules: :mod:`.wire` (framing, handshake, message ids) · :mod:`.session` (one connection) ·
:mod:`.server` (:class:`~.server.GatewaySim`, the Python API) · :mod:`.contracts` · :mod:`.generator` ·
(calendars: :mod:`ktrdr.calendars`) · :mod:`.sources` · :mod:`.history` · :mod:`.pacing` · :mod:`.faults` ·
:mod:`.service` and :mod:`.cli` (``hostd gateway-sim``). User guide: ``docs/gateway-sim.md``.
"""
