"""Text for people: tables, operation details, daemon info, progress summaries.

Inputs are canonical proto3 JSON objects as the daemon sends them (lowerCamelCase keys; fields
at their default value are absent; int64 as strings; Timestamps as RFC 3339 text; Durations as
``"12.5s"``). Every function is pure: it returns text and never prints. Times are shown in local
time; ``now`` is epoch seconds.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from ktrdr import wire

# -- scalar formatting ---------------------------------------------------------------------------


def short_id(name: str) -> str:
    """``operations/op_x`` → ``op_x``."""
    return name.removeprefix(wire.NAME_PREFIX)


def enum_name(value: str | None, prefix: str) -> str:
    """``OPERATION_STATE_RUNNING`` with prefix ``OPERATION_STATE_`` → ``RUNNING`` (absent → UNSPECIFIED)."""
    return (value or prefix + "UNSPECIFIED").removeprefix(prefix)


def state_name(op: dict[str, Any]) -> str:
    """``RUNNING`` for ``{"state": "OPERATION_STATE_RUNNING"}``."""
    return enum_name(op.get("state"), wire.STATE_ENUM_PREFIX)


def as_int(value: Any) -> int:
    """An int64 field (a string in proto3 JSON, sometimes a number) as int; absent → 0."""
    return int(value) if value not in (None, "") else 0


def parse_timestamp(text: str | None) -> float | None:
    """RFC 3339 text → epoch seconds; absent → None."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("z", "Z")).timestamp()


def parse_duration(text: str | None) -> float | None:
    """Proto3 JSON Duration (``"12.5s"``) → seconds; absent → None."""
    if not text:
        return None
    return float(text.removesuffix("s"))


