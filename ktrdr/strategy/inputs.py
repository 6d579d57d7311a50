"""The ``indicators`` and ``fuzzy_sets`` sections: what is computed and how it becomes features.

Indicator entries (a list). Two spellings, also mixable within one file:

* reference (v2): ``{name: rsi, period: 14, source: close}`` — ``name`` is the type and the id
  (lower-cased); every other key is a parameter. An optional ``type:`` overrides the type.
* explicit: ``{id: rsi_fast, type: rsi, params: {period: 7}, outputs: [value]}`` — ``id`` names the
  instance (``[A-Za-z][A-Za-z0-9_]*``, lower-cased), ``params`` holds the parameters and the optional
  ``outputs`` declares which outputs the fuzzy sets may read.

``feature_id`` is the predecessor's later spelling of ``id`` (``{name: rsi, feature_id: rsi_14,
period: 14}``, fuzzy sets keyed ``rsi_14``); an entry gives one of the two.

Types resolve only through :func:`ktrdr.research.indicators.lookup` (case-insensitive, aliases).
Every parameter is checked by ``IndicatorDef.resolve_params`` and passed through with defaults
filled. ``source: close`` on an indicator that reads high/low/close itself (the reference files
write it on ``stoch`` and ``adx``) is a warning; any other parameter the indicator does not take
is an error.

Fuzzy sets (a mapping key → sets). The key is the feature prefix (``{key}_{set}``) and, unless
``input`` says otherwise, the id of the indicator it reads. Reserved keys inside it:

* ``input: ID`` or ``input: ID.OUTPUT`` — the indicator (and output) to fuzzify;
* ``output: OUTPUT`` — a non-default output of the indicator (default: its ``default_output``);
* ``transform: none | close_ratio`` — ``close_ratio`` fuzzifies ``close / value``. It is the
  default for outputs in price units (:data:`PRICE_LEVEL_OUTPUTS`: moving averages, bands,
  channels, VWAP, SAR, SuperTrend, Ichimoku lines) — the reference grammar's meaning for ``sma``,
  whose sets are written around 1.0 — and ``none`` for everything else.

Every other key is a set: ``{type: triangular, parameters: [a, b, c]}`` or the shorthand
``[a, b, c]`` (triangular) / ``[a, b, c, d]`` (trapezoidal).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from ktrdr.excerpts import echo
from ktrdr.research.indicators import (
    IndicatorDef,
    IndicatorParamError,
    UnknownIndicatorError,
    lookup,
)
from ktrdr.strategy.model import FuzzyInputSpec, IndicatorSpec, MembershipSpec
from ktrdr.strategy.reader import Reader, listing, suggest
from ktrdr.strategy.yamltree import YNode

#: Longest indicator id, fuzzy key, fuzzy set name or symbol (names end up in feature names).
MAX_NAME_CHARS = 64
_IDENT = re.compile(rf"^[A-Za-z][A-Za-z0-9_]{{0,{MAX_NAME_CHARS - 1}}}$")
_IDENT_RULE = f"must match [A-Za-z][A-Za-z0-9_]* and be at most {MAX_NAME_CHARS} characters"
_ENTRY_KEYS = ("id", "feature_id", "name", "type", "params", "outputs")
_FUZZY_RESERVED = ("input", "output", "transform")
#: What other libraries call a look-back length; an unknown parameter spelled so suggests 'period'.
_PERIOD_WORDS = ("length", "len", "window", "lookback", "timeperiod", "n")
#: Names the predecessor registered as indicators that cannot be model inputs here, and why.
_LABEL_ONLY = {
    "zigzag": (
        "zigzag cannot be an indicator: its last swing moves with bars that come later (look-ahead); "
        "ZigZag is the label: training.labels.source: zigzag with zigzag_threshold"
    ),
}
TRANSFORMS = ("none", "close_ratio")
#: Outputs measured in price units: their fuzzy sets read ``close / value`` unless told otherwise,
#: so that sets written around 1.0 (as the reference files do for sma) work on any symbol.
PRICE_LEVEL_OUTPUTS: dict[str, tuple[str, ...]] = {
    "sma": ("value",),
    "ema": ("value",),
    "vwap": ("value",),
    "psar": ("value",),
    "supertrend": ("value",),
    "bbands": ("upper", "middle", "lower"),
    "keltner": ("upper", "middle", "lower"),
    "donchian": ("upper", "middle", "lower"),
    "ichimoku": ("tenkan", "kijun", "senkou_a", "senkou_b"),
}

#: Membership types → (parameter count, meaning of the parameters).
MEMBERSHIPS: dict[str, tuple[int, str]] = {
    "triangular": (3, "[a, b, c] with a <= b <= c and a < c"),
    "trapezoidal": (4, "[a, b, c, d] with a <= b <= c <= d and a < d"),
    "gaussian": (2, "[mean, sigma] with sigma > 0"),
    "sigmoid": (2, "[center, slope] with slope != 0"),
    "left_shoulder": (2, "[a, b] with a < b: 1 up to a, falling to 0 at b"),
    "right_shoulder": (2, "[a, b] with a < b: 0 up to a, rising to 1 at b"),
}


@dataclass
class _Indicator:
    spec: IndicatorSpec
    defn: IndicatorDef
    node: YNode
    declared: tuple[str, ...] | None
    used: bool = False


def read_indicators(r: Reader, node: YNode | None) -> dict[str, _Indicator | None]:
    """Indicator entries by id, in file order; None for an entry whose id is known but which has
    errors (so that fuzzy sets reading it are not reported a second time). Errors go to ``r``."""
    out: dict[str, _Indicator | None] = {}
    for item in r.seq(node) or []:
        ident, ind = _read_indicator(r, item)
        if ident is None:
            continue
        if ident in out:
            r.error(
                item,
                f"duplicate indicator id {echo(ident)}; give each instance its own 'id' (or 'feature_id')",
            )
            continue
        out[ident] = ind
    if node is not None and node.kind == "seq" and not node.items():
        r.error(node, "no indicators: the list is empty")
    return out


def _read_indicator(r: Reader, item: YNode) -> tuple[str | None, _Indicator | None]:
    """The entry's lower-cased id (None if it has none) and the indicator (None on errors)."""
    if item.kind != "map":
        r.error(item, "an indicator entry must be a mapping such as {name: rsi, period: 14}")
        return None, None
    struct: dict[str, YNode] = {}
    flat: dict[str, YNode] = {}
    seen: set[str] = set()
    for e in item.entries():
        key = str(e.key)
        if key in seen:
            r.error(e.value, f"duplicate key {echo(key)}", line=e.line, column=e.column)
            continue
        seen.add(key)
        (struct if key in _ENTRY_KEYS else flat)[key] = e.value
    id_node = struct.get("id") or struct.get("feature_id")
    name = r.scalar(struct.get("name"), "str")
    type_node = struct.get("type") or struct.get("name")
    type_name = r.scalar(struct.get("type"), "str") or name
    ident_node = id_node or type_node
    ident = r.scalar(id_node, "str") or name or type_name
    if ident is None:
        if ident_node is None:
            r.error(item, "missing 'type' (or 'name') naming the indicator")
        return None, None
    if not _IDENT.match(ident):
        r.error(ident_node or item, f"indicator id {echo(ident)} {_IDENT_RULE}")
        return None, None
    ident = ident.lower()
    if "id" in struct and "feature_id" in struct:
        r.error(struct["feature_id"], "give the indicator's id once: 'id' or 'feature_id' (the same key)")
        return ident, None
    if type_name is None:
        r.error(item, "missing 'type' naming the indicator")
        return ident, None
    label_only = _LABEL_ONLY.get(re.sub(r"[\s_\-]", "", type_name.lower()))
    if label_only is not None:
        r.error(type_node or item, label_only)
        return ident, None
    try:
        defn = lookup(type_name)
    except UnknownIndicatorError as exc:
        r.error(
            type_node or item,
            f"unknown indicator {echo(type_name)}{suggest(type_name, exc.known)}; known: {', '.join(exc.known)}",
        )
        return ident, None
    params_node = struct.get("params")
    if params_node is not None:
        for key, vnode in flat.items():
            r.error(
                vnode, f"unknown key {echo(key)}{suggest(key, _ENTRY_KEYS)}; parameters go under 'params'"
            )
        flat = r.fields(
            params_node, [e.key for e in params_node.entries()] if params_node.kind == "map" else []
        )
    params = _read_params(r, defn, flat)
    declared = _read_declared_outputs(r, defn, struct.get("outputs"))
    if params is None or declared == ():
        return ident, None
    return ident, _Indicator(IndicatorSpec(ident, defn.name, params), defn, item, declared)


