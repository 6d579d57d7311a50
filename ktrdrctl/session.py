"""One command's connection to the daemon, with daemon failures turned into CLI failures.

Imported only when a command runs (never for ``--help``): it pulls in the socket client, which
imports ``socket`` and ``json``. Unreachable daemon → exit 3 with the command that starts it;
NOT_FOUND → exit 4; any other error frame → exit 1 with code name, message, reason and field
violations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ktrdr.wire import StatusCode
from ktrdrctl import exits, paths
from ktrdrctl.ctl import CtlClient, CtlError, DaemonUnreachable, RequestTooLarge


class Session:
    """Options shared by every command and a lazily opened :class:`CtlClient`.

    ``runtime_dir_option`` is the ``--runtime-dir`` / ``KTRDR_RUNTIME_DIR`` value (None → defaults);
    ``call_timeout`` bounds connecting and each unary call, in seconds.
    """

    def __init__(self, runtime_dir_option: str | None, call_timeout: float, explicit_flag: bool) -> None:
        self.runtime_dir = paths.resolve_runtime_dir(runtime_dir_option)
        self.call_timeout = call_timeout
        # Whether --runtime-dir was on the command line (then hints repeat it).
        self.explicit_flag = explicit_flag
        self._client: CtlClient | None = None

    @property
    def client(self) -> CtlClient:
        if self._client is None:
            self._client = CtlClient(paths.ctl_socket(self.runtime_dir), timeout=self.call_timeout)
        return self._client

    def close(self) -> None:
        """Close the connection; a later call opens a new one (e.g. after a stream cut short)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def reconnect(self) -> None:
        """Drop the connection (e.g. a stream left half-read by Ctrl-C); the next call opens another."""
        self.close()
        self._client = None

    def command(self, *words: str) -> str:
        """A ktrdrctl command line for hints, repeating ``--runtime-dir`` when the user gave it."""
        import shlex  # only hints need it

        flag = ["--runtime-dir", self.runtime_dir] if self.explicit_flag else []
        return shlex.join(["ktrdrctl", *flag, *words])

    def call(self, method: str, params: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Unary call; ``timeout`` (s) replaces the call timeout for this call."""
        try:
            return self.client.call(method, params, timeout=timeout)
        except RequestTooLarge as e:
            raise exits.CliFailure(str(e), exits.USAGE) from None
        except (DaemonUnreachable, CtlError) as e:
            raise self.failure(e) from None

    def stream(self, method: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Server stream with no idle bound; yields each result object."""
        try:
            yield from self.client.stream(method, params)
        except RequestTooLarge as e:
            raise exits.CliFailure(str(e), exits.USAGE) from None
        except (DaemonUnreachable, CtlError) as e:
            raise self.failure(e) from None

    def failure(self, error: DaemonUnreachable | CtlError) -> exits.CliFailure:
        """The CLI failure (message + exit code) for a transport or daemon error."""
        if isinstance(error, DaemonUnreachable):
            lines = [str(error)]
            if error.missing:
                lines.append(f"  start it with: {paths.start_command(self.runtime_dir)}")
                if not self.explicit_flag:
                    lines.append("  (a daemon elsewhere: pass --runtime-dir DIR or set KTRDR_RUNTIME_DIR)")
            elif "ermission denied" in error.reason:
                lines.append("  the socket is for the daemon's user and group (see docs/operations.md)")
            return exits.CliFailure("\n".join(lines), exits.UNREACHABLE)
        code = exits.NOT_FOUND if error.code == StatusCode.NOT_FOUND else exits.FAILED
        return exits.CliFailure(error_text(error), code)


def error_text(error: CtlError) -> str:
    """``NOT_FOUND: operation … not found (reason: X)`` plus one line per field violation."""
    text = f"{error.code_name}: {error.message}"
    reason = error.data.get("reason")
    if reason and reason != error.code_name:
        text += f" (reason: {reason})"
    for field, description in error.field_violations:
        violation = f"{field}: {description}"
        if violation not in error.message:  # the message often is exactly the one violation
            text += f"\n  {violation}"
    return text
