"""``make run``: start ktrdrd with its embedded defaults and train neuro_mean_reversion end to end.

Steps, each printed as it happens:

1. start ``ktrdrd`` on ``RUN_DIR/runtime`` and ``RUN_DIR/state`` with its embedded hosts (the
   gateway simulator, ``hostd ib``, ``hostd training``) and show ``ktrdrctl status`` — only a
   daemon it started itself: if another already serves ``RUN_DIR/runtime``, or its own exits before
   it answers (another holds the lock, a bad directory), it stops there, non-zero;
2. validate ``strategies/neuro_mean_reversion.yaml`` through the daemon (``ktrdrctl strategies validate``);
3. load the strategy's bars (warm-up included) into the daemon's cache with ``ktrdrctl data load``
   from the embedded gateway simulator (synthetic, seeded), the daemon started with
   ``--ib-sim-clock-scale 60`` so that IB's pacing windows pass 60x faster (the output says so);
4. ``ktrdrctl train`` on the embedded training host: progress streamed, the model registered
   (``RUN_DIR/state/models``), its metrics printed beside the majority-class and persistence
   baselines with the skill verdict (``docs/evaluation.md``): on these random walks it must read
   "not significant";
5. stop the daemon (SIGTERM) and check it exited cleanly.

Exit code: non-zero when any step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ktrdr import wire

STRATEGY = Path("strategies/neuro_mean_reversion.yaml")
START, END = "2023-01-01", "2025-01-01"
#: ``ib.sim_clock_scale`` of the demo's daemon: the simulator and the IB host pace 60x faster.
CLOCK_SCALE = 60


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _run(argv: list[str], env: dict[str, str]) -> None:
    print("$ " + " ".join(argv), flush=True)
    subprocess.run(argv, env=env, check=True)


def _answering_pid(runtime: Path) -> int | None:
    """The pid of the ktrdrd answering on ``runtime`` (``ktrdrctl status --json``); None when none does."""
    ctl = Path(sys.executable).parent / "ktrdrctl"
    argv = [str(ctl), "--runtime-dir", str(runtime), "--call-timeout", "5s", "status", "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return int(json.loads(proc.stdout).get("pid", 0)) if proc.returncode == 0 else None


def _start_daemon(argv: list[str], runtime: Path, env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """Start ktrdrd (``argv``) on ``runtime`` and return it once it is the daemon answering there.

    Never another one: if a daemon already answers on ``runtime`` nothing is started; if ours exits
    first (its reason is on stderr above), or another answers instead, or 60 s pass, it is stopped.
    Each case prints why on stderr and returns None.
    """
    foreign = _answering_pid(runtime)
    if foreign is not None:
        print(
            f"another ktrdrd (pid {foreign}) is already serving {runtime}; make run only uses a daemon "
            "it starts itself: stop that one, or use another run dir (make run RUN_DIR=DIR)",
            file=sys.stderr,
        )
        return None
    daemon = subprocess.Popen(argv, env=env)
    deadline = time.monotonic() + 60
    while daemon.poll() is None:
        pid = _answering_pid(runtime) if (runtime / wire.CTL_SOCKET).exists() else None
        if pid == daemon.pid:
            return daemon
        if pid is not None or time.monotonic() > deadline:
            daemon.terminate()
            daemon.wait(30)
            why = f"another ktrdrd (pid {pid}) answers on {runtime}" if pid else "no answer within 60 s"
            print(f"ktrdrd did not start: {why}", file=sys.stderr)
            return None
        time.sleep(0.05)
    print(f"ktrdrd exited {daemon.returncode} before it was ready (its reason is above)", file=sys.stderr)
    return None


def _load_argv() -> list[str]:
    """``data load`` arguments for every series the strategy needs over START..END, warm-up included."""
    from ktrdr.research.synthetic import to_ns
    from ktrdr.strategy import data_requirements, load_strategy_file

    strategy = load_strategy_file(STRATEGY).strategy
    first = min(r.start for r in data_requirements(strategy, to_ns(START), to_ns(END)))
    start = time.strftime("%Y-%m-%d", time.gmtime(first // 10**9))
    frames = [arg for tf in strategy.data.timeframes for arg in ("--timeframe", tf)]
    return ["data", "load", *strategy.data.symbols, *frames, "--start", start, "--end", END]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ktrdr.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", default=".run", help="directory for sockets, state, data and models")
    p.add_argument("--epochs", type=int, help="override the strategy's epochs (the tests use 2)")
    args = p.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    runtime, state = run_dir / "runtime", run_dir / "state"
    env = {**os.environ, "KTRDR_RUNTIME_DIR": str(runtime)}

    _step("starting ktrdrd with its embedded hosts")
    daemon = _start_daemon(
        [
            sys.executable,
            "-m",
            "ktrdrd",
            "--runtime-dir",
            str(runtime),
            "--state-dir",
            str(state),
            "--log-format",
            "text",
            "--ib-sim-clock-scale",
            str(CLOCK_SCALE),
        ],
        runtime,
        env,
    )
    if daemon is None:
        return 1
    try:
        ctl = [sys.executable, "-m", "ktrdrctl"]
        _run([*ctl, "status"], env)

        _step(f"validating {STRATEGY} through the daemon")
        _run([*ctl, "strategies", "validate", str(STRATEGY)], env)

        _step(
            f"loading the strategy's bars from the embedded IB gateway simulator (synthetic data; IB's "
            f"pacing rules on a clock {CLOCK_SCALE}x faster, so three years of bars load in seconds)"
        )
        _run([*ctl, *_load_argv()], env)

        _step(f"training {STRATEGY.stem} on {START} .. {END} through the daemon (embedded training host)")
        epochs = ["--set", f"model.training.epochs={args.epochs}"] if args.epochs else []
        _run([*ctl, "train", str(STRATEGY), "--start-date", START, "--end-date", END, *epochs], env)
    except subprocess.CalledProcessError as exc:
        print(f"step failed: {' '.join(exc.cmd)} exited {exc.returncode}", file=sys.stderr)
        return 1
    finally:
        _step("stopping ktrdrd")
        daemon.send_signal(signal.SIGTERM)
        rc = daemon.wait(timeout=30)
        print(f"ktrdrd exited {rc}")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
