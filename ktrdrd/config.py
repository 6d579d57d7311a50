"""Effective daemon configuration: defaults < TOML file < ``KTRDR_*`` environment < command-line flags.

Every value remembers where it came from (:attr:`Config.sources`), so ``ktrdrd --print-config`` can
say why a setting has the value it has. Bad input raises :class:`ConfigError` whose message names
the file and key (or variable, or flag) and what was expected; nothing is started on a config error.

Keys are flat names; the ``[hosts]`` and ``[ib]`` TOML tables map onto dotted keys
(``hosts.training``, ``hosts.ib``, ``hosts.embedded``, ``hosts.ca_file``, ``hosts.token_file``,
``ib.gateway``). Directory keys have computed defaults (:mod:`ktrdrd.rundirs`), resolved here so that
``--print-config`` shows the directories the daemon will really use.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktrdr import wire

LOG_FORMATS = ("auto", "json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(Exception):
    """Invalid configuration; the message names the source (file/key, variable or flag) and the fix."""


@dataclass(frozen=True)
class Key:
    """One configuration key: its TOML name, type, default and how env/flags spell it.

    ``kind`` is one of ``path``, ``choice``, ``float``, ``int``, ``bool``, ``str``, ``list``; ``default``
    is a value, or a callable ``(env, euid) -> value`` for computed defaults.
    """

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    above_minimum: bool = False  # True: value must be > minimum (else >=)
    #: For ``str`` keys: what is wrong with a non-empty value (None when it is fine).
    problem: Callable[[str], str | None] | None = None

    @property
    def env(self) -> str:
        return "KTRDR_" + self.name.upper().replace(".", "_")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace(".", "-").replace("_", "-")


def _tcp_problem(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "HOST:PORT with PORT 1..65535"
    return None


def _host_address_problem(value: str) -> str | None:
    if value.startswith("unix:"):
        return None if value.startswith("unix:/") else "unix:/ABSOLUTE/PATH or HOST:PORT"
    return "unix:/ABSOLUTE/PATH or HOST:PORT" if _tcp_problem(value) else None


KEYS: tuple[Key, ...] = (
    Key(
        "runtime_dir",
        "path",
        wire.default_runtime_dir,
        f"directory for {wire.GRPC_SOCKET}, {wire.CTL_SOCKET}, {wire.LOCK_NAME}",
    ),
    Key("state_dir", "path", wire.default_state_dir, f"directory for {wire.DB_NAME} (and data, models)"),
    Key("log_format", "choice", "auto", "auto = JSON unless stderr is a TTY", choices=LOG_FORMATS),
    Key("log_level", "choice", "info", "minimum level logged", choices=LOG_LEVELS),
    Key("shutdown_grace_s", "float", 10.0, "seconds in-flight calls get to finish on stop", minimum=0),
    Key("watchdog", "bool", True, "send WATCHDOG=1 when systemd sets WATCHDOG_USEC"),
    Key("retention_days", "float", 30.0, "days finished operations are kept", minimum=0, above_minimum=True),
    Key(
        "stop_close_timeout_s",
        "float",
        1.0,
        "seconds a stalled client may hold a stop after the grace",
        minimum=0,
    ),
    Key("ctl_max_connections", "int", 1024, "ctl connections open at once (one more is refused)", minimum=1),
    Key("ctl_max_calls", "int", 64, "calls in flight per ctl connection (then it is not read)", minimum=1),
    Key(
        "ctl_send_buffer_bytes",
        "int",
        1024 * 1024,
        "unsent reply bytes per ctl connection above which it is not read",
        minimum=64 * 1024,
    ),
    Key("ctl_frame_timeout_s", "float", 10.0, "seconds a partial ctl frame may stay incomplete", minimum=0.1),
    Key(
        "grpc_max_concurrent_rpcs", "int", 1024, "gRPC calls in flight (more: RESOURCE_EXHAUSTED)", minimum=1
    ),
    Key("grpc_max_streams", "int", 128, "concurrent gRPC calls per HTTP/2 connection", minimum=1),
    Key(
        "data_import_max_bytes",
        "int",
        512 * 1024 * 1024,
        "largest file `ktrdrctl data import` may send (more: RESOURCE_EXHAUSTED)",
        minimum=1,
    ),
    Key(
        "max_active_operations",
        "int",
        10_000,
        "operations pending or running at once (more starts: RESOURCE_EXHAUSTED)",
        minimum=1,
    ),
    Key(
        "data_import_inflight_bytes",
        "int",
        1024 * 1024 * 1024,
        "bytes of import files held at once over every import in progress (more: RESOURCE_EXHAUSTED)",
        minimum=1,
    ),
    Key(
        "training_auto_resumes",
        "int",
        3,
        "times a train run whose host or worker was lost is resumed by itself (0: never)",
        minimum=0,
    ),
    Key("hosts.training", "list", [], "training host addresses, comma-separated; empty = local host"),
    Key(
        "hosts.ib",
        "str",
        "",
        "IB host address: unix:/PATH, or HOST:PORT (TLS + token); empty = the embedded host",
        problem=_host_address_problem,
    ),
    Key("hosts.embedded", "bool", True, "start and supervise local hosts where no address is configured"),
    Key("hosts.ca_file", "str", "", "CA certificate (PEM) that TCP hosts' certificates must chain to"),
    Key("hosts.token_file", "str", "", "file holding the bearer token sent to TCP hosts (mode 600)"),
    Key(
        "ib.gateway",
        "str",
        "",
        "IB Gateway/TWS HOST:PORT for the embedded IB host; empty = the bundled gateway simulator",
        problem=_tcp_problem,
    ),
    Key(
        "ib.sim_clock_scale",
        "float",
        1.0,
        "the embedded gateway simulator and IB host divide IB's pacing windows by this (demos; "
        "1 = IB's real rules; ignored with ib.gateway)",
        minimum=1,
    ),
)
KEYS_BY_NAME = {k.name: k for k in KEYS}
_TABLES = {"hosts", "ib"}


@dataclass
class Config:
    """Effective values by key name, and for each the source that set it.

    Sources read ``default``, ``file <path>``, ``env <VAR>`` or ``flag <--flag>``.
    """

    values: dict[str, Any]
    sources: dict[str, str]
    config_file: Path | None = None

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def runtime_dir(self) -> Path:
        return Path(self.values["runtime_dir"])

    @property
    def state_dir(self) -> Path:
        return Path(self.values["state_dir"])


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(known)})"


def _check(key: Key, value: Any, where: str) -> Any:
    """Validate a value that arrived typed (TOML); return it normalized or raise ConfigError."""

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{where}: '{key.name}' must be {expected}, got {value!r}")

    if key.kind in ("path", "str", "choice"):
        if not isinstance(value, str):
            raise bad("a string")
        if key.kind == "path" and not value:
            raise bad("a non-empty path")
        if key.kind == "choice" and value not in key.choices:
            raise bad("one of " + ", ".join(key.choices))
        expected = key.problem(value) if key.problem is not None and value else None
        if expected is not None:
            raise bad(expected)
        return os.path.expanduser(value) if key.kind == "path" else value
    if key.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        if key.minimum is not None and value < key.minimum:
            raise bad(f"an integer >= {key.minimum:g}")
        return value
    if key.kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        if key.minimum is not None and (value <= key.minimum if key.above_minimum else value < key.minimum):
            raise bad(f"a number {'>' if key.above_minimum else '>='} {key.minimum:g}")
        return float(value)
    if key.kind == "bool":
        if not isinstance(value, bool):
            raise bad("a boolean (true or false)")
        return value
    if key.kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise bad("a list of non-empty strings")
        return list(value)
    raise AssertionError(key.kind)


def _from_text(key: Key, text: str, where: str) -> Any:
    """Parse an env/flag string into the key's type, then validate it like a TOML value."""
    if key.kind == "int":
        try:
            return _check(key, int(text.strip().replace("_", "")), where)
        except ValueError:
            raise ConfigError(f"{where}: '{key.name}' must be an integer, got {text!r}") from None
    if key.kind == "float":
        try:
            return _check(key, float(text), where)
        except ValueError:
            raise ConfigError(f"{where}: '{key.name}' must be a number, got {text!r}") from None
    if key.kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: '{key.name}' must be a boolean (true/false/1/0), got {text!r}")
    if key.kind == "list":
        return _check(key, [p.strip() for p in text.split(",") if p.strip()], where)
    return _check(key, text, where)


