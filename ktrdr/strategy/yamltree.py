"""YAML documents as trees of nodes that remember where they were written.

:func:`parse` composes the text with PyYAML's safe loader (no arbitrary objects) and wraps each node
in a :class:`YNode` carrying its key path and 1-based line/column, so every later complaint can
point at the exact place in the file. Scalars are converted with the safe loader's own rules
(``14`` → int, ``0.2`` → float, ``true`` → bool, quoted → str).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


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

    def __init__(self, node: yaml.Node, path: str, loader: yaml.SafeLoader):
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
            text = key if isinstance(key, str) else str(key)
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

    def value(self) -> Any:
        """The plain Python value of this node (scalars: str/int/float/bool/None)."""
        return self._loader.construct_object(self._node, deep=True)


def _mark(exc: yaml.MarkedYAMLError) -> tuple[int, int]:
    mark = exc.problem_mark or exc.context_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def parse(text: str) -> YNode | None:
    """The document's root node, or None for an empty document. Raises :class:`YamlSyntaxError`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            loader.construct_document(node)  # rejects unsafe tags and bad scalars up front
    except yaml.MarkedYAMLError as exc:
        line, col = _mark(exc)
        problem = exc.problem or str(exc)
        context = f" ({exc.context})" if exc.context else ""
        raise YamlSyntaxError(f"YAML syntax error: {problem}{context}", line, col) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"YAML syntax error: {exc}", 1, 1) from None
    finally:
        loader.dispose()
    return None if node is None else YNode(node, "", loader)
