"""LISTA / LCoD (Gregor & LeCun 2010) and PSD (Kavukcuoglu et al. 2008)."""

from __future__ import annotations

import pytest
import torch

from genoise.latent.ista import coordinate_descent, fista, ista
from genoise.latent.lista import LISTA, LCoD, code_prediction_error, train_encoder
from genoise.latent.psd import PSD


def _sparse_data(n: int, seed: int, w: torch.Tensor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    k = w.shape[1]
    codes = torch.rand(n, k, generator=gen) * (torch.rand(n, k, generator=gen) < 0.1)
    return codes @ w.T + 0.05 * torch.randn(n, w.shape[0], generator=gen)


@pytest.fixture(scope="module")
def problem():
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.functional.normalize(torch.randn(20, 40, generator=gen), dim=0)
    y_train, y_test = _sparse_data(2000, 1, w), _sparse_data(500, 2, w)
    lam = 0.1
    z_train = fista(y_train, w, lam, steps=2000, tol=1e-8)
    z_test = fista(y_test, w, lam, steps=2000, tol=1e-8)
    return w, lam, y_train, z_train, y_test, z_test


def test_untrained_lista_is_ista_and_untrained_lcod_is_cod(problem):
    w, lam, _, _, y, _ = problem
    with torch.no_grad():
        assert torch.allclose(LISTA(w, lam, 4)(y), ista(y, w, lam, steps=4), atol=1e-6)
        assert torch.allclose(LCoD(w, lam, 7)(y), coordinate_descent(y, w, lam, steps=7), atol=1e-6)


def test_lista_beats_ista_and_fista_at_same_depth_on_held_out_data(problem):
    w, lam, y_train, z_train, y_test, z_test = problem
    steps = 2
    model = LISTA(w, lam, steps)
    train_encoder(model, y_train, z_train, epochs=15, batch_size=100, lr=3e-3, seed=0)
    with torch.no_grad():
        err_lista = code_prediction_error(model(y_test), z_test)
    err_ista = code_prediction_error(ista(y_test, w, lam, steps=steps), z_test)
    err_fista = code_prediction_error(fista(y_test, w, lam, steps=steps), z_test)
    assert err_lista < 0.7 * min(err_ista, err_fista)


def test_lcod_training_reduces_code_error(problem):
    w, lam, y_train, z_train, y_test, z_test = problem
    model = LCoD(w, lam, 5)
    with torch.no_grad():
        before = code_prediction_error(model(y_test), z_test)
    history = train_encoder(model, y_train, z_train, epochs=5, batch_size=100, lr=3e-3, seed=0)
    with torch.no_grad():
        after = code_prediction_error(model(y_test), z_test)
    assert history[-1] < history[0]
    assert after < 0.9 * before


def test_psd_training_lowers_energy_and_keeps_atoms_unit_norm():
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.functional.normalize(torch.randn(16, 24, generator=gen), dim=0)
    y = _sparse_data(600, 3, w)
    model = PSD(16, 24, lam=0.05, alpha=1.0, max_iter=6, batch_size=50, lr=0.05, seed=0)
    history = model.fit(y).history_
    assert len(history) == 6
    assert history[-1] < 0.9 * history[0]
    assert torch.allclose(model.dictionary.norm(dim=0), torch.ones(24), atol=1e-5)
    with torch.no_grad():
        z = model.infer_code(y[:20])
        assert torch.all(model.energy(y[:20], z=z) <= model.energy(y[:20], z=model.encode(y[:20])) + 1e-5)


def test_bad_input_is_refused(problem):
    w, lam, *_ = problem
    with pytest.raises(ValueError, match="n_steps"):
        LISTA(w, lam, 0)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        LCoD(w, -1.0)
    with pytest.raises(ValueError, match="zero column"):
        LISTA(torch.zeros(5, 3), lam)
    with pytest.raises(ValueError, match="D=7 features"):
        LISTA(w, lam)(torch.randn(3, 7))
    with pytest.raises(ValueError, match="samples"):
        train_encoder(LISTA(w, lam), torch.randn(5, 20), torch.randn(4, 40))
    with pytest.raises(ValueError, match="alpha must be > 0"):
        PSD(4, 3, 0.1, alpha=0.0)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        PSD(4, 3, 0.1, max_iter=0)
