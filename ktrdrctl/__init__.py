"""ktrdrctl: the thin command-line client of ktrdrd.

It imports only the standard library, click and itself, so that a command costs about the
interpreter plus click. It talks to the daemon over ``<runtime-dir>/ctl.sock`` (NDJSON, see
``docs/ctl-protocol.md``). Modules: ``cli`` (commands), ``ctl`` (socket client), ``paths`` (where
the daemon is), ``args`` (argument parsing), ``render`` (tables and details), ``watch`` (live
progress display), ``exits`` (exit codes).
"""
