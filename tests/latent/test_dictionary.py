"""Dictionary learning: unit-norm atoms, decreasing objective, determinism, estimator API."""

from __future__ import annotations

import pytest
import torch

from genoise.latent.dictionary import (
    DictionaryLearner,
    SparseCoder,
    update_dictionary_bcd,
    update_dictionary_gradient,
)
from genoise.latent.ista import sparse_coding_objective


def _data(n: int = 400, n_features: int = 30, n_atoms: int = 12, seed: int = 10):
    gen = torch.Generator().manual_seed(seed)
    w = torch.nn.functional.normalize(torch.randn(n_features, n_atoms, generator=gen), dim=0)
    codes = torch.randn(n, n_atoms, generator=gen) * (torch.rand(n, n_atoms, generator=gen) < 0.15)
    return codes @ w.T + 0.01 * torch.randn(n, n_features, generator=gen)


@pytest.mark.parametrize("update", ["bcd", "gradient"])
def test_atoms_stay_unit_norm_and_objective_decreases(update):
    y = _data()
    learner = DictionaryLearner(12, 0.1, max_iter=4, batch_size=64, update=update, seed=0).fit(y)
    assert torch.allclose(learner.dictionary_.norm(dim=0), torch.ones(12), atol=1e-5)
    assert learner.objective_[-1] < 0.8 * learner.objective_[0]
    assert learner.objective_[-1] <= learner.objective_[1] + 1e-6


def test_admm_coding_learns_as_well_as_fista():
    y = _data()
    fista = DictionaryLearner(12, 0.1, max_iter=4, batch_size=64, seed=0).fit(y)
    admm = DictionaryLearner(12, 0.1, max_iter=4, batch_size=64, seed=0, code_algorithm="admm").fit(y)
    assert admm.code_algorithm == "admm"
    assert abs(admm.objective_[-1] - fista.objective_[-1]) <= 0.02 * fista.objective_[-1]
    assert admm.objective_[-1] < 0.8 * admm.objective_[0]
    with pytest.raises(ValueError, match="code_algorithm"):
        DictionaryLearner(12, 0.1, code_algorithm="lars").fit(y)


def test_fit_is_deterministic_given_seed():
    y = _data()
    a = DictionaryLearner(12, 0.1, max_iter=2, batch_size=64, seed=3).fit(y).components_
    b = DictionaryLearner(12, 0.1, max_iter=2, batch_size=64, seed=3).fit(y).components_
    assert torch.equal(a, b)


def test_bcd_step_does_not_increase_surrogate():
    y = _data(n=200)
    learner = DictionaryLearner(12, 0.1, max_iter=1, seed=0).fit(y)
    z = learner.transform(y)
    w0 = torch.nn.functional.normalize(torch.randn(30, 12, generator=torch.Generator().manual_seed(1)), dim=0)
    A, C = z.T @ z, y.T @ z
    w1, _ = update_dictionary_bcd(w0, A, C)
    def surrogate(w):
        return 0.5 * torch.trace(w.T @ w @ A) - torch.trace(w.T @ C)
    assert surrogate(w1) <= surrogate(w0)


def test_gradient_update_decreases_surrogate_and_positive_atoms_stay_nonnegative():
    y = _data(n=200)
    z = DictionaryLearner(12, 0.1, max_iter=1, seed=0).fit(y).transform(y)
    A, C = z.T @ z, y.T @ z
    w0 = torch.nn.functional.normalize(torch.randn(30, 12, generator=torch.Generator().manual_seed(2)), dim=0)

    def surrogate(w):
        return float(0.5 * torch.trace(w.T @ w @ A) - torch.trace(w.T @ C))

    w_grad, dead = update_dictionary_gradient(w0, A, C, n_steps=20)
    assert surrogate(w_grad) < surrogate(w0)
    assert not dead.any()
    for update in (update_dictionary_bcd, update_dictionary_gradient):
        w_pos, _ = update(w0.abs(), A, C, positive=True)
        assert float(w_pos.min()) >= 0
        assert torch.allclose(w_pos.norm(dim=0), torch.ones(12), atol=1e-5)


def test_nonnegative_learner_gives_nonnegative_atoms_and_codes():
    y = _data().abs()
    learner = DictionaryLearner(12, 0.1, max_iter=2, batch_size=64, positive=True, positive_dictionary=True,
                                seed=0).fit(y)
    assert float(learner.dictionary_.min()) >= 0
    assert float(learner.transform(y).min()) >= 0
    assert learner.objective_[-1] < learner.objective_[0]


def test_transform_and_sparse_coder_agree_with_energy_minimum():
    y = _data(n=100)
    learner = DictionaryLearner(12, 0.1, max_iter=1, seed=0).fit(y)
    z = learner.transform(y)
    assert z.shape == (100, 12)
    assert learner.components_.shape == (12, 30)
    coder = SparseCoder(learner.components_, 0.1, algorithm="cd", max_iter=5000, tol=1e-9)
    z_cd = coder.transform(y)
    obj = sparse_coding_objective(y, learner.dictionary_, z, 0.1)
    obj_cd = sparse_coding_objective(y, learner.dictionary_, z_cd, 0.1)
    assert torch.allclose(obj, obj_cd, rtol=1e-3)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="y must have 2"):
        DictionaryLearner(4, 0.1).fit(torch.randn(10))
    with pytest.raises(ValueError, match="y contains"):
        DictionaryLearner(4, 0.1).fit(torch.full((10, 3), float("nan")))
    with pytest.raises(ValueError, match="lam must be >= 0"):
        DictionaryLearner(4, -0.1).fit(torch.randn(10, 3))
    with pytest.raises(ValueError, match="n_atoms"):
        DictionaryLearner(0, 0.1).fit(torch.randn(10, 3))
    with pytest.raises(ValueError, match="not fitted"):
        DictionaryLearner(4, 0.1).transform(torch.randn(10, 3))
    with pytest.raises(ValueError, match=r"dict_init must be \(D, K\)"):
        DictionaryLearner(4, 0.1, dict_init=torch.randn(5, 4)).fit(torch.randn(10, 3))
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        DictionaryLearner(4, 0.1, max_iter=0).fit(torch.randn(10, 3))
    learner = DictionaryLearner(4, 0.1, max_iter=1).fit(torch.randn(10, 3))
    with pytest.raises(ValueError, match="D=5 features"):
        learner.transform(torch.randn(2, 5))
