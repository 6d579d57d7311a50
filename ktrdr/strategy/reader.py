"""Typed, located access to a YAML tree that collects every problem instead of stopping at the first.

A :class:`Reader` is handed :class:`~ktrdr.strategy.yamltree.YNode` values and returns plain Python
values; a value that fails its check is recorded as an error and returned as the caller's default,
so loading continues and the user sees all errors at once. Keys that the grammar accepts but that
have no effect are recorded as warnings with the reason.

Work and answers stay bounded on hostile documents: the first :data:`MAX_ISSUES` errors (and
warnings) are kept and the rest only counted (``omitted_errors``, ``omitted_warnings``), without
building their messages; messages echo at most a short excerpt of the input
(:mod:`ktrdr.excerpts`); "did you mean" looks only at short words and short candidate lists.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from ktrdr.excerpts import clip, echo
from ktrdr.strategy.issues import StrategyIssue
from ktrdr.strategy.yamltree import YNode

#: Errors kept per document, and warnings kept per document; further ones are only counted.
MAX_ISSUES = 100
#: Longest word, and longest candidate list, for which "did you mean" is looked up (difflib's cost
#: grows with both; typos of grammar keys and indicator names are far inside these bounds).
MAX_SUGGEST_WORD = 64
MAX_SUGGEST_CANDIDATES = 200
#: Names listed in a message ("known: a, b, …"); longer lists end with how many there are in all.
MAX_LISTED = 30

_KIND_WORDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}


def suggest(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string.

    Empty without looking when ``word`` is longer than :data:`MAX_SUGGEST_WORD` characters or there
    are more than :data:`MAX_SUGGEST_CANDIDATES` candidates.
    """
    text = str(word)
    if len(text) > MAX_SUGGEST_WORD:
        return ""
    pool = list(itertools.islice(candidates, MAX_SUGGEST_CANDIDATES + 1))
    if len(pool) > MAX_SUGGEST_CANDIDATES:
        return ""
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(text.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def listing(names: Collection[str]) -> str:
    """``a, b, c``: the first :data:`MAX_LISTED` names, then ``… (N in all)`` if there are more."""
    shown = ", ".join(itertools.islice(names, MAX_LISTED))
    return f"{shown}, … ({len(names)} in all)" if len(names) > MAX_LISTED else shown


class Reader:
    """Collects errors and warnings for one source while values are read."""

    def __init__(self, source: str):
        self.source = source
        self.errors: list[StrategyIssue] = []
        self.warnings: list[StrategyIssue] = []
        self.omitted_errors = 0
        self.omitted_warnings = 0

    @property
    def errors_full(self) -> bool:
        """True once :data:`MAX_ISSUES` errors are kept: a caller may skip building a message."""
        return len(self.errors) >= MAX_ISSUES

    def error(self, at: YNode, message: str, *, line: int | None = None, column: int | None = None) -> None:
        if self.errors_full:
            self.omitted_errors += 1
            return
        self.errors.append(
            StrategyIssue(self.source, line or at.line, column or at.column, at.path, clip(message))
        )

    def warn(self, at: YNode, message: str, *, line: int | None = None, column: int | None = None) -> None:
        if len(self.warnings) >= MAX_ISSUES:
            self.omitted_warnings += 1
            return
        self.warnings.append(
            StrategyIssue(self.source, line or at.line, column or at.column, at.path, clip(message))
        )

    def fields(
        self,
        node: YNode | None,
        known: Iterable[str],
        no_effect: Mapping[str, str] | None = None,
    ) -> dict[str, YNode]:
        """The entries of a mapping node whose keys are in ``known``.

        Keys in ``no_effect`` are accepted and reported as warnings with the given reason; any other
        key is an error with a suggestion; duplicate keys are errors. A non-mapping node is an error
        and yields ``{}``; None (section absent) yields ``{}``.
        """
        if node is None:
            return {}
        if node.kind != "map":
            self.error(node, f"expected a mapping of keys, got {_describe(node)}")
            return {}
        known = dict.fromkeys(known)
        no_effect = no_effect or {}
        out: dict[str, YNode] = {}
        seen: set[str] = set()
        for entry in node.entries():
            key = entry.key
            if not isinstance(key, str):
                self.error(
                    entry.value,
                    f"keys must be strings, got {echo(key)}",
                    line=entry.line,
                    column=entry.column,
                )
                continue
            if key in seen:
                self.error(entry.value, f"duplicate key {echo(key)}", line=entry.line, column=entry.column)
                continue
            seen.add(key)
            if key in known:
                out[key] = entry.value
            elif key in no_effect:
                self.warn(
                    entry.value,
                    f"accepted but has no effect: {no_effect[key]}",
                    line=entry.line,
                    column=entry.column,
                )
            elif self.errors_full:
                self.omitted_errors += 1
            else:
                allowed = sorted((*known, *no_effect))
                self.error(
                    entry.value,
                    f"unknown key {echo(key)}{suggest(key, allowed)}; allowed here: {listing(allowed)}",
                    line=entry.line,
                    column=entry.column,
                )
        return out

    def require(self, parent: YNode | None, fields: Mapping[str, YNode], key: str) -> YNode | None:
        """``fields[key]``, or an error at ``parent`` saying the key is missing."""
        if key in fields:
            return fields[key]
        if parent is not None:
            self.error(parent, f"missing required key {key!r}")
        return None

    def scalar(
        self,
        node: YNode | None,
        kind: str,
        default: Any = None,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        above: float | None = None,
        below: float | None = None,
        choices: Iterable[str] | None = None,
    ) -> Any:
        """A scalar of ``kind`` (``str``, ``int``, ``float``, ``bool``) checked against bounds.

        ``minimum``/``maximum`` are inclusive, ``above``/``below`` exclusive. An ``int`` may be
        written as an integral number (``32.0`` is 32). ``choices`` (for
        strings) are matched case-insensitively and returned lower-cased. Absent node → ``default``;
        a failed check is recorded and returns ``default``.
        """
        if node is None:
            return default
        value: Any = node.value() if node.kind == "scalar" else None
        ok = node.kind == "scalar" and _is_kind(value, kind)
        if not ok:
            self.error(node, f"expected {_KIND_WORDS[kind]}, got {_describe(node)}")
            return default
        if kind == "float":
            value = float(value)
        elif kind == "int":
            value = int(value)  # 32.0 is 32, as for indicator parameters
        if kind == "str":
            value = value.strip()
            if choices is not None:
                options = tuple(choices)
                if value.lower() not in options:
                    self.error(
                        node,
                        f"expected one of {', '.join(options)}, got {echo(value)}{suggest(value, options)}",
                    )
                    return default
                value = value.lower()
            return value
        if kind in ("int", "float"):
            problem = _bounds(value, minimum, maximum, above, below)
            if problem:
                self.error(node, f"{problem}, got {echo(value)}")
                return default
        return value

    def seq(self, node: YNode | None) -> list[YNode] | None:
        """The items of a sequence node; an error and None for anything else; None if absent."""
        if node is None:
            return None
        if node.kind != "seq":
            self.error(node, f"expected a list, got {_describe(node)}")
            return None
        return node.items()


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, int | float) and math.isfinite(value)


def _bounds(
    v: float, minimum: float | None, maximum: float | None, above: float | None, below: float | None
) -> str:
    if minimum is not None and v < minimum:
        return f"must be >= {minimum}"
    if maximum is not None and v > maximum:
        return f"must be <= {maximum}"
    if above is not None and v <= above:
        return f"must be > {above}"
    if below is not None and v >= below:
        return f"must be < {below}"
    return ""


def _describe(node: YNode) -> str:
    if node.kind == "map":
        return "a mapping"
    if node.kind == "seq":
        return "a list"
    value = node.value()
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {echo(value)}"
