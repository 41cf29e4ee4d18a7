"""The Fréchet distance behind benchmarks/sound.json, on inputs whose distance is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis.frechet import frechet_distance, gaussian_frechet


def test_gaussians_with_diagonal_covariances_match_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()  # 5 + (1 + 1 + 0)
    assert gaussian_frechet(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(want) == 7.0


def test_a_set_is_at_zero_from_itself_and_a_shift_costs_its_squared_length():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 8)) @ rng.standard_normal((8, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.arange(8) / 4
    assert frechet_distance(a, a + shift) == pytest.approx((shift**2).sum(), rel=1e-6)
    b = rng.standard_normal((300, 8)) * 2.0
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)  # symmetric


def test_samples_converge_to_the_gaussians_distance():
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, (20000, 4))
    b = rng.normal(0.5, 2.0, (20000, 4))
    assert frechet_distance(a, b) == pytest.approx(4 * 0.25 + 4 * (1 - 2) ** 2, rel=0.03)  # 5


def test_shapes_that_hold_no_covariance_are_refused():
    with pytest.raises(ValueError, match="same dims"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
