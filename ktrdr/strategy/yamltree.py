"""YAML documents as trees of nodes that remember where they were written.

:func:`parse` composes the text with PyYAML's safe loader (no arbitrary objects) and wraps each node
in a :class:`YNode` carrying its key path and 1-based line/column, so every later complaint can
point at the exact place in the file. Scalars are converted with the safe loader's own rules
(``14`` → int, ``0.2`` → float, ``true`` → bool, quoted → str), plus YAML 1.2's exponent
without a dot (``1e-3`` → float, a string for YAML 1.1).

Hostile text is a :class:`YamlSyntaxError` with a line and column, never another exception:
characters YAML forbids (a NUL byte, an unpaired surrogate), nesting deeper than :data:`MAX_DEPTH`
(PyYAML composes and constructs recursively) and integers longer than :data:`MAX_INT_CHARS`
(Python refuses to convert more than 4,300 digits). Aliases never copy nodes, so an alias "bomb"
costs what its text costs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import CollectionEndEvent, CollectionStartEvent
from yaml.reader import Reader as _YamlReader

from ktrdr.excerpts import clip

#: Deepest nesting of mappings and lists accepted (a strategy needs 5); deeper text is refused
#: before it is composed.
MAX_DEPTH = 64
#: Longest integer accepted, in characters as written; longer ones are errors at their position.
MAX_INT_CHARS = 100
#: Characters of a key kept in the key paths of the nodes below it (paths appear in messages).
MAX_PATH_KEY_CHARS = 40

# libyaml's parser when PyYAML was built with it: composing a 1.6 MB document of unknown keys took
# 1.8 s of CPU against 6.7 s with the pure-Python parser (measured for issue 10, point 5).
try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


#: Plain (unquoted) keys YAML 1.1 would read as true/false/null (``on``, ``off``, ``yes``, ``no``,
#: ``y``, ``n``, ``null``, ``~``): in a strategy every key is a name, so they stay the text written
#: (a fuzzy set called ``off`` is "off", not False).
_TEXT_KEY_TAGS = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:null")


class _Loader(_SafeLoader):
    """The safe loader, refusing integers longer than :data:`MAX_INT_CHARS` at their position and
    keeping plain keys of :data:`_TEXT_KEY_TAGS` as their text."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        for knode, _ in node.value:
            if isinstance(knode, yaml.ScalarNode) and not knode.style and knode.tag in _TEXT_KEY_TAGS:
                knode.tag = "tag:yaml.org,2002:str"
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: SafeConstructor, node: yaml.ScalarNode) -> int:
    if len(node.value) > MAX_INT_CHARS:
        raise ConstructorError(
            None,
            None,
            f"an integer of {len(node.value)} characters is too long (at most {MAX_INT_CHARS})",
            node.start_mark,
        )
    return SafeConstructor.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as strings: an exponent without a dot, as in
