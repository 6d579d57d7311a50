"""Operations: kind handlers, the state machine, cancel/wait/watch and restart reload over the journal."""

from ktrdrd.journal import JournalOpenError
from ktrdrd.journal.records import EventRecord, OperationRecord
from ktrdrd.operations.context import Interrupted, KindHandler, OperationContext
from ktrdrd.operations.core import OperationsCore, parse_label_selectors

__all__ = [
    "EventRecord",
    "Interrupted",
    "JournalOpenError",
    "KindHandler",
    "OperationContext",
    "OperationRecord",
    "OperationsCore",
    "parse_label_selectors",
]
