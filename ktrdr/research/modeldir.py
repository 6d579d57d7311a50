"""Facts about a model directory that readers without torch need (the daemon's registry).

The directory itself is written and loaded by :mod:`ktrdr.research.artifacts` (which imports
torch); this module holds only what both sides must agree on, so the two cannot drift.
"""

from __future__ import annotations

#: The manifest's ``format``.
FORMAT = "ktrdr.model/1"
#: The files every model directory holds, and nothing else.
FILES = ("weights.pt", "strategy.json", "feature_spec.json", "metrics.json", "manifest.json")
