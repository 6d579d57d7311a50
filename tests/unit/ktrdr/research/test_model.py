"""The MLP built from a ModelSpec: shapes, layers, embedding, seeded init, bad specs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ktrdr.research.model import MLP, ModelError, build_model, parameter_count
from ktrdr.strategy.model import ModelSpec


def test_neuro_mean_reversion_shape_and_parameter_count():
    # 27 features, 3 symbols, 16-dim embedding: 43 -> 50 -> 25 -> 3 (3,601 parameters, as the predecessor's model had).
    spec = ModelSpec(hidden_layers=(50, 25), activation="relu", dropout=0.2, symbol_embedding_dim=16)
    m = build_model(spec, 27, n_symbols=3, seed=0)
    assert parameter_count(m) == 3601
    kinds = [type(layer) for layer in m.net]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert m.net[0].in_features == 43 and m.net[-1].out_features == 3
    assert all(d.p == 0.2 for d in m.net if isinstance(d, nn.Dropout))
    out = m(torch.randn(5, 27), torch.tensor([0, 1, 2, 0, 1]))
    assert out.shape == (5, 3)


def test_embedding_changes_output_per_symbol_and_is_required():
    m = build_model(
        ModelSpec(hidden_layers=(8,), dropout=0.0, symbol_embedding_dim=4), 6, n_symbols=2, seed=1
    ).eval()
    x = torch.randn(1, 6).repeat(2, 1)
    out = m(x, torch.tensor([0, 1]))
    assert not torch.equal(out[0], out[1])
    with pytest.raises(ModelError, match="pass symbol_index"):
        m(x)


@pytest.mark.parametrize(
    "act,cls", [("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid), ("leaky_relu", nn.LeakyReLU), ("gelu", nn.GELU)]
)
def test_activations(act, cls):
    m = build_model(ModelSpec(hidden_layers=(4, 4), activation=act), 3, seed=0)
    assert sum(isinstance(layer, cls) for layer in m.net) == 2
    assert m.embedding is None


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = build_model(ModelSpec(), 10, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    b = build_model(ModelSpec(), 10, seed=5)
    c = build_model(ModelSpec(), 10, seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.net[0].weight, c.net[0].weight)


def test_bad_specs_are_clear_errors():
    with pytest.raises(ModelError, match="unknown activation 'swish'"):
        build_model(ModelSpec(activation="swish"), 3)
    with pytest.raises(ModelError, match="unknown model type 'lstm'"):
        build_model(ModelSpec(type="lstm"), 3)
    with pytest.raises(ModelError, match="dropout"):
        MLP(3, (4,), "relu", 1.5)
    with pytest.raises(ModelError, match="n_features"):
        MLP(0, (4,), "relu", 0.1)