def _read_params(r: Reader, defn: IndicatorDef, nodes: dict[str, YNode]) -> dict[str, Any] | None:
    given: dict[str, Any] = {}
    canonical_of: dict[str, tuple[str, Any]] = {}  # canonical name → (key as written, value)
    ok = True
    takes = ", ".join(p.name for p in defn.params) or "no parameters"
    for key, vnode in nodes.items():
        param = defn.param_index.get(key)
        if param is None:
            value = vnode.value() if vnode.kind == "scalar" else None
            if key == "source" and isinstance(value, str) and value.lower() == "close":
                r.warn(
                    vnode,
                    f"{defn.name} takes no price source (it reads the bars it needs); "
                    "'source: close' has no effect",
                )
                continue
            hint = suggest(key, defn.param_index)
            if not hint and key.lower() in _PERIOD_WORDS and "period" in defn.param_index:
                hint = " (did you mean 'period'?)"
            r.error(vnode, f"{defn.name} has no parameter {echo(key)}{hint}; it takes: {takes}")
            ok = False
            continue
        if vnode.kind != "scalar":
            r.error(vnode, f"{defn.name}.{param.name}: expected a single value")
            ok = False
            continue
        value = vnode.value()
        try:
            _, checked = defn.resolve_param(key, value)
        except IndicatorParamError as exc:
            r.error(vnode, str(exc))
            ok = False
            continue
        if param.name in canonical_of:
            # The predecessor's names for one of our parameters (psar's initial_af and step_af):
            # fine when they agree.
            first_key, first_value = canonical_of[param.name]
            if checked != first_value:
                r.error(
                    vnode,
                    f"parameter {param.name!r} given twice with different values ({echo(first_key)}: "
                    f"{echo(first_value)}, {echo(key)}: {echo(checked)}); {defn.name} has one {param.name!r}",
                )
                ok = False
            continue
        canonical_of[param.name] = (key, checked)
        if param.inert:
            r.warn(vnode, f"accepted but has no effect: {defn.name}.{param.name}: {param.doc}")
        given[key] = value
    if not ok:
        return None
    try:
        return defn.resolve_params(given)
    except IndicatorParamError as exc:  # a constraint between parameters
        first = next(iter(nodes.values()), None)
        if first is not None:
            r.error(first, str(exc))
        return None


