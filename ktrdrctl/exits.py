"""Exit codes of ktrdrctl and the exception that carries one (documented in docs/cli.md)."""

from __future__ import annotations

import click

OK = 0
#: The operation waited on or watched did not succeed: it ended FAILED, CANCELLED or INTERRUPTED
#: (:data:`ktrdr.wire.UNSUCCESSFUL_STATES`); also any other daemon error.
FAILED = 1
#: Bad command line (click's own usage errors use this code too).
USAGE = 2
#: The daemon's ctl socket is missing, refuses connections, closed the connection or did not answer.
UNREACHABLE = 3
#: The daemon answered NOT_FOUND.
NOT_FOUND = 4
#: ``ops wait --timeout`` elapsed before the operation finished (it keeps running).
WAIT_TIMEOUT = 124
#: Interrupted by Ctrl-C (SIGINT): 128 + 2, as shells report it.
CTRL_C = 130


class CliFailure(click.ClickException):
    """A failure with a message for stderr and an exit code; ``main`` prints it and exits."""

    def __init__(self, message: str, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"ktrdrctl: {self.format_message()}", err=True)
