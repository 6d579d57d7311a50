"""The NDJSON ctl transport (``ctl.sock``) for ktrdrctl and scripts; see docs/ctl-protocol.md."""

from ktrdrd.ctl.protocol import FRAME_LIMIT
from ktrdrd.ctl.server import CtlServer

__all__ = ["FRAME_LIMIT", "CtlServer"]
