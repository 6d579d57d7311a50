"""The embedded default: which local hosts ktrdrd starts when none is configured.

With ``hosts.ib`` empty and ``hosts.embedded`` true, ktrdrd supervises

- ``gateway-sim``: ``hostd gateway-sim`` on ``127.0.0.1`` and a port the kernel picks at the first
  start (kept across restarts), serving bars from its seeded generator — unless ``ib.gateway`` names
  a real IB Gateway/TWS (``HOST:PORT``), in which case no simulator is started;
- ``ib``: ``hostd ib`` on ``unix:<runtime dir>/hostd-ib.sock`` (:data:`IB_SOCKET`), connected to that
  simulator (marked ``--simulated``: its series are synthetic) or to ``ib.gateway``.

``ib.sim_clock_scale`` K > 1 compresses IB's pacing windows K-fold in both the simulator and the
host (for demos such as ``make run``, which loads three years of three series in seconds instead of
half an hour); the rules themselves, and the pacer that keeps to them, are unchanged.

With ``hosts.training`` empty and ``hosts.embedded`` true, ktrdrd also supervises

- ``training``: ``hostd training`` on ``unix:<runtime dir>/hostd-training.sock``
  (:data:`TRAINING_SOCKET`), its job table, blobs and outputs under ``<state dir>/hostd-training``,
  with the host's default slots.

Children log in the daemon's format and level.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from ktrdrd.hosts.supervisor import ChildSpec

IB_SOCKET = "hostd-ib.sock"
TRAINING_SOCKET = "hostd-training.sock"
TRAINING = "training"
TRAINING_STATE = "hostd-training"
GATEWAY_SIM = "gateway-sim"
IB = "ib"
#: The simulator's generator seed: the embedded data are the same on every run.
SIM_SEED = 0


def ib_address(runtime_dir: Path) -> str:
    """Where the embedded IB host serves."""
    return f"unix:{runtime_dir / IB_SOCKET}"


def training_address(runtime_dir: Path) -> str:
    """Where the embedded training host serves."""
    return f"unix:{runtime_dir / TRAINING_SOCKET}"


def training_spec(*, runtime_dir: Path, state_dir: Path, log_format: str, log_level: str) -> ChildSpec:
    """The embedded ``hostd training``."""
    argv = [
        sys.executable, "-m", "hostd", "training",
        "--listen", training_address(runtime_dir),
        "--state-dir", str(state_dir / TRAINING_STATE),
        "--log-format", log_format, "--log-level", log_level,
    ]  # fmt: skip
    return ChildSpec(TRAINING, lambda _addresses: list(argv), socket=runtime_dir / TRAINING_SOCKET)


def embedded_specs(
    *, runtime_dir: Path, gateway: str, log_format: str, log_level: str, clock_scale: float = 1.0
) -> list[ChildSpec]:
    """The children for an embedded IB host; ``gateway`` = ``ib.gateway`` ("" = the simulator);
    ``clock_scale`` = ``ib.sim_clock_scale``: the simulator and the host both divide IB's pacing
    windows by it (``--clock-scale``), so the host's pacer and the simulator's rules stay in step."""
    logging_flags = ["--log-format", log_format, "--log-level", log_level]
    scale = [] if gateway or clock_scale == 1.0 else ["--clock-scale", f"{clock_scale:g}"]
    hostd = [sys.executable, "-m", "hostd"]

    def sim_argv(addresses: Mapping[str, str]) -> list[str]:
        listen = addresses.get(GATEWAY_SIM, "127.0.0.1:0")
        return [*hostd, "gateway-sim", "--listen", listen, "--seed", str(SIM_SEED), *scale, *logging_flags]

    def ib_argv(addresses: Mapping[str, str]) -> list[str]:
        target = gateway or addresses[GATEWAY_SIM]
        simulated = [] if gateway else ["--simulated"]
        return [
            *hostd,
            "ib",
            "--listen",
            ib_address(runtime_dir),
            "--gateway",
            target,
            *simulated,
            *scale,
            *logging_flags,
        ]

    ib = ChildSpec(IB, ib_argv, needs=() if gateway else (GATEWAY_SIM,), socket=runtime_dir / IB_SOCKET)
    return [ib] if gateway else [ChildSpec(GATEWAY_SIM, sim_argv), ib]
