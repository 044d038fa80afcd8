"""fit_estimator: the same fit as the estimator's own ``fit``, a metrics row per step, the
checkpoint envelope, interruption at ``run.stop_after`` and a bit-for-bit resume, a
finished checkpoint that returns at once, refused kinds and bad arguments."""

from __future__ import annotations

import pytest
import torch

from genoise.io import read_metrics
from genoise.latent import PCA, DictionaryLearner, GaussianMixture, KMeans
from genoise.train import RunInterrupted
from genoise.train.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
from genoise.train.estimator import fit_estimator
from genoise.train.run import Run
from tests.recipes._resume import assert_identical


def _blobs(n: int = 300, d: int = 6, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    centres = 4 * torch.randn(5, d, generator=gen, dtype=torch.float64)
    noise = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return centres[torch.randint(5, (n,), generator=gen)] + noise


# name -> (estimator factory, max_steps, a step at which to interrupt, fitted attributes to compare)
CASES = {
    "kmeans": (lambda: KMeans(5, n_init=3, max_iter=20, tol=0.0), 60, 4,
               ("cluster_centers_", "labels_", "inertia_", "n_iter_")),
    "gmm": (lambda: GaussianMixture(4, covariance_type="full", n_init=2, max_iter=15, tol=0.0), 30, 20,
            ("weights_", "means_", "covariances_", "lower_bound_", "converged_", "n_iter_")),
    "gmm-diag": (lambda: GaussianMixture(4, covariance_type="diag", init_params="random", n_init=2,
                                         max_iter=15), 30, 17, ("means_", "covariances_", "lower_bound_")),
    "dictionary": (lambda: DictionaryLearner(8, 0.2, max_iter=2, batch_size=64, n_eval=100,
                                             dtype=torch.float64), 10, 6,
                   ("dictionary_", "objective_", "n_resampled_")),
    "pca": (lambda: PCA(3), 1, 1, ("components_", "explained_variance_", "mean_")),
}


def _run(path, **kwargs) -> Run:
    return Run(path, config={"case": "test"}, progress=False, **kwargs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_estimator_equals_fit_and_logs_a_row_per_step(tmp_path, name):
    make, max_steps, _, attributes = CASES[name]
    y = _blobs()
    reference = make()
    reference.seed = 7
    reference.fit(y)
    estimator = make()
    out = fit_estimator(estimator, y, run=_run(tmp_path / name), max_steps=max_steps, desc=name,
                        kind=f"estimator-{name}", seed=7)
    for attribute in attributes:
        assert_identical(getattr(reference, attribute), getattr(estimator, attribute), attribute)
    rows = read_metrics(tmp_path / name / "metrics.jsonl")
    assert [row["step"] for row in rows] == list(range(1, out["step"] + 1))
    assert 1 <= out["step"] <= max_steps
    state = load_checkpoint(tmp_path / name / "last.pt")
    assert state["format"] == CHECKPOINT_FORMAT and state["kind"] == f"estimator-{name}"
    assert state["step"] == out["step"] and state["finished"] is True
    assert state["config"] == {"case": "test"} and state["seed"] == 7 and "state" in state


@pytest.mark.parametrize("name", sorted(CASES))
def test_interrupted_then_resumed_fit_is_bit_for_bit(tmp_path, name):
    make, max_steps, stop, attributes = CASES[name]
    y = _blobs()
    full = make()
    fit_estimator(full, y, run=_run(tmp_path / "full"), max_steps=max_steps, desc=name, kind=name, seed=3)
    with pytest.raises(RunInterrupted, match=f"stopped after step {stop}"):
        fit_estimator(make(), y, run=_run(tmp_path / "cut", stop_after=stop), max_steps=max_steps,
                      desc=name, kind=name, seed=3)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["step"] == stop
    resumed = make()
    fit_estimator(resumed, y, run=_run(tmp_path / "cut", resume=True), max_steps=max_steps, desc=name,
                  kind=name, seed=3)
    for attribute in attributes:
        assert_identical(getattr(full, attribute), getattr(resumed, attribute), attribute)
    assert_identical(torch.load(tmp_path / "full" / "last.pt", weights_only=False),
                     torch.load(tmp_path / "cut" / "last.pt", weights_only=False), "last.pt")
    rows = read_metrics(tmp_path / "full" / "metrics.jsonl")
    assert rows == read_metrics(tmp_path / "cut" / "metrics.jsonl")


def test_a_finished_checkpoint_is_restored_and_returns_at_once(tmp_path):
    y = _blobs()
    first = KMeans(5, max_iter=20)
    fit_estimator(first, y, run=_run(tmp_path), max_steps=20, desc="k-means", kind="estimator-kmeans")
    rows = read_metrics(tmp_path / "metrics.jsonl")
    again = KMeans(5, max_iter=20)
    out = fit_estimator(again, y, run=_run(tmp_path, resume=True), max_steps=20, desc="k-means",
                        kind="estimator-kmeans")
    assert out == {"step": len(rows), "finished": True}
    assert torch.equal(first.cluster_centers_, again.cluster_centers_)
    assert read_metrics(tmp_path / "metrics.jsonl") == rows           # nothing re-fitted or re-logged


def test_without_resume_the_fit_starts_over_and_without_a_run_nothing_is_written(tmp_path):
    y = _blobs()
    fit_estimator(KMeans(5), y, run=_run(tmp_path), max_steps=50, desc="k-means", kind="k")
    a, b = KMeans(5), KMeans(5)
    fit_estimator(a, y, run=_run(tmp_path / "x"), max_steps=50, desc="k-means", kind="k", seed=1)
    fit_estimator(b, y, max_steps=50, desc="k-means", kind="k", seed=1)
    assert torch.equal(a.cluster_centers_, b.cluster_centers_)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "metrics.jsonl", "x"]


def test_progress_bar_is_named_and_a_fit_cut_by_max_steps_continues_on_resume(tmp_path, capsys):
    y = _blobs()
    km = KMeans(5, n_init=3, max_iter=30, tol=0.0)
    out = fit_estimator(km, y, run=Run(tmp_path, progress=True), max_steps=2, desc="k-means (k=5)", kind="k")
    assert out["step"] == 2 and out["finished"] is False and "k-means (k=5)" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "last.pt")["finished"] is False
    resumed = KMeans(5, n_init=3, max_iter=30, tol=0.0)
    out = fit_estimator(resumed, y, run=_run(tmp_path, resume=True), max_steps=90, desc="k-means", kind="k")
    assert 2 < out["step"] < 90 and out["finished"] is True
    reference = KMeans(5, n_init=3, max_iter=30, tol=0.0, seed=0).fit(y)
    assert torch.equal(resumed.cluster_centers_, reference.cluster_centers_)


def test_resume_from_another_kind_and_bad_arguments_are_refused(tmp_path):
    y = _blobs()
    fit_estimator(PCA(2), y, run=_run(tmp_path), max_steps=1, desc="pca", kind="estimator-pca")
    with pytest.raises(ValueError, match="holds a 'estimator-pca' checkpoint, not 'estimator-kmeans'"):
        fit_estimator(KMeans(3), y, run=_run(tmp_path, resume=True), max_steps=5, desc="k-means",
                      kind="estimator-kmeans")
    with pytest.raises(ValueError, match="max_steps must be a positive int"):
        fit_estimator(KMeans(3), y, max_steps=0, desc="k-means", kind="k")
    with pytest.raises(ValueError, match="n_clusters=500 is larger than the number of samples"):
        fit_estimator(KMeans(500), y, max_steps=5, desc="k-means", kind="k")
