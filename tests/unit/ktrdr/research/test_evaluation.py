"""Evaluation metrics checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ktrdr.research.evaluation import classification_metrics, confusion_matrix, evaluate
from ktrdr.research.model import build_model
from ktrdr.strategy.model import ModelSpec


def test_confusion_matrix_and_per_class_by_hand():
    y = np.array([0, 0, 0, 0, 1, 2, 2, 2])
    p = np.array([0, 0, 2, 0, 0, 2, 2, 1])
    cm = confusion_matrix(y, p)
    assert cm.tolist() == [[3, 0, 1], [1, 0, 0], [0, 1, 2]]
    r = classification_metrics(y, p, loss=0.5)
    assert r["accuracy"] == 5 / 8
    assert r["baseline_accuracy"] == 4 / 8 and r["baseline_class"] == "buy"
    buy, hold, sell = (r["per_class"][c] for c in ("buy", "hold", "sell"))
    assert buy == {"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4}
    assert hold == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}  # zero division → 0
    assert sell["precision"] == pytest.approx(2 / 3) and sell["recall"] == pytest.approx(2 / 3)
    assert r["macro_f1"] == pytest.approx((0.75 + 0 + 2 / 3) / 3)
    assert r["weighted_f1"] == pytest.approx((0.75 * 4 + 2 / 3 * 3) / 8)
    assert r["distribution"]["buy_count"] == 4 and r["distribution"]["total"] == 8
    assert r["loss"] == 0.5


def test_accuracy_below_baseline_is_visible():
    y = np.array([0] * 9 + [2])
    p = np.array([0] * 8 + [2, 2])
    r = classification_metrics(y, p)
    assert r["accuracy"] == 0.9 and r["baseline_accuracy"] == 0.9


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="class ids"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]))


def test_evaluate_model_with_per_symbol_metrics():
    m = build_model(
        ModelSpec(hidden_layers=(4,), dropout=0.0, symbol_embedding_dim=2), 3, n_symbols=2, seed=0
    )
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    y = torch.randint(0, 3, (40,), generator=g)
    s = torch.tensor([0] * 25 + [1] * 15)
    r = evaluate(m, x, y, s, symbols=("AAA", "BBB"))
    pred = m(x, s).argmax(1).numpy()
    assert r["accuracy"] == float((pred == y.numpy()).mean())
    assert r["loss"] == pytest.approx(torch.nn.functional.cross_entropy(m(x, s), y).item(), rel=1e-6)
    assert r["per_symbol"]["AAA"]["samples"] == 25 and r["per_symbol"]["BBB"]["samples"] == 15
    assert r["per_symbol"]["BBB"]["accuracy"] == float((pred[25:] == y.numpy()[25:]).mean())


def test_figures_over_absent_classes_are_undefined_not_zero():
    y = np.array([0, 0, 2, 2, 2])  # no HOLD in the truth
    p = np.array([0, 1, 2, 2, 0])
    r = classification_metrics(y, p)
    hold = r["per_class"]["hold"]
    assert hold == {"precision": 0.0, "recall": None, "f1": None, "support": 0}
    assert r["macro_f1"] is None  # a three-class average over a missing class means nothing
    assert r["weighted_f1"] == pytest.approx((2 * 0.5 + 3 * 0.8) / 5)  # buy F1 0.5, sell F1 0.8
    never = classification_metrics(np.array([0, 1, 2]), np.array([0, 0, 0]))
    assert never["per_class"]["sell"]["precision"] is None and never["per_class"]["sell"]["f1"] == 0.0
    assert never["macro_f1"] == pytest.approx(0.5 / 3)  # buy: P 1/3, R 1 → F1 0.5
