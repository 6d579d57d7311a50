"""Evaluation metrics of a 3-class classifier, pure NumPy (plus one torch inference helper).

Every report carries the majority-class baseline beside the accuracy: ``baseline_accuracy`` is the
accuracy of always predicting the split's most frequent class (``baseline_class``), the best any
constant predictor can do on that split. An accuracy at or below it means the model learned
nothing usable (the predecessor's 0.856 on EURUSD was below always-BUY's 0.877).

The **persistence baseline** (``persistence_accuracy``, when the evaluation is given the rows'
:class:`~ktrdr.research.skill.SkillInputs`) is the accuracy of predicting the label the past
already shows (:func:`ktrdr.research.labels.persistence_labels`: for ZigZag, the leg the walk is in
now). A model at or below it only recognises the present. The ``skill`` section
(:mod:`ktrdr.research.skill`) judges the signal's forward return with a block-bootstrap interval.

Per-class precision/recall/F1 follow the usual definitions. Undefined figures are ``None``, never
0: precision of a class never predicted; recall and F1 of a class absent from the split's truth;
``macro_f1`` when any class is absent (a three-class average over a missing class means nothing).
``weighted_f1`` weighs by support, so absent classes drop out of it. The confusion matrix has true
classes as rows and predicted classes as columns, in label order
(:data:`ktrdr.research.labels.CLASS_NAMES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ktrdr.research.labels import CLASS_NAMES, class_distribution
from ktrdr.research.skill import SkillInputs, skill_section

N_CLASSES = len(CLASS_NAMES)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(3, 3) int64 counts: ``cm[t, p]`` = rows of true class t predicted as p."""
    t, p = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {t.shape} vs {p.shape}")
    if t.size and (t.min() < 0 or t.max() >= N_CLASSES or p.min() < 0 or p.max() >= N_CLASSES):
        raise ValueError(f"class ids must lie in [0, {N_CLASSES})")
    return np.bincount(t * N_CLASSES + p, minlength=N_CLASSES * N_CLASSES).reshape(N_CLASSES, N_CLASSES)


def per_class(cm: np.ndarray) -> dict[str, dict[str, float | int | None]]:
    """``{class: {precision, recall, f1, support}}`` from a confusion matrix; None where undefined
    (module docstring)."""
    tp = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    out: dict[str, dict[str, float | int | None]] = {}
    for i, name in enumerate(CLASS_NAMES):
        precision = float(tp[i] / predicted[i]) if predicted[i] else None
        recall = float(tp[i] / actual[i]) if actual[i] else None
        f1: float | None = None
        if recall is not None:
            p = precision or 0.0
            f1 = 2 * p * recall / (p + recall) if p + recall else 0.0
        out[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(actual[i])}
    return out


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, *, loss: float | None = None
) -> dict[str, Any]:
    """accuracy, baseline_accuracy, baseline_class, loss (when given), macro_f1, weighted_f1,
    per_class, confusion_matrix (nested lists), distribution, samples."""
    cm = confusion_matrix(y_true, y_pred)
    n = int(cm.sum())
    classes = per_class(cm)
    support = cm.sum(axis=1)
    f1 = np.array([classes[c]["f1"] or 0.0 for c in CLASS_NAMES])
    majority = int(np.argmax(support))
    return {
        "samples": n,
        "accuracy": float(np.trace(cm) / n) if n else 0.0,
        "baseline_accuracy": float(support[majority] / n) if n else 0.0,
        "baseline_class": CLASS_NAMES[majority],
        "loss": loss,
        "macro_f1": float(f1.mean()) if (support > 0).all() else None,
        "weighted_f1": float((f1 * support).sum() / n) if n else 0.0,
        "per_class": classes,
        "confusion_matrix": cm.tolist(),
        "distribution": class_distribution(np.asarray(y_true)),
    }


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module, x: torch.Tensor, symbol_index: torch.Tensor | None = None, *, chunk: int = 65536
) -> torch.Tensor:
    """Logits (N, 3) float32 of ``model`` in eval mode, computed in chunks on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, x.shape[0], chunk):
        s = None if symbol_index is None else symbol_index[i : i + chunk].to(device)
        out.append(model(x[i : i + chunk].to(device), s).float().cpu())
    return torch.cat(out) if out else torch.zeros((0, N_CLASSES))


def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    symbol_index: torch.Tensor | None = None,
    *,
    symbols: Sequence[str] = (),
    rows: SkillInputs | None = None,
) -> dict[str, Any]:
    """:func:`classification_metrics` of the model on one split, with the mean unweighted
    cross-entropy as ``loss``; plus ``per_symbol`` (same metrics per symbol, keyed by name from
    ``symbols``) when ``symbol_index`` and ``symbols`` are given; plus ``persistence_accuracy`` and
    the ``skill`` section (:func:`~ktrdr.research.skill.skill_section`) when ``rows`` describes the
    split's rows."""
    logits = predict_logits(model, x, symbol_index)
    y_cpu = y.cpu()
    loss = float(F.cross_entropy(logits, y_cpu).item()) if y_cpu.numel() else None
    pred = logits.argmax(1).numpy()
    yt = y_cpu.numpy()
    report = classification_metrics(yt, pred, loss=loss)
    if symbol_index is not None and symbols:
        si = symbol_index.cpu().numpy()
        per_symbol = {}
        for k, name in enumerate(symbols):
            mine = si == k
            sym_loss = float(F.cross_entropy(logits[mine], y_cpu[mine]).item()) if mine.any() else None
            per_symbol[name] = classification_metrics(yt[mine], pred[mine], loss=sym_loss)
        report["per_symbol"] = per_symbol
    if rows is not None:
        report["persistence_accuracy"] = float((rows.persistence == yt).mean()) if yt.size else 0.0
        report["skill"] = skill_section(pred, rows)
    return report