def _read_declared_outputs(r: Reader, defn: IndicatorDef, node: YNode | None) -> tuple[str, ...] | None:
    """The declared outputs; None when absent, () when any of them is invalid (errors recorded)."""
    items = r.seq(node)
    if items is None:
        return None if node is None else ()
    if not items:
        r.error(node, "outputs: list at least one output, or leave the key out")
        return ()
    out = []
    for it in items:
        name = r.scalar(it, "str")
        if name is None:
            continue
        if name not in defn.outputs:
            r.error(
                it,
                f"{defn.name} has no output {echo(name)}{suggest(name, defn.outputs)}; "
                f"outputs: {', '.join(defn.outputs)}",
            )
            continue
        out.append(name)
    return tuple(out) if len(out) == len(items) else ()


def read_fuzzy(
    r: Reader, node: YNode | None, indicators: dict[str, _Indicator | None]
) -> list[FuzzyInputSpec]:
    """Fuzzy inputs in file order; marks the indicators they read as used."""
    if node is None:
        return []
    if node.kind != "map":
        r.error(node, "expected a mapping indicator-id → sets")
        return []
    out: list[FuzzyInputSpec] = []
    keys: set[str] = set()
    for e in node.entries():
        key = str(e.key)
        if not _IDENT.match(key):
            r.error(
                e.value,
                f"fuzzy key {echo(key)} {_IDENT_RULE}",
                line=e.line,
                column=e.column,
            )
            continue
        if key.lower() in keys:
            r.error(e.value, f"duplicate fuzzy key {echo(key)}", line=e.line, column=e.column)
            continue
        keys.add(key.lower())
        spec = _read_fuzzy_input(r, key, e.line, e.column, e.value, indicators)
        if spec is not None:
            out.append(spec)
    if not node.entries():
        r.error(node, "no fuzzy sets: the model would have no features")
    return out


