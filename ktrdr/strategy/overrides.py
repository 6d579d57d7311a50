"""``--set path=value`` overrides of a strategy document, and sweeps of them.

An override replaces one value of the parsed YAML tree before the document is read, so the normal
validation judges it and every other issue keeps the line numbers of the file. Usage::

    overrides = [parse_override("model.training.learning_rate=0.01")]
    load_strategy_text(text, source="s.yaml", overrides=overrides)

Paths (:func:`parse_path`): keys separated by dots, list items in brackets, by position or by
name: ``model.training.learning_rate``, ``indicators[0].period``, ``indicators[rsi].period`` (the
item whose ``id`` or ``feature_id``, else whose ``name``, is ``rsi``; lower-case as the loader makes
ids), ``training_data.symbols.list[1]``. A key absent from a mapping is added there (an absent section
as an empty mapping; an absent list is an error), and the grammar decides whether it is allowed, as for a key written in the
file: an unknown one is an error with its "did you mean" and the keys allowed there, at the line
of the mapping it was added to. A path that cannot be followed (an item past the end of a list,
a name no item has, a key into a single value) is an error at the line of the last node that
exists, naming what is there and the closest name.

Values are YAML text (``0.01`` → a number, ``true`` → a boolean, ``[32, 16]`` → a list, quoted →
a string), checked by the loader like the file's own; every issue about an overridden value names
the override (``… (from --set indicators[0].period=abc)``) and points at the key it replaced.

Sweeps (:func:`expand_sweeps`): ``path=v1,v2,…`` gives one run per value; several sweeps give
their cartesian product (the first varies slowest), at most :data:`MAX_SWEEP_POINTS` runs.
Commas inside brackets, braces or quotes do not split (``hidden_layers=[64,32],[32]`` is two values).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ktrdr import wire
from ktrdr.excerpts import echo
from ktrdr.strategy.issues import StrategyIssue
from ktrdr.strategy.reader import Reader, listing, suggest
from ktrdr.strategy.yamltree import YamlSyntaxError, YNode

#: Most runs one set of sweeps may expand to.
MAX_SWEEP_POINTS = 1_000
#: Longest override path and value, in characters, and most overrides of one document.
MAX_PATH_CHARS = 512
MAX_VALUE_CHARS = 4_096
MAX_OVERRIDES = 256

_KEY = r"[^.\[\]=\s]+"
_SEGMENT = re.compile(rf"({_KEY})((?:\[[^\[\]]+\])*)")
_INDEX = re.compile(r"\[([^\[\]]+)\]")
#: Keys a list item may be named by in ``items[NAME]``, in the order they are tried.
_NAME_KEYS = ("id", "feature_id", "name")


class OverrideError(ValueError):
    """An override or sweep that cannot be understood (before any document is looked at)."""


@dataclass(frozen=True)
class Override:
    """``path`` (as written) set to the YAML text ``value``."""

    path: str
    value: str

    def __str__(self) -> str:
        return f"--set {self.path}={self.value}"


def parse_override(text: str) -> Override:
    """``path=value`` → :class:`Override`; :class:`OverrideError` without ``=`` or with a bad path."""
    path, sep, value = text.partition("=")
    if not sep:
        raise OverrideError(f"{echo(text)}: expected PATH=VALUE (model.training.learning_rate=0.01)")
    return checked(Override(path.strip(), value))


def checked(override: Override) -> Override:
    """``override`` if its path parses and both parts are within the limits; else OverrideError."""
    if len(override.value) > MAX_VALUE_CHARS:
        raise OverrideError(
            f"{override.path}: the value is {len(override.value):,} characters, over the limit of "
            f"{MAX_VALUE_CHARS:,}"
        )
    parse_path(override.path)
    return override


def parse_path(path: str) -> list[str | int]:
    """The segments of ``path``: keys and names as str, list positions as int.

    A bracketed name is returned as ``"[name]"`` (brackets kept) so it is told apart from a key.
    """
    if not path:
        raise OverrideError("empty override path: expected a key path like model.training.epochs")
    if len(path) > MAX_PATH_CHARS:
        raise OverrideError(f"override path of {len(path):,} characters, over the limit of {MAX_PATH_CHARS}")
    segments: list[str | int] = []
    for part in path.split("."):
        match = _SEGMENT.fullmatch(part)
        if match is None:
            raise OverrideError(
                f"bad override path {echo(path)} at {echo(part)}: expected key, key[0] or key[name] "
                "parts joined by dots"
            )
        segments.append(match.group(1))
        for index in _INDEX.findall(match.group(2)):
            text = index.strip()
            segments.append(int(text) if text.isdigit() else f"[{text}]")
    return segments


def _position(parent: YNode, where: tuple[int, int] | None) -> tuple[int, int]:
    return where if where is not None else (parent.line, parent.column)


def _lookup(node: YNode, segment: str | int) -> tuple[YNode, tuple[int, int]] | str:
    """The child of ``node`` at ``segment`` and where its key is written, or a problem text."""
    shown = node.path
    if _is_key(segment):
        assert isinstance(segment, str)
        if node.kind != "map":
            return f"{shown or 'the document'} is {_kind_text(node)}, not a mapping: no key {segment!r} in it"
        entries = [e for e in node.entries() if isinstance(e.key, str)]
        for entry in entries:
            if entry.key == segment:
                return entry.value, (entry.line, entry.column)
        keys = [e.key for e in entries]
        return f"no key {segment!r} in {shown or 'the document'}{suggest(segment, keys)}; keys here: {listing(keys) or 'none'}"
    if node.kind != "seq":
        return f"{shown or 'the document'} is {_kind_text(node)}, not a list: no item {_shown(segment)}"
    items = node.items()
    if isinstance(segment, int):
        if segment >= len(items):
            positions = f" (0..{len(items) - 1})" if items else ""
            return f"no item {segment} in {shown}: the list has {len(items)} item(s){positions}"
        return items[segment], (items[segment].line, items[segment].column)
    name = segment[1:-1]
    for key in _NAME_KEYS:
        named = [item for item in items if _field(item, key) == name]
        if len(named) > 1:
            return f"{len(named)} items of {shown} have {key} {name!r}: use a position ({shown}[0])"
        if named:
            return named[0], (named[0].line, named[0].column)
    names = [
        n for item in items for n in [next(filter(None, (_field(item, k) for k in _NAME_KEYS)), None)] if n
    ]
    return f"no item named {name!r} in {shown}{suggest(name, names)}; names here: {listing(names) or 'none'}"


def _field(item: YNode, key: str) -> str | None:
    """The string value of ``item[key]`` (lower-cased, as the loader makes ids), or None."""
    if item.kind != "map":
        return None
    for entry in item.entries():
        if entry.key == key and entry.value.kind == "scalar":
            value = entry.value.value()
            return value.lower() if isinstance(value, str) else None
    return None


def _shown(segment: str | int) -> str:
    return f"[{segment}]" if isinstance(segment, int) else segment


def _kind_text(node: YNode) -> str:
    return {"map": "a mapping", "seq": "a list"}.get(node.kind, "a single value")


def apply_overrides(root: YNode, overrides: Iterable[Override], reader: Reader) -> dict[str, Override]:
    """Graft each override into the tree under ``root``, in order (a later one on the same path wins).

    Problems (a path that leaves the document, a value that is not YAML) are errors in ``reader``
    at the line of the last node that exists, and that override is skipped. Returns the applied
    overrides by the key path of the node they replaced (``indicators[0].period``), for
    :func:`annotate`.
    """
    applied: dict[str, Override] = {}
    for override in overrides:
        segments = parse_path(override.path)
        parent, where = root, None
        problem = ""
        for depth, segment in enumerate(segments[:-1]):
            step = _lookup(parent, segment)
            into_key = _is_key(segments[depth + 1])  # an absent list cannot be indexed: an error
            if isinstance(step, str) and parent.kind == "map" and _is_key(segment) and into_key:
                line, column = _position(parent, where)  # an absent section: added, empty
                parent = parent.graft(segment, "{}", line=line, column=column)
                applied[parent.path] = override
                continue
            if isinstance(step, str):
                problem = step
                break
            parent, where = step
        last = segments[-1]
        found = problem or _lookup(parent, last)
        if isinstance(found, str) and (problem or parent.kind != "map" or not _is_key(last)):
            line, column = _position(parent, where)
            reader.error(parent, f"{override}: {found}", line=line, column=column)
            continue
        if isinstance(found, str):  # a missing last key: added where its mapping is written
            child: str | int = last
            line, column = _position(parent, where)
        else:
            child = last if _is_key(last) else _item_index(found[0])
            line, column = found[1]
        try:
            new = parent.graft(child, override.value, line=line, column=column)
        except YamlSyntaxError as exc:
            reader.error(parent, f"{override}: the value is not YAML: {exc}", line=line, column=column)
            continue
        applied[new.path] = override
    return applied


def _is_key(segment: str | int) -> bool:
    return isinstance(segment, str) and not segment.startswith("[")


def _item_index(item: YNode) -> int:
    """The position of ``item`` (a node :meth:`YNode.items` returned) in its list."""
    return int(item.path.rsplit("[", 1)[1].rstrip("]"))


def annotate(issues: Sequence[StrategyIssue], applied: dict[str, Override]) -> list[StrategyIssue]:
    """``issues`` with `` (from --set …)`` added to each one about an overridden value or under it."""
    if not applied:
        return list(issues)
    out = []
    for issue in issues:
        override = _covering(issue.path, applied)
        if override is not None and str(override) not in issue.message:
            issue = StrategyIssue(
                issue.source, issue.line, issue.column, issue.path, f"{issue.message} (from {override})"
            )
        out.append(issue)
    return out


def _covering(path: str, applied: dict[str, Override]) -> Override | None:
    for prefix, override in applied.items():
        if path == prefix or path.startswith((prefix + ".", prefix + "[")):
            return override
    return None


# -- sweeps --------------------------------------------------------------------------------------


def split_values(text: str) -> list[str]:
    """:func:`ktrdr.wire.split_sweep_values`, with OverrideError for an empty value between commas."""
    try:
        return wire.split_sweep_values(text)
    except ValueError as exc:
        raise OverrideError(f"{echo(text)}: {exc}") from None


def expand_sweeps(sweeps: Sequence[str | tuple[str, Sequence[str]]]) -> list[list[Override]]:
    """The runs of a set of sweeps: one override list per point of their cartesian product, the
    first sweep varying slowest. No sweeps → one run with no overrides.

    Each sweep is the command-line text ``path=v1,v2,…`` (split by :func:`split_values`), or a
    ``(path, values)`` pair as ``ParameterSweep`` carries it (values taken as they are).
    OverrideError (nothing expanded) for a malformed sweep or path, a sweep with no values, a path
    swept twice, or more than :data:`MAX_SWEEP_POINTS` points (the message gives the count and its
    factors).
    """
    axes: list[list[Override]] = []
    seen: set[str] = set()
    for sweep in sweeps:
        if isinstance(sweep, str):
            path, sep, text = sweep.partition("=")
            if not sep:
                raise OverrideError(
                    f"{echo(sweep)}: expected PATH=VALUE[,VALUE…] (model.training.epochs=10,20)"
                )
            values = split_values(text)
        else:
            path, values = sweep[0], list(sweep[1])
        path = path.strip()
        if not values:
            raise OverrideError(f"{path}: a sweep needs at least one value")
        if path in seen:
            raise OverrideError(f"{path}: swept twice; give all its values in one --set {path}=v1,v2")
        seen.add(path)
        axes.append([checked(Override(path, value)) for value in values])
    points = math.prod(len(axis) for axis in axes)
    if points > MAX_SWEEP_POINTS:
        factors = " × ".join(str(len(axis)) for axis in axes)
        raise OverrideError(
            f"the sweep has {points:,} points ({factors}), over the limit of {MAX_SWEEP_POINTS:,}: "
            "sweep fewer values"
        )
    return [list(point) for point in itertools.product(*axes)]
