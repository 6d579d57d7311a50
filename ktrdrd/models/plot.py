"""Training curves of a model version as a PNG image (``RenderModelPlot``).

Two panels drawn from ``metrics.json``'s ``training.history``: loss per epoch (training and
validation) and accuracy per epoch (training and validation, with the validation split's
majority-class baseline as a dashed line, since accuracy alone is not skill). The best epoch, when
early stopping chose one, is marked. Rendered with matplotlib's object API on the Agg backend
(no pyplot, no display), imported on first use; blocking: the service calls :func:`render_png`
in a thread, one rendering at a time (matplotlib's font and text caches are shared).
"""

from __future__ import annotations

import io
import threading
from typing import Any

DEFAULT_SIZE_PX = (1200, 800)
MIN_SIZE_PX, MAX_SIZE_PX = 200, 4000
_DPI = 100
_LOCK = threading.Lock()


class NoHistory(ValueError):
    """The version's metrics hold no per-epoch history to draw."""


def _series(history: dict[str, Any], key: str) -> list[float | None]:
    values = history.get(key) or []
    return [v if isinstance(v, int | float) else None for v in values]


def render_png(report: dict[str, Any], title: str, width_px: int, height_px: int) -> bytes:
    """The PNG of ``report``'s training curves, ``width_px`` × ``height_px``. Raises
    :class:`NoHistory` when there is nothing per epoch to draw."""
    training = report.get("training") or {}
    history = training.get("history") or {}
    train_loss, val_loss = _series(history, "train_loss"), _series(history, "val_loss")
    train_acc, val_acc = _series(history, "train_accuracy"), _series(history, "val_accuracy")
    epochs = max(len(train_loss), len(val_loss), len(train_acc), len(val_acc))
    if epochs == 0:
        raise NoHistory("the model's metrics hold no per-epoch training history")
    baseline = ((report.get("evaluation") or {}).get("validation") or {}).get("baseline_accuracy")
    best = training.get("best_epoch")
    with _LOCK:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        figure = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI)
        FigureCanvasAgg(figure)
        loss_axes, accuracy_axes = figure.subplots(2, 1, sharex=True)
        for axes, curves, label in (
            (loss_axes, ((train_loss, "training"), (val_loss, "validation")), "loss"),
            (accuracy_axes, ((train_acc, "training"), (val_acc, "validation")), "accuracy"),
        ):
            for values, name in curves:
                if values:
                    axes.plot(range(1, len(values) + 1), values, marker=".", label=name)
            if isinstance(best, int):
                axes.axvline(best, color="grey", linestyle=":", label=f"best epoch ({best})")
            axes.set_ylabel(label)
            axes.grid(True, alpha=0.3)
        if isinstance(baseline, int | float):
            accuracy_axes.axhline(
                baseline,
                color="black",
                linestyle="--",
                label=f"validation majority baseline ({baseline:.3f})",
            )
        loss_axes.legend(loc="best")
        accuracy_axes.legend(loc="best")
        accuracy_axes.set_xlabel("epoch")
        accuracy_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        figure.suptitle(title)
        out = io.BytesIO()
        figure.savefig(out, format="png")
    return out.getvalue()
