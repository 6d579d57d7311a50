"""The operations journal: SQLite store, schema migrations and the single group-committing writer."""

from ktrdrd.journal.errors import JournalOpenError
from ktrdrd.journal.records import EventRecord, OperationRecord, empty_progress
from ktrdrd.journal.store import Journal

__all__ = [
    "EventRecord",
    "Journal",
    "JournalOpenError",
    "OperationRecord",
    "empty_progress",
]
