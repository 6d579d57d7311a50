"""The network: an MLP built from a strategy's :class:`~ktrdr.strategy.model.ModelSpec`.

``Linear(F [+ E], h1) → activation → Dropout(p) → … → Linear(h_last, 3)``: dropout after every
hidden layer, three logits out (softmax is never inside the net; class order is the labels'
order). With ``symbol_embedding_dim = E > 0`` the model owns an ``n_symbols × E`` embedding table
and its input is ``concat(features, embedding[symbol_index])``; such a model must be given the
symbol index of every row (no silent "symbol 0" default, the predecessor's bug).
"""

from __future__ import annotations

import torch
from torch import nn

from ktrdr.strategy.model import ModelSpec

#: Number of output classes (BUY, HOLD, SELL in label order).
N_CLASSES = 3

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}


class ModelError(ValueError):
    """A model that cannot be built or called as asked (bad spec, missing symbol index)."""


class MLP(nn.Module):
    """Feed-forward classifier. ``forward(x, symbol_index=None) -> logits (N, 3)``.

    ``x``: float tensor (N, n_features). ``symbol_index``: int64 tensor (N,) with values in
    ``[0, n_symbols)``; required when the model has a symbol embedding, ignored otherwise.
    """

    def __init__(
        self,
        n_features: int,
        hidden_layers: tuple[int, ...],
        activation: str,
        dropout: float,
        *,
        n_symbols: int = 1,
        symbol_embedding_dim: int = 0,
    ) -> None:
        super().__init__()
        if n_features < 1:
            raise ModelError(f"n_features must be >= 1, got {n_features}")
        if activation not in _ACTIVATIONS:
            raise ModelError(f"unknown activation {activation!r}; known: {', '.join(_ACTIVATIONS)}")
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got {dropout}")
        if any(h < 1 for h in hidden_layers):
            raise ModelError(f"hidden layer sizes must be >= 1, got {list(hidden_layers)}")
        if symbol_embedding_dim < 0 or n_symbols < 1:
            raise ModelError(
                f"need n_symbols >= 1 and symbol_embedding_dim >= 0, got {n_symbols}, {symbol_embedding_dim}"
            )
        self.n_features = n_features
        self.n_symbols = n_symbols
        self.embedding = nn.Embedding(n_symbols, symbol_embedding_dim) if symbol_embedding_dim > 0 else None
        layers: list[nn.Module] = []
        width = n_features + symbol_embedding_dim
        for h in hidden_layers:
            layers += [nn.Linear(width, h), _ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, N_CLASSES))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, symbol_index: torch.Tensor | None = None) -> torch.Tensor:
        if self.embedding is not None:
            if symbol_index is None:
                raise ModelError("this model has a symbol embedding: pass symbol_index for every row")
            x = torch.cat((x, self.embedding(symbol_index).to(x.dtype)), dim=1)
        return self.net(x)


def build_model(spec: ModelSpec, n_features: int, *, n_symbols: int = 1, seed: int | None = None) -> MLP:
    """An :class:`MLP` for ``spec``. With ``seed`` the initial weights are a function of the seed
    alone (the global RNG is left as it was); without, they come from the global RNG."""
    if spec.type != "mlp":
        raise ModelError(f"unknown model type {spec.type!r}; known: mlp")

    def make() -> MLP:
        return MLP(
            n_features,
            tuple(spec.hidden_layers),
            spec.activation,
            spec.dropout,
            n_symbols=n_symbols,
            symbol_embedding_dim=spec.symbol_embedding_dim,
        )

    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def parameter_count(model: nn.Module) -> int:
    """Number of scalar parameters."""
    return sum(p.numel() for p in model.parameters())
