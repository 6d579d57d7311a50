"""The classifier's own metrics on a backtest's bars, to read beside the trading metrics.

The same figures as training's evaluation (:mod:`ktrdr.research.evaluation`): accuracy beside the
majority-class baseline (``baseline_accuracy``) and the persistence baseline
(``persistence_accuracy``), per-class precision/recall/F1, the confusion matrix. Labels are made
by the strategy's ``training.labels`` on the base closes of **all** the bars given (warm-up
included, so a ZigZag walk is under way at the first simulated bar, as in training), then cut to
the simulated bars. Scored rows: simulated bars with a decision (finite probabilities) and a final
label; bars whose label is not final by the end of the data (``unlabelled_bars``, e.g. ZigZag's
provisional last leg) are left out, since their truth reads prices after the period.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ktrdr.research.backtest.engine import BacktestResult
from ktrdr.research.bars import Bars
from ktrdr.research.evaluation import classification_metrics
from ktrdr.research.labels import make_labels, persistence_labels
from ktrdr.strategy.model import Strategy


def classifier_metrics(strategy: Strategy, base: Bars, result: BacktestResult) -> dict[str, Any]:
    """:func:`~ktrdr.research.evaluation.classification_metrics` of the model's most probable class
    on ``result``'s simulated bars, plus ``persistence_accuracy`` and ``unlabelled_bars`` (module
    docstring). ``base``: every base bar the backtest was given (``result.bars`` is a slice of it)."""
    if result.probabilities is None:
        raise ValueError("the backtest has no model probabilities (it ran given targets)")
    n = len(result.bars)
    lo = int(np.searchsorted(base.time, result.bars.time[0], "left")) if n else 0
    truth = make_labels(strategy.labels, base.close).y[lo : lo + n]
    persistence = persistence_labels(strategy.labels, base.close)[lo : lo + n]
    probabilities = result.probabilities
    decided = np.isfinite(probabilities).all(axis=1)
    scored = decided & (truth >= 0)
    predicted = probabilities[scored].argmax(axis=1)
    report = classification_metrics(truth[scored], predicted)
    report["persistence_accuracy"] = (
        float((persistence[scored] == truth[scored]).mean()) if scored.any() else 0.0
    )
    report["unlabelled_bars"] = int(np.count_nonzero(decided & (truth < 0)))
    return report