def _line_of(text: str, name: str) -> str:
    """' line N' where ``name`` is assigned in the TOML text (best effort), else ''."""
    pattern = re.compile(rf"^\s*(\"?){re.escape(name)}\1\s*=", re.MULTILINE)
    match = pattern.search(text)
    return f" line {text.count(chr(10), 0, match.start()) + 1}" if match else ""


def _read_file(path: Path) -> dict[str, Any]:
    """Flatten a TOML file into ``{key name: value}``; unknown keys and tables raise ConfigError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read: {exc.strerror}") from None
    text = raw.decode("utf-8", errors="replace")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: invalid TOML: {exc}") from None
    flat: dict[str, Any] = {}
    known = [k.name for k in KEYS]
    for name, value in doc.items():
        if name in _TABLES:
            if not isinstance(value, dict):
                raise ConfigError(f"{path}{_line_of(text, name)}: '{name}' must be a table ([{name}])")
            for sub, subvalue in value.items():
                full = f"{name}.{sub}"
                if full not in KEYS_BY_NAME:
                    raise ConfigError(
                        f"{path}{_line_of(text, sub)}: unknown key '{full}'{_suggest(full, known)}"
                    )
                flat[full] = subvalue
        elif name in KEYS_BY_NAME:
            flat[name] = value
        else:
            raise ConfigError(f"{path}{_line_of(text, name)}: unknown key '{name}'{_suggest(name, known)}")
    return {
        name: _check(KEYS_BY_NAME[name], v, f"{path}{_line_of(text, name.split('.')[-1])}")
        for name, v in flat.items()
    }


def load(
    *,
    config_file: Path | None = None,
    flags: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    euid: int | None = None,
) -> Config:
    """Build the effective configuration.

    ``config_file`` comes from ``--config`` (else ``KTRDR_CONFIG``; no file when neither is given).
    ``flags`` maps key names to the raw strings given on the command line. ``env`` defaults to
    ``os.environ`` and ``euid`` to ``os.geteuid()`` (root gets the system directories).
    """
    env = os.environ if env is None else env
    euid = os.geteuid() if euid is None else euid
    flags = flags or {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in KEYS:
        values[key.name] = key.default(env, euid) if callable(key.default) else key.default
        sources[key.name] = "default"
    if config_file is None and env.get("KTRDR_CONFIG"):
        config_file = Path(env["KTRDR_CONFIG"])
    if config_file is not None:
        for name, value in _read_file(config_file).items():
            values[name], sources[name] = value, f"file {config_file}"
    for key in KEYS:
        if key.env in env:
            values[key.name] = _from_text(key, env[key.env], f"environment {key.env}")
            sources[key.name] = f"env {key.env}"
    for name, text in flags.items():
        key = KEYS_BY_NAME[name]
        values[name] = _from_text(key, text, f"flag {key.flag}")
        sources[name] = f"flag {key.flag}"
    for name in ("runtime_dir", "state_dir"):
        if values[name] is None:
            key = KEYS_BY_NAME[name]
            raise ConfigError(f"{name}: no default here (XDG variables unset); set {key.flag} or {key.env}")
        values[name] = str(Path(values[name]).absolute())
    for rule in CROSS_KEY_RULES:
        rule(values, sources)
    return Config(values, sources, config_file)


def _tcp_hosts_need_tls(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """A ``HOST:PORT`` host address (``hosts.ib`` or one of ``hosts.training``) needs
    ``hosts.ca_file`` and ``hosts.token_file`` (TLS + token)."""
    missing = [name for name in ("hosts.ca_file", "hosts.token_file") if not values[name]]
    for key, addresses in (("hosts.ib", [values["hosts.ib"]]), ("hosts.training", values["hosts.training"])):
        for address in addresses:
            if address and not address.startswith("unix:") and missing:
                raise ConfigError(
                    f"{sources[key]}: {key!r} = {address!r} is a TCP address; host links over TCP use TLS "
                    f"and a bearer token: set {' and '.join(missing)}"
                )


#: Rules over several keys, checked after every source is applied; each raises ConfigError.
CROSS_KEY_RULES: tuple[Callable[[Mapping[str, Any], Mapping[str, str]], None], ...] = (_tcp_hosts_need_tls,)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) else f"{value:.1f}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(config: Config, write: Callable[[str], Any]) -> None:
    """Write the effective config as TOML, each line commented with its source (``--print-config``)."""
    write("# ktrdrd effective configuration (value  # source)\n")
    width = max(len(k.name) for k in KEYS)
    for key in KEYS:
        line = f"{key.name:<{width}} = {_toml_value(config.values[key.name])}"
        write(f"{line:<60}  # {config.sources[key.name]}\n")
