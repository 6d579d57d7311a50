"""The daemon's hosts as configured: links to each, and the supervised local ones.

``credentials = link_credentials(config)`` first (it reads the TLS and token files; HostConfigError
names the key and file when they cannot be used), then ``hosts = open_hosts(config, app_state,
runtime_dir, credentials)`` (inside the running loop) builds them; ``hosts.ib`` is the IB host's
:class:`~ktrdrd.hosts.link.HostLink` (None when there is none: ``hosts.ib`` empty and
``hosts.embedded`` false). ``await hosts.run()`` (a background task until cancelled) starts the
local hosts and follows every link; ``hosts.stop_restarting()`` when shutdown begins; ``await
hosts.close()`` at the end closes the links, then stops the local hosts.

Rules: ``hosts.ib = "unix:/PATH"`` links to a running host over its socket; ``hosts.ib =
"HOST:PORT"`` links over TLS pinned to ``hosts.ca_file`` with the token in ``hosts.token_file``
(both required: :mod:`ktrdrd.config` refuses the address without them); ``hosts.ib = ""`` with ``hosts.embedded`` starts the embedded IB host
(:mod:`ktrdrd.hosts.embedded`). Training hosts: one link per address of ``hosts.training``
(named ``training-1``, ``training-2``, … in order; TCP ones with the same TLS and token as
``hosts.ib``); with none and ``hosts.embedded``, the embedded ``hostd training`` (named
``training``). :attr:`Hosts.training` lists them.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ktrdrd.appstate import AppState
from ktrdrd.config import Config
from ktrdrd.hosts import embedded
from ktrdrd.hosts.link import HostLink
from ktrdrd.hosts.supervisor import Supervisor


class HostConfigError(Exception):
    """The host configuration cannot work; the message names the key and what to set."""


@dataclass
class Hosts:
    """The links (by host name) and the supervisor of the local hosts (None when there are none)."""

    links: dict[str, HostLink] = field(default_factory=dict)
    supervisor: Supervisor | None = None

    @property
    def ib(self) -> HostLink | None:
        return self.links.get(embedded.IB)

    @property
    def training(self) -> dict[str, HostLink]:
        """The training hosts' links by name."""
        return {name: link for name, link in self.links.items() if link.kind == "training"}

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            if self.supervisor is not None:
                group.create_task(self.supervisor.run(), name="host-supervisor")
            for name, link in self.links.items():
                group.create_task(link.run(), name=f"host-link-{name}")

    def stop_restarting(self) -> None:
        """The daemon is stopping: local hosts that exit now stay stopped."""
        if self.supervisor is not None:
            self.supervisor.stop_restarting()

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()
        if self.supervisor is not None:
            await self.supervisor.stop()


def link_credentials(config: Config) -> grpc.ChannelCredentials | None:
    """The TLS + token credentials for a ``HOST:PORT`` ``hosts.ib`` (None for a unix socket or no
    address); HostConfigError names the key and the file that cannot be used. Call before anything
    is created: it only reads ``hosts.ca_file`` and ``hosts.token_file``."""
    from ktrdr.rpc.hostauth import HostAuthError, channel_credentials

    addresses = [config["hosts.ib"], *config["hosts.training"]]
    if all(not address or address.startswith("unix:") for address in addresses):
        return None
    address = next(a for a in addresses if a and not a.startswith("unix:"))
    try:  # both keys are set: config.load refuses a TCP address without them
        return channel_credentials(
            Path(os.path.expanduser(config["hosts.ca_file"])),
            Path(os.path.expanduser(config["hosts.token_file"])),
        )
    except HostAuthError as exc:
        raise HostConfigError(f"host {address!r}: {exc}") from None


def open_hosts(
    config: Config,
    app_state: AppState,
    runtime_dir: Path,
    credentials: grpc.ChannelCredentials | None,
    state_dir: Path | None = None,
) -> Hosts:
    """Build the links and the supervisor the configuration asks for (nothing starts yet);
    ``credentials``: :func:`link_credentials` of the same configuration; ``state_dir``: the
    daemon's (the embedded training host keeps its state under it; None: no embedded training host)."""
    hosts = Hosts()
    specs = []
    for index, training in enumerate(config["hosts.training"], 1):
        name = f"training-{index}"
        hosts.links[name] = HostLink(
            name=name, kind="training", address=training, app_state=app_state, credentials=credentials
        )
    if not config["hosts.training"] and config["hosts.embedded"] and state_dir is not None:
        specs.append(
            embedded.training_spec(
                runtime_dir=runtime_dir,
                state_dir=state_dir,
                log_format=config["log_format"],
                log_level=config["log_level"],
            )
        )
        hosts.links[embedded.TRAINING] = HostLink(
            name=embedded.TRAINING,
            kind="training",
            address=embedded.training_address(runtime_dir),
            app_state=app_state,
        )
    address = config["hosts.ib"]
    if address:
        hosts.links[embedded.IB] = HostLink(
            name=embedded.IB,
            kind="marketdata",
            address=address,
            app_state=app_state,
            credentials=credentials,
        )
    elif config["hosts.embedded"]:
        gateway = config["ib.gateway"]
        specs[:0] = embedded.embedded_specs(
            runtime_dir=runtime_dir,
            gateway=gateway,
            clock_scale=config["ib.sim_clock_scale"],
            log_format=config["log_format"],
            log_level=config["log_level"],
        )
        hosts.links[embedded.IB] = HostLink(
            name=embedded.IB,
            kind="marketdata",
            address=embedded.ib_address(runtime_dir),
            app_state=app_state,
            simulated=not gateway,
        )
    if specs:
        hosts.supervisor = Supervisor(specs)
    return hosts
