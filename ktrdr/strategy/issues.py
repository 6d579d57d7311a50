"""Problems found in a strategy file: where (file, line, column, key path) and what.

Lines and columns are 1-based, as editors show them. ``path`` names the key in dotted form with list
indices in brackets (``indicators[1].period``, ``fuzzy_sets.rsi.oversold.parameters``); it is empty
for problems with the whole document (a YAML syntax error).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StrategyIssue:
    """One error or warning."""

    source: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class StrategyError(ValueError):
    """A strategy that cannot be loaded.

    ``issues``: the errors kept, in file order (the loader keeps the first
    ``ktrdr.strategy.reader.MAX_ISSUES`` it finds); ``omitted``: how many more were found.
    """

    def __init__(self, issues: list[StrategyIssue], omitted: int = 0):
        if not issues:
            raise ValueError("StrategyError needs at least one issue")
        self.issues = sorted(issues, key=lambda i: (i.line, i.column))
        self.omitted = omitted
        super().__init__(str(self))

    def __str__(self) -> str:
        more = [f"... and {self.omitted} more errors"] if self.omitted else []
        return "\n".join([*(str(i) for i in self.issues), *more])
