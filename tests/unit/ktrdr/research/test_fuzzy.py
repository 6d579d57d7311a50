"""Membership functions: boundary values, degenerate widths, NaN propagation, parameter errors."""

from __future__ import annotations

import numpy as np
import pytest

from ktrdr.research.fuzzy import FuzzyError, membership, memberships, validate
from ktrdr.strategy.model import MembershipSpec


def mf(type_, params, xs):
    return membership(type_, params, np.asarray(xs, dtype=np.float64))


def test_triangular_peak_ends_and_slopes():
    got = mf("triangular", [0, 20, 35], [-5, 0, 10, 20, 32, 35, 40])
    np.testing.assert_allclose(got, [0, 0, 0.5, 1, 0.2, 0, 0])


def test_reference_worked_example_rsi_32():
    # The predecessor's documented example: RSI 32 → oversold 0.2, neutral 0.1, overbought 0.
    sets = (
        MembershipSpec("oversold", "triangular", (0, 20, 35)),
        MembershipSpec("neutral", "triangular", (30, 50, 70)),
        MembershipSpec("overbought", "triangular", (65, 80, 100)),
    )
    np.testing.assert_allclose(memberships(sets, np.array([32.0])), [[0.2, 0.1, 0.0]])


@pytest.mark.parametrize(
    ("params", "xs", "want"),
    [
        ([0, 0, 30], [-1, 0, 15, 30], [0, 1, 0.5, 0]),  # zero-width left side: 1 at the peak
        ([0, 30, 30], [0, 15, 30, 31], [0, 0.5, 1, 0]),  # zero-width right side
        ([5, 5, 5], [4.9, 5, 5.1], [0, 1, 0]),  # a == b == c: 1 exactly at b
    ],
)
def test_triangular_degenerate_widths(params, xs, want):
    np.testing.assert_array_equal(mf("triangular", params, xs), want)


def test_trapezoidal_plateau_and_slopes():
    got = mf("trapezoidal", [10, 20, 30, 50], [10, 15, 20, 25, 30, 40, 50, 60])
    np.testing.assert_allclose(got, [0, 0.5, 1, 1, 1, 0.5, 0, 0])
    np.testing.assert_array_equal(mf("trapezoidal", [1, 1, 2, 2], [0.5, 1, 2, 2.5]), [0, 1, 1, 0])


def test_gaussian_and_sigmoid():
    np.testing.assert_allclose(mf("gaussian", [50, 10], [50, 60, 30]), [1, np.exp(-0.5), np.exp(-2)])
    got = mf("sigmoid", [0, 2], [0, 1, -1, 1e6, -1e6])
    np.testing.assert_allclose(got, [0.5, 1 / (1 + np.exp(-2)), 1 / (1 + np.exp(2)), 1, 0])
    assert mf("sigmoid", [0, -2], [1])[0] < 0.5  # negative slope falls


def test_shoulders_saturate_so_rsi_100_is_fully_overbought():
    np.testing.assert_allclose(
        mf("right_shoulder", [70, 90], [0, 70, 80, 90, 100, np.inf]), [0, 0, 0.5, 1, 1, 1]
    )
    np.testing.assert_allclose(
        mf("left_shoulder", [10, 30], [-np.inf, 0, 10, 20, 30, 100]), [1, 1, 1, 0.5, 0, 0]
    )


def test_shoulders_with_zero_width_are_steps_that_include_the_edge():
    np.testing.assert_array_equal(mf("right_shoulder", [50, 50], [49, 50, 51]), [0, 1, 1])
    np.testing.assert_array_equal(mf("left_shoulder", [50, 50], [49, 50, 51]), [1, 1, 0])


@pytest.mark.parametrize(
    ("type_", "params"),
    [
        ("triangular", [0, 20, 35]),
        ("trapezoidal", [0, 1, 2, 3]),
        ("gaussian", [0, 1]),
        ("sigmoid", [0, 1]),
        ("left_shoulder", [0, 1]),
        ("right_shoulder", [0, 1]),
    ],
)
def test_nan_in_nan_out_and_range(type_, params):
    xs = np.array([np.nan, -10, 0, 0.5, 1, 2.5, 10, np.nan])
    got = mf(type_, params, xs)
    assert got.shape == xs.shape and got.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(got), np.isnan(xs))
    assert ((got[~np.isnan(got)] >= 0) & (got[~np.isnan(got)] <= 1)).all()


@pytest.mark.parametrize(
    ("type_", "params", "message"),
    [
        ("triangular", [0, 40, 35], "b=40.0 > c=35.0"),
        ("trapezoidal", [0, 1, 2], "takes 4 parameters [a, b, c, d], got 3"),
        ("gaussian", [0, 0], "sigma must be > 0"),
        ("sigmoid", [0, 0], "slope must be non-zero"),
        ("left_shoulder", [2, 1], "a=2.0 > b=1.0"),
        ("right_shoulder", [0, float("nan")], "must be finite"),
        ("cosine", [0, 1], "unknown membership type 'cosine'; known: triangular"),
        ("triangular", [0, "x", 1], "must be numbers"),
    ],
)
def test_bad_parameters_are_named(type_, params, message):
    with pytest.raises(FuzzyError, match=r"fuzzy_sets\.rsi\.low") as exc:
        validate(type_, params, where="fuzzy_sets.rsi.low")
    assert message in str(exc.value)


def test_memberships_keeps_set_order():
    sets = (
        MembershipSpec("high", "right_shoulder", (50, 60)),
        MembershipSpec("low", "left_shoulder", (40, 50)),
    )
    got = memberships(sets, np.array([0.0, 55.0, 100.0]))
    np.testing.assert_allclose(got, [[0, 1], [0.5, 0], [1, 0]])
