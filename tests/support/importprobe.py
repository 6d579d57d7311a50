"""Which modules a ``python -X importtime`` run of ktrdrctl imports: the thin-client rule's probe."""

from __future__ import annotations

import subprocess
import sys

from tests.support.ctlserver import REPO, ktrdrctl_env

FORBIDDEN = ("grpc", "google.protobuf", "asyncio", "numpy", "pandas", "yaml", "torch")


def imported_modules(
    *args: str, program: tuple[str, ...] = ("-m", "ktrdrctl"), env: dict[str, str] | None = None
) -> list[str]:
    """Run ``python -X importtime -m ktrdrctl ARGS`` (it must exit 0); the module names it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *program, *args],
        cwd=REPO,
        env=ktrdrctl_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    names = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.append(name)
    return names


def forbidden_in(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


def beyond_stdlib(modules: list[str]) -> set[str]:
    """The modules that are not the standard library's, nor imported by a bare interpreter here
    (site hooks of the environment)."""
    bare = set(imported_modules(program=("-c", "pass")))
    return {m for m in modules if m not in bare and m.split(".")[0] not in sys.stdlib_module_names}