# ``learning_rate: 1e-3``. The safe loader's float constructor converts them.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class YamlSyntaxError(ValueError):
    """Text that is not valid YAML; ``line``/``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Entry:
    """One key of a mapping: its text, where the key is written, and the value node."""

    key: Any
    line: int
    column: int
    value: YNode


class YNode:
    """A YAML node with its path. ``kind`` is ``"map"``, ``"seq"`` or ``"scalar"``."""

    __slots__ = ("_loader", "_node", "column", "kind", "line", "path")

    def __init__(self, node: yaml.Node, path: str, loader: SafeConstructor):
        self._node = node
        self._loader = loader
        self.path = path
        self.line = node.start_mark.line + 1
        self.column = node.start_mark.column + 1
        if isinstance(node, yaml.MappingNode):
            self.kind = "map"
        elif isinstance(node, yaml.SequenceNode):
            self.kind = "seq"
        else:
            self.kind = "scalar"

    def entries(self) -> list[Entry]:
        """The keys of a mapping in file order (duplicates included; the reader rejects them)."""
        out = []
        for knode, vnode in self._node.value:
            key = (
                self._loader.construct_object(knode, deep=True)
                if knode.tag != "tag:yaml.org,2002:str"
                else knode.value
            )
            text = _path_key(key)
            child = f"{self.path}.{text}" if self.path else text
            out.append(
                Entry(
                    key,
                    knode.start_mark.line + 1,
                    knode.start_mark.column + 1,
                    YNode(vnode, child, self._loader),
                )
            )
        return out

    def items(self) -> list[YNode]:
        """The elements of a sequence."""
        return [YNode(n, f"{self.path}[{i}]", self._loader) for i, n in enumerate(self._node.value)]

    def graft(self, child: str | int, text: str, *, line: int, column: int) -> YNode:
        """Replace this mapping's value of key ``child``, or this sequence's item ``child``, by the
        YAML value ``text``; a key absent from a mapping is appended. Returns the new child.

        The new nodes are placed at ``line``/``column`` (1-based), so every later complaint about
        them points where the caller says (an override points at the key it replaced). Raises
        :class:`YamlSyntaxError` (positions within ``text``) when ``text`` is not one YAML value,
        and ``IndexError`` for an item past the end of a sequence.
        """
        composed, _ = _compose(text)
        mark = yaml.Mark("<override>", 0, line - 1, column - 1, None, None)
        new = composed or yaml.ScalarNode("tag:yaml.org,2002:null", "", mark, mark)
        _restamp(new, mark)
        if self.kind == "seq":
            assert isinstance(child, int)
            self._node.value[child] = new
            return self.items()[child]
        pairs = self._node.value
        for index, (knode, _vnode) in enumerate(pairs):
            if knode.tag == "tag:yaml.org,2002:str" and knode.value == child:
                pairs[index] = (knode, new)
                break
        else:
            pairs.append((yaml.ScalarNode("tag:yaml.org,2002:str", str(child), mark, mark), new))
        return next(e.value for e in reversed(self.entries()) if e.key == child)

    def value(self) -> Any:
        """The plain Python value of this node (scalars: str/int/float/bool/None)."""
        return self._loader.construct_object(self._node, deep=True)


def _path_key(key: Any) -> str:
    """A key as written in key paths; a long one is cut to its first :data:`MAX_PATH_KEY_CHARS`."""
    text = key if isinstance(key, str) else str(key)
    return text if len(text) <= MAX_PATH_KEY_CHARS else text[:MAX_PATH_KEY_CHARS] + "…"


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of ``text[index]``."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _check_characters(text: str) -> None:
    """A :class:`YamlSyntaxError` at the first character that YAML does not allow."""
    bad = _YamlReader.NON_PRINTABLE.search(text)
    if bad is not None:
        line, column = _position(text, bad.start())
        raise YamlSyntaxError(
            f"YAML syntax error: character U+{ord(bad.group()):04X} is not allowed in YAML text",
            line,
            column,
        )


def _check_depth(text: str) -> None:
    """A :class:`YamlSyntaxError` at the first mapping or list nested deeper than :data:`MAX_DEPTH`.

    Reads the parser's events (iterative, no nodes built); syntax errors surface here first.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise YamlSyntaxError(
                    f"YAML nesting deeper than {MAX_DEPTH} levels", mark.line + 1, mark.column + 1
                )
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def _mark(exc: yaml.MarkedYAMLError) -> tuple[int, int]:
    mark = exc.problem_mark or exc.context_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _compose(text: str) -> tuple[yaml.Node | None, _Loader]:
    """The composed (and once constructed) node of ``text`` and its loader; raises
    :class:`YamlSyntaxError`."""
    _check_characters(text)
    loader = _Loader(text)
    try:
        _check_depth(text)
        node = loader.get_single_node()
        if node is not None:
            loader.construct_document(node)  # rejects unsafe tags and bad scalars up front
    except yaml.MarkedYAMLError as exc:
        line, col = _mark(exc)
        problem = exc.problem or str(exc)
        context = f" ({exc.context})" if exc.context else ""
        raise YamlSyntaxError(clip(f"YAML syntax error: {problem}{context}"), line, col) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(clip(f"YAML syntax error: {exc}"), 1, 1) from None
    finally:
        loader.dispose()
    return node, loader


def parse(text: str) -> YNode | None:
    """The document's root node, or None for an empty document. Raises :class:`YamlSyntaxError`."""
    node, loader = _compose(text)
    return None if node is None else YNode(node, "", loader)


def _restamp(node: yaml.Node, mark: yaml.Mark) -> None:
    """Give ``node`` and every node under it the position ``mark`` (iteratively: depth is bounded
    by :data:`MAX_DEPTH` already, but a wide value has many nodes)."""
    pending = [node]
    while pending:
        current = pending.pop()
        current.start_mark = current.end_mark = mark
        if isinstance(current, yaml.MappingNode):
            pending.extend(n for pair in current.value for n in pair)
        elif isinstance(current, yaml.SequenceNode):
            pending.extend(current.value)
