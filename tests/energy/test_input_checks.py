"""The core API refuses shape slips instead of broadcasting them into a wrong answer, and
names the shapes it got (issue 13, §3)."""

from __future__ import annotations

import math

import pytest
import torch

from genoise.energy import (
    ClassifierEnergy,
    FunctionEnergy,
    free_energy_from_energies,
    gibbs,
    infer,
    infer_latent,
    log_partition,
)


def _readme_energy() -> FunctionEnergy:
    # E(x, y) = |y - 2x|², the README's example: ŷ = 2x.
    return FunctionEnergy(lambda y, x=None, z=None: ((y - 2 * x) ** 2).sum(-1))


def test_one_dimensional_float_candidates_are_refused_with_the_shapes():
    """(61,) candidates against x (2, 1) used to broadcast to a (122, 122) energy and answer
    [-3, -3]; the answer is [1, 2] with candidates (61, 1)."""
    e, x = _readme_energy(), torch.tensor([[0.5], [1.0]])
    with pytest.raises(ValueError, match=r"candidates .*\(61,\).*candidates\[:, None\]"):
        infer(e, x, method="exhaustive", candidates=torch.linspace(-3, 3, 61))
    right = infer(e, x, method="exhaustive", candidates=torch.linspace(-3, 3, 61)[:, None])
    torch.testing.assert_close(right, torch.tensor([[1.0], [2.0]]))


def test_integer_labels_stay_one_dimensional_for_a_classifier_energy():
    torch.manual_seed(0)
    clf = ClassifierEnergy(torch.nn.Linear(3, 4))
    x = torch.randn(5, 3)
    got = infer(clf, x, candidates=torch.arange(4))
    torch.testing.assert_close(got, clf.predict(x))


def test_one_dimensional_float_y_is_refused_everywhere_with_its_shape():
    e, x = _readme_energy(), torch.tensor([[0.5], [1.0]])
    y = torch.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match=r"y must be \(B, \*y_shape\).*got shape \(2,\)"):
        e(y, x)
    with pytest.raises(ValueError, match=r"y must be \(B, \*y_shape\).*got shape \(2,\)"):
        e.free_energy(y, x)
    with pytest.raises(ValueError, match=r"init must be \(B, \*y_shape\).*got shape \(2,\)"):
        infer(e, x, method="gradient", init=y)


def test_an_energy_returning_b_by_one_is_refused_with_the_shapes():
    bad = FunctionEnergy(lambda y, x=None, z=None: ((y - 2 * x) ** 2))  # (B, 1): forgot .sum(-1)
    x = torch.tensor([[0.5], [1.0]])
    pattern = r"FunctionEnergy\.energy must return shape \(B,\) = \(2,\), got \(2, 1\)"
    with pytest.raises(ValueError, match=pattern):
        bad(torch.zeros(2, 1), x)
    with pytest.raises(ValueError, match=pattern):
        bad.free_energy(torch.zeros(2, 1), x)
    with pytest.raises(ValueError, match=r"must return shape \(B,\) = \(122,\), got \(122, 1\)"):
        infer(bad, x, candidates=torch.linspace(-3, 3, 61)[:, None])
    with pytest.raises(ValueError, match=r"must return shape \(B,\) = \(2,\), got \(2, 1\)"):
        infer(bad, x, method="gradient", init=torch.zeros(2, 1), steps=3)


def test_infer_latent_on_an_energy_without_latent_says_so():
    with pytest.raises(ValueError, match="FunctionEnergy has no latent variable"):
        infer_latent(_readme_energy(), torch.zeros(2, 1), torch.zeros(2, 1))


@pytest.mark.parametrize("beta", [1.0, math.inf])
def test_gibbs_and_log_partition_refuse_nan_energies_as_the_losses_do(beta):
    f = torch.tensor([[0.0, math.nan, 1.0], [0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match=r"free_energies contains 1 NaN value\(s\)"):
        gibbs(f, beta)
    with pytest.raises(ValueError, match=r"free_energies contains 1 NaN value\(s\)"):
        log_partition(f, beta)
    with pytest.raises(ValueError, match=r"energies contains 1 NaN value\(s\)"):
        free_energy_from_energies(f, beta)
    # +inf is a legitimate energy (an impossible answer): probability 0, not an error.
    p = gibbs(torch.tensor([[0.0, math.inf]]), beta)
    torch.testing.assert_close(p, torch.tensor([[1.0, 0.0]]))
