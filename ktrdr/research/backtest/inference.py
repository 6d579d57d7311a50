"""A trained model's class probabilities per base bar, from the one feature builder training used.

:func:`class_probabilities` builds the features of one symbol with
:func:`~ktrdr.research.features.build_features`, verifying first that the strategy produces
exactly the feature spec the model was trained on (a difference raises
:class:`~ktrdr.research.features.FeatureSpecMismatch` naming the model directory and the first
differing column), and runs the model on the valid rows. Rows that are not valid (warm-up,
undefined features) get NaN probabilities, which :func:`~ktrdr.research.backtest.decisions.decide`
treats as no decision. Row i is base bar i, so a probability at bar t reads bars up to t's close
(the feature builder is prefix-invariant).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ktrdr.research.artifacts import LoadedModel
from ktrdr.research.bars import Bars
from ktrdr.research.features import FeatureSpecMismatch, build_features
from ktrdr.research.model import ModelError
from ktrdr.strategy.model import Strategy

#: Rows per forward pass: bounds the activations' memory on long histories.
BATCH_ROWS = 65_536


def class_probabilities(loaded: LoadedModel, strategy: Strategy, bars: Mapping[str, Bars]) -> np.ndarray:
    """Probabilities (float64, shape (base bars, 3), class order BUY, HOLD, SELL) of the model in
    ``loaded`` on one symbol's ``bars`` (timeframe → bars, every timeframe of the strategy).

    Raises :class:`FeatureSpecMismatch` when ``strategy`` builds other features than the model was
    trained on, :class:`~ktrdr.research.features.FeatureError` for missing bars, and
    :class:`~ktrdr.research.model.ModelError` when the model has a symbol embedding and the symbol
    is not in its vocabulary."""
    try:
        features = build_features(strategy, bars, expected=loaded.feature_spec)
    except FeatureSpecMismatch as exc:
        raise FeatureSpecMismatch(
            f"{loaded.path}: the model was trained on other features than strategy "
            f"{strategy.name!r} builds: {exc}"
        ) from None
    symbol_index = None
    if loaded.model.embedding is not None:
        if features.symbol not in loaded.symbols:
            raise ModelError(
                f"{loaded.path}: the model embeds symbols {', '.join(loaded.symbols)}; "
                f"it has no embedding for {features.symbol!r}"
            )
        symbol_index = loaded.symbols.index(features.symbol)
    rows = np.flatnonzero(features.valid)
    out = np.full((len(features), 3), np.nan)
    device = next(loaded.model.parameters()).device
    with torch.inference_mode():
        for lo in range(0, rows.size, BATCH_ROWS):
            batch = rows[lo : lo + BATCH_ROWS]
            x = torch.from_numpy(features.values[batch]).to(device)
            index = None
            if symbol_index is not None:
                index = torch.full((batch.size,), symbol_index, dtype=torch.int64, device=device)
            out[batch] = torch.softmax(loaded.model(x, index), dim=1).double().cpu().numpy()
    return out
