"""The error raised when the journal database cannot be opened safely."""

from __future__ import annotations

from pathlib import Path


class JournalOpenError(Exception):
    """The journal at ``path`` is unreadable, corrupt, foreign or too new; the file was not modified.

    ``str(error)`` is a complete sentence for people: the path, what is wrong and what to do.
    """

    def __init__(self, path: Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"cannot open the operations journal {self.path}: {problem}")
