"""Entry point: ``python -m ktrdrctl`` and the ``ktrdrctl`` console script.

``main`` runs the click group in non-standalone mode so that every outcome maps onto the
documented exit codes (see ``ktrdrctl.exits``): click usage errors → 2, our failures → their code,
Ctrl-C anywhere → 130, a closed stdout pipe (``ktrdrctl ops list | head``) → 0 quietly.
"""

from __future__ import annotations

import os
import sys

import click

from ktrdrctl import exits
from ktrdrctl.cli import cli


def main(argv: list[str] | None = None) -> int:
    """Run ktrdrctl with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    try:
        rv = cli.main(args=argv, prog_name="ktrdrctl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("ktrdrctl: interrupted", err=True)
        return exits.INTERRUPTED
    except KeyboardInterrupt:
        click.echo("\nktrdrctl: interrupted", err=True)
        return exits.INTERRUPTED
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except BrokenPipeError:
        # The reader went away; point stdout at /dev/null so the interpreter's final flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return exits.OK
    return rv if isinstance(rv, int) else exits.OK


if __name__ == "__main__":
    sys.exit(main())
