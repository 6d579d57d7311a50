"""Transport-neutral RPC plumbing shared by ktrdrd and the hosts (hostd).

:mod:`.errors` (``ApiError`` and its constructors), :mod:`.registry` (services written once as plain
objects), :mod:`.grpc_adapter` (a registry served on ``grpc.aio``) and :mod:`.rich_status`
(``ApiError`` ⇄ ``google.rpc.Status``). ktrdrctl never imports this package.
"""
