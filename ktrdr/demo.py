"""``make run``: start ktrdrd with its embedded defaults and train neuro_mean_reversion end to end.

Steps, each printed as it happens:

1. start ``ktrdrd`` on ``RUN_DIR/runtime`` and ``RUN_DIR/state`` and show ``ktrdrctl status`` —
   only a daemon it started itself: if another already serves ``RUN_DIR/runtime``, or its own
   exits before it answers (another holds the lock, a bad directory), it stops there, non-zero;
2. validate ``strategies/neuro_mean_reversion.yaml`` through the daemon (``ktrdrctl strategies validate``);
3. write seeded synthetic bars (GBM; 1h, resampled to 4h and 1d) for the strategy's symbols into
   ``RUN_DIR/data`` — until the IB host and its gateway simulator land (later issues), synthetic
   files stand in for downloaded data, and the output says so;
4. train with ``python -m ktrdr.research.train`` (the same library the training host will run),
   save the model under ``RUN_DIR/models`` and print its metrics beside the majority-class and
   persistence baselines, with the skill verdict (``docs/evaluation.md``): on these random walks
   it must read "not significant";
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


def _write_data(data_dir: Path) -> None:
    from ktrdr.research.bars import resample
    from ktrdr.research.synthetic import gbm_bars, write_csv
    from ktrdr.strategy import load_strategy_file

    strategy = load_strategy_file(STRATEGY).strategy
    data_dir.mkdir(parents=True, exist_ok=True)
    # Warm-up bars before START come from the same series: generate from a year earlier.
    for i, symbol in enumerate(strategy.data.symbols):
        base = gbm_bars(symbol, "1h", "2022-01-01", END, seed=20240101 + i, s0=100.0 + 50 * i, sigma=0.3)
        for tf in strategy.data.timeframes:
            write_csv(base if tf == "1h" else resample(base, tf), data_dir)
    print(f"synthetic bars (seeded GBM) for {', '.join(strategy.data.symbols)} in {data_dir}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ktrdr.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", default=".run", help="directory for sockets, state, data and models")
    p.add_argument("--epochs", type=int, help="override the strategy's epochs (the tests use 2)")
    args = p.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    runtime, state = run_dir / "runtime", run_dir / "state"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "KTRDR_RUNTIME_DIR": str(runtime)}

    _step("starting ktrdrd")
    daemon = _start_daemon(
        [
            str(bin_dir / "ktrdrd"),
            "--runtime-dir",
            str(runtime),
            "--state-dir",
            str(state),
            "--log-format",
            "text",
        ],
        runtime,
        env,
    )
    if daemon is None:
        return 1
    try:
        ctl = str(bin_dir / "ktrdrctl")
        _run([ctl, "status"], env)

        _step(f"validating {STRATEGY} through the daemon")
        _run([ctl, "strategies", "validate", str(STRATEGY)], env)

        _step("preparing market data")
        _write_data(run_dir / "data")

        _step(f"training {STRATEGY.stem} on {START} .. {END}")
        _run(
            [
                sys.executable, "-m", "ktrdr.research.train", str(STRATEGY),
                "--data", str(run_dir / "data"), "--start", START, "--end", END,
                "--out", str(run_dir / "models"),
                *(["--epochs", str(args.epochs)] if args.epochs else []),
            ],
            env,
        )  # fmt: skip
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
