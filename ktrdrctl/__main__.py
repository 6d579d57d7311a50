"""Entry point: ``python -m ktrdrctl`` and the ``ktrdrctl`` console script.

``main`` runs the click group in non-standalone mode so that every outcome maps onto the
documented exit codes (see ``ktrdrctl.exits``): click usage errors → 2, our failures → their code,
Ctrl-C anywhere → 130, a closed stdout pipe (``ktrdrctl ops list | head``) → 0 quietly.

Start-up cost is the product here (a command should cost little more than the interpreter), so
``main()`` without ``argv`` — how the console script and ``python -m`` call it — is the process
entry: once the command is done it flushes stdout and stderr and ends the process with
``os._exit``, skipping the interpreter's teardown of every module, which nothing here needs
(sockets are closed by then and no atexit hooks are registered). ``main(argv)`` with a list
returns the exit code and leaves the process alone (tests call it in-process).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys

# Building click's command tree allocates many objects and none is garbage yet: collecting cycles
# meanwhile only costs start-up time, so the collector is paused for these imports.
_collecting = gc.isenabled()
gc.disable()
try:
    import click

    from ktrdrctl import exits
    from ktrdrctl.cli import cli
finally:
    if _collecting:
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    """Run ktrdrctl with ``argv`` and return the exit code.

    With ``argv`` None, run ``sys.argv[1:]`` as the whole process: flush and ``os._exit`` with the
    code instead of returning.
    """
    code = _run(argv)
    if argv is not None:
        return code
    _flush(sys.stdout)
    _flush(sys.stderr)
    os._exit(code)


def _run(argv: list[str] | None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="ktrdrctl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("ktrdrctl: interrupted", err=True)
        return exits.CTRL_C
    except KeyboardInterrupt:
        click.echo("\nktrdrctl: interrupted", err=True)
        return exits.CTRL_C
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except BrokenPipeError:
        _silence_stdout()
        return exits.OK
    except SystemExit as e:  # click's shell completion (``_KTRDRCTL_COMPLETE``) ends with sys.exit
        return e.code if isinstance(e.code, int) else exits.OK if e.code is None else exits.FAILED
    return rv if isinstance(rv, int) else exits.OK


def _silence_stdout() -> None:
    """The reader went away: point stdout at /dev/null so a final flush of its buffer is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _flush(stream) -> None:
    """Flush ``stream`` before ``os._exit``; a closed or vanished reader has nothing to receive."""
    with contextlib.suppress(OSError, ValueError):
        stream.flush()


if __name__ == "__main__":
    main()