def _read_fuzzy_input(
    r: Reader, key: str, line: int, column: int, node: YNode, indicators: dict[str, _Indicator | None]
) -> FuzzyInputSpec | None:
    if node.kind != "map":
        r.error(node, "expected a mapping of set name → {type, parameters}")
        return None
    reserved: dict[str, YNode] = {}
    set_nodes: dict[str, YNode] = {}
    misnamed = False  # a set whose name is too long: reported, and the input is not built
    for e in node.entries():
        name = str(e.key)
        if name in _FUZZY_RESERVED:
            reserved[name] = e.value
        elif name in set_nodes:
            r.error(e.value, f"duplicate fuzzy set {echo(name)}", line=e.line, column=e.column)
        elif len(name) > MAX_NAME_CHARS:
            r.error(
                e.value,
                f"fuzzy set name {echo(name)} is longer than {MAX_NAME_CHARS} characters",
                line=e.line,
                column=e.column,
            )
            misnamed = True
        else:
            set_nodes[name] = e.value
    ok = not misnamed
    source = r.scalar(reserved.get("input"), "str", key)
    ind_id, _, out_from_input = source.partition(".")
    ind = indicators.get(ind_id.lower())
    if ind is None and ind_id.lower() in indicators:
        ok = False  # the indicator entry has errors of its own
    elif ind is None:
        where = reserved.get("input")
        msg = (
            f"fuzzy sets for indicator {echo(ind_id)}, which is not defined{suggest(ind_id, indicators)}; "
            f"indicators: {listing(indicators) or 'none'}"
        )
        if where is None:
            r.error(node, msg, line=line, column=column)
        else:
            r.error(where, msg)
        ok = False
    output = r.scalar(reserved.get("output"), "str")
    if output is not None and out_from_input:
        r.error(reserved["output"], f"output given twice: in 'input' ({echo(source)}) and in 'output'")
        ok = False
    output = output or out_from_input or None
    if ind is not None:
        ind.used = True
        output = output or ind.defn.default_output
        allowed = ind.declared if ind.declared is not None else ind.defn.outputs
        if output not in allowed:
            at = reserved.get("output") or reserved.get("input") or node
            r.error(
                at,
                f"indicator {echo(ind.spec.id)} ({ind.defn.name}) has no {'declared ' if ind.declared else ''}"
                f"output {echo(output)}{suggest(output, allowed)}; outputs: {', '.join(allowed)}",
            )
            ok = False
    price_level = ind is not None and output in PRICE_LEVEL_OUTPUTS.get(ind.defn.name, ())
    default_transform = "close_ratio" if price_level else "none"
    transform = r.scalar(reserved.get("transform"), "str", default_transform, choices=TRANSFORMS)
    sets = [m for m in (_read_membership(r, name, n) for name, n in set_nodes.items()) if m is not None]
    if not set_nodes and not misnamed:
        r.error(node, f"fuzzy key {echo(key)} defines no sets", line=line, column=column)
        ok = False
    if not ok or len(sets) != len(set_nodes) or ind is None:
        return None
    return FuzzyInputSpec(key.lower(), ind.spec.id, output, tuple(sets), transform)


def _read_membership(r: Reader, name: str, node: YNode) -> MembershipSpec | None:
    if node.kind == "seq":
        params_node, type_ = node, {3: "triangular", 4: "trapezoidal"}.get(len(node.items()))
        if type_ is None:
            r.error(
                node, f"set {echo(name)}: a list shorthand needs 3 (triangular) or 4 (trapezoidal) numbers"
            )
            return None
    else:
        f = r.fields(node, ("type", "parameters"))
        if node.kind != "map":
            return None
        type_ = r.scalar(r.require(node, f, "type"), "str", choices=tuple(MEMBERSHIPS))
        params_node = r.require(node, f, "parameters")
        if type_ is None or params_node is None:
            return None
    items = r.seq(params_node)
    if items is None:
        return None
    values = [r.scalar(it, "float") for it in items]
    if any(v is None for v in values):
        return None
    count, meaning = MEMBERSHIPS[type_]
    problem = membership_problem(type_, values)
    if problem:
        r.error(params_node, f"set {echo(name)} ({type_}): {problem}; expected {count} parameters {meaning}")
        return None
    return MembershipSpec(name, type_, tuple(values))


def membership_problem(type_: str, p: list[float]) -> str:
    """Why ``p`` is not a valid parameter list for membership ``type_``; empty when it is."""
    count, _ = MEMBERSHIPS[type_]
    if len(p) != count:
        return f"got {len(p)} parameters"
    if type_ in ("triangular", "trapezoidal"):
        if any(a > b for a, b in itertools.pairwise(p)) or p[0] >= p[-1]:
            return f"parameters {p} are not monotonic"
    elif type_ == "gaussian" and p[1] <= 0:
        return f"sigma {p[1]} is not > 0"
    elif type_ == "sigmoid" and p[1] == 0:
        return "slope is 0"
    elif type_ in ("left_shoulder", "right_shoulder") and p[0] >= p[1]:
        return f"parameters {p} are not increasing"
    return ""


def warn_unused(r: Reader, indicators: dict[str, _Indicator | None]) -> None:
    """Warn about indicators that no fuzzy set reads: they would be computed for nothing."""
    for ind in indicators.values():
        if ind is not None and not ind.used:
            r.warn(
                ind.node,
                f"indicator {echo(ind.spec.id)} has no fuzzy sets, so it never reaches the model",
            )
