"""The NDJSON ctl transport (``ctl.sock``) for ktrdrctl and scripts; see docs/ctl-protocol.md."""

from ktrdrd.ctl.server import CtlServer

__all__ = ["CtlServer"]