def human_duration(seconds: float) -> str:
    """``4.2s``, ``3m05s``, ``2h07m``, ``3d04h``; negative values count as 0."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def local_time(epoch: float | None) -> str:
    """``2026-11-28 14:03:12`` in local time; None → ``-``."""
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def percent(fraction: float) -> str:
    return f"{min(max(fraction, 0.0), 1.0) * 100:3.0f}%"


def progress_bar(fraction: float, width: int = 20) -> str:
    """``[#######-------------]`` for ``fraction`` in 0..1 (clamped)."""
    filled = round(min(max(fraction, 0.0), 1.0) * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def progress_details(progress: dict[str, Any]) -> str:
    """``420/1000  epoch 12/50  ETA 1m05s`` — counts, message and ETA, whichever are set."""
    parts = []
    current, total = as_int(progress.get("current")), as_int(progress.get("total"))
    if total:
        parts.append(f"{current}/{total}")
    elif current:
        parts.append(str(current))
    if progress.get("message"):
        parts.append(progress["message"])
    eta = parse_duration(progress.get("eta"))
    if eta is not None:
        parts.append(f"ETA {human_duration(eta)}")
    return "  ".join(parts)


def elapsed(op: dict[str, Any], now: float) -> float | None:
    """Seconds from start (or creation) to end (or ``now``); None when never started."""
    start = parse_timestamp(op.get("startTime")) or parse_timestamp(op.get("createTime"))
    if start is None:
        return None
    end = parse_timestamp(op.get("endTime")) or now
    return end - start


def labels_text(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def status_text(status: dict[str, Any]) -> str:
    """A ``google.rpc.Status`` → ``FAILED_PRECONDITION: message (reason: X)``."""
    code = int(status.get("code", 2))
    code_name = wire.code_name(code)
    text = f"{code_name}: {status.get('message', '')}"
    details = status.get("details", [])
    reasons = [
        d["reason"] for d in details if isinstance(d, dict) and d.get("reason") not in (None, "", code_name)
    ]
    if reasons:
        text += f" (reason: {', '.join(reasons)})"
    return text


# -- tables and detail views ---------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, str(row[-1])]).rstrip())
    return "\n".join(lines)


def operations_table(ops: list[dict[str, Any]], now: float) -> str:
    """The ``ops list`` table: one row per operation, newest first as the daemon sends them."""
    headers = ["ID", "KIND", "STATE", "PROGRESS", "STAGE", "CREATED", "ELAPSED", "LABELS"]
    rows = []
    for op in ops:
        fraction = float((op.get("progress") or {}).get("fraction", 0.0))
        took = elapsed(op, now)
        rows.append(
            [
                short_id(op.get("name", "")),
                op.get("kind", ""),
                state_name(op),
                percent(fraction).strip(),
                op.get("stage", "") or "-",
                local_time(parse_timestamp(op.get("createTime"))),
                human_duration(took) if took is not None else "-",
                labels_text(op.get("labels")) or "-",
            ]
        )
    return table(headers, rows)


def _fields(pairs: list[tuple[str, str]]) -> list[str]:
    width = max(len(key) for key, _ in pairs)
    return [f"{key + ':':<{width + 1}} {value}" for key, value in pairs]


def _indented_json(value: Any) -> list[str]:
    return ["  " + line for line in json.dumps(value, indent=2, ensure_ascii=False).splitlines()]


def operation_detail(op: dict[str, Any], now: float) -> str:
    """The ``ops show`` view: identity, state, progress, times, then error or result."""
    progress = op.get("progress") or {}
    fraction = float(progress.get("fraction", 0.0))
    took = elapsed(op, now)
    pairs = [
        ("name", op.get("name", "")),
        ("kind", op.get("kind", "")),
        ("state", state_name(op) + (" (done)" if op.get("done") else "")),
        ("stage", op.get("stage", "") or "-"),
        ("progress", f"{progress_bar(fraction)} {percent(fraction)}  {progress_details(progress)}".rstrip()),
        ("labels", labels_text(op.get("labels")) or "-"),
        ("parent", op.get("parent", "") or "-"),
        ("request id", op.get("requestId", "") or "-"),
        ("created", local_time(parse_timestamp(op.get("createTime")))),
        ("started", local_time(parse_timestamp(op.get("startTime")))),
        ("updated", local_time(parse_timestamp(op.get("updateTime")))),
        ("ended", local_time(parse_timestamp(op.get("endTime")))),
        ("elapsed", human_duration(took) if took is not None else "-"),
        ("last seq", str(as_int(op.get("lastSeq")))),
    ]
    if op.get("error"):
        pairs.append(("error", status_text(op["error"])))
    lines = _fields(pairs)
    metrics = progress.get("metrics") or {}
    if metrics:
        lines.append("metrics:")
        lines.extend(f"  {key}: {value:g}" for key, value in sorted(metrics.items()))
    if op.get("result"):
        result = dict(op["result"])
        type_url = result.pop("@type", "")
        lines.append(f"result: {type_url.rsplit('/', 1)[-1]}")
        if result:
            lines.extend(_indented_json(result))
    return "\n".join(lines)


def info_detail(info: dict[str, Any]) -> str:
    """The ``status`` view: daemon identity, sockets and directories, then one row per host."""
    uptime = parse_duration(info.get("uptime"))
    pairs = [
        ("version", info.get("version", "")),
        ("instance", info.get("instanceId", "")),
        ("pid", str(info.get("pid", "")) or "-"),
        ("started", local_time(parse_timestamp(info.get("startTime")))),
        ("uptime", human_duration(uptime) if uptime is not None else "-"),
        ("runtime dir", info.get("runtimeDir", "") or "-"),
        ("grpc socket", info.get("grpcSocket", "") or "-"),
        ("ctl socket", info.get("ctlSocket", "") or "-"),
        ("state dir", info.get("stateDir", "") or "-"),
    ]
    lines = _fields(pairs)
    hosts = info.get("hosts") or []
    if not hosts:
        lines.append("hosts:       none configured")
        return "\n".join(lines)
    lines.append("hosts:")
    lines.extend("  " + line for line in hosts_table(hosts).splitlines())
    return "\n".join(lines)


def round_trip(text: str | None) -> str:
    """A round-trip Duration (``"0.000412s"``) as ``0.4 ms``; absent → ``-``."""
    seconds = parse_duration(text)
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else human_duration(seconds)


def hosts_table(hosts: list[dict[str, Any]]) -> str:
    """The ``hosts`` table (also in ``status``): one row per host, as GetInfo lists them. MESSAGE
    says why a host is not READY, else that its data are simulated (when they are)."""
    rows = [
        [
            host.get("name", ""),
            enum_name(host.get("kind"), "HOST_KIND_").lower(),
            host.get("address", "") or "-",
            enum_name(host.get("state"), "HOST_STATE_"),
            host.get("version", "") or "-",
            round_trip(host.get("roundTrip")),
            host.get("message", "") or ("simulated data" if host.get("simulated") else "-"),
        ]
        for host in hosts
    ]
    return table(["NAME", "KIND", "ADDRESS", "STATE", "VERSION", "RTT", "MESSAGE"], rows)
