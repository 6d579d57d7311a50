"""Evaluation metrics of a 3-class classifier, pure NumPy (plus one torch inference helper).

Every report carries the majority-class baseline beside the accuracy: ``baseline_accuracy`` is the
accuracy of always predicting the split's most frequent class (``baseline_class``), the best any
constant predictor can do on that split. An accuracy at or below it means the model learned
nothing usable (the predecessor's 0.856 on EURUSD was below always-BUY's 0.877).

Per-class precision/recall/F1 follow the usual definitions with 0 where the denominator is 0.
The confusion matrix has true classes as rows and predicted classes as columns, in label order
(:data:`ktrdr.research.labels.CLASS_NAMES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ktrdr.research.labels import CLASS_NAMES, class_distribution

N_CLASSES = len(CLASS_NAMES)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(3, 3) int64 counts: ``cm[t, p]`` = rows of true class t predicted as p."""
    t, p = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {t.shape} vs {p.shape}")
    if t.size and (t.min() < 0 or t.max() >= N_CLASSES or p.min() < 0 or p.max() >= N_CLASSES):
        raise ValueError(f"class ids must lie in [0, {N_CLASSES})")
    return np.bincount(t * N_CLASSES + p, minlength=N_CLASSES * N_CLASSES).reshape(N_CLASSES, N_CLASSES)


def per_class(cm: np.ndarray) -> dict[str, dict[str, float | int]]:
    """``{class: {precision, recall, f1, support}}`` from a confusion matrix."""
    tp = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    out = {}
    for i, name in enumerate(CLASS_NAMES):
        precision = tp[i] / predicted[i] if predicted[i] else 0.0
        recall = tp[i] / actual[i] if actual[i] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(actual[i]),
        }
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
    f1 = np.array([classes[c]["f1"] for c in CLASS_NAMES])
    majority = int(np.argmax(support))
    return {
        "samples": n,
        "accuracy": float(np.trace(cm) / n) if n else 0.0,
        "baseline_accuracy": float(support[majority] / n) if n else 0.0,
        "baseline_class": CLASS_NAMES[majority],
        "loss": loss,
        "macro_f1": float(f1.mean()),
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
) -> dict[str, Any]:
    """:func:`classification_metrics` of the model on one split, with the mean unweighted
    cross-entropy as ``loss``; plus ``per_symbol`` (same metrics per symbol, keyed by name from
    ``symbols``) when ``symbol_index`` and ``symbols`` are given."""
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
            rows = si == k
            sym_loss = float(F.cross_entropy(logits[rows], y_cpu[rows]).item()) if rows.any() else None
            per_symbol[name] = classification_metrics(yt[rows], pred[rows], loss=sym_loss)
        report["per_symbol"] = per_symbol
    return report
