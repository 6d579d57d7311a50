"""hostd: the long-running hosts ktrdrd talks to (docs/architecture.md).

Each host is a subcommand of the ``hostd`` command (:mod:`hostd.__main__`): ``gateway-sim`` (the TWS
gateway simulator, :mod:`hostd.gatewaysim`) and ``ib`` (the IB host, :mod:`hostd.ib`); ``training``
joins them later.
``hostd`` imports ``ktrdr`` (downward only); ``ktrdrctl`` never imports ``hostd``.
"""
