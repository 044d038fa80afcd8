"""K-means as an energy with a discrete latent (LeCun et al., "A Tutorial on Energy-Based
Learning", 2006; slides "K-means"): the prototypes W (K, D) are the only points of
zero energy,

    E(y, z) = ‖y − Wᵀz‖²,   z ∈ {e_1, …, e_K} (one-hot),
    F_∞(y) = min_k ‖y − w_k‖²,

and Lloyd's algorithm (Lloyd 1982) is block-coordinate descent on Σ_i E(y_i, z_i):
assign every sample to its nearest prototype (infer z), then move every prototype to
the mean of its samples (learn W). Seeding by greedy k-means++ (Arthur & Vassilvitskii
2007, as in scikit-learn).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from genoise._checks import check_positive
from genoise.energy.base import Energy
from genoise.latent._estimator import (
    as_data,
    check_features,
    check_fitted,
    make_generator,
    resolve_dtype,
    squared_distances,
    squared_norms,
)


def nearest(y: Tensor, centers: Tensor, chunk_size: int = 4096) -> tuple[Tensor, Tensor]:
    """Index of the nearest centre and the squared distance to it, (N,) each.

    Batched by rows (``chunk_size``) to bound the (chunk, K) distance matrix.
    """
    c_sq = (centers * centers).sum(-1)
    best_d, best_i = [], []
    for start in range(0, y.shape[0], chunk_size):
        d, i = squared_distances(y[start:start + chunk_size], centers, c_sq).min(dim=1)
        best_d.append(d)
        best_i.append(i)
    return torch.cat(best_i), torch.cat(best_d)


def mean_variance(y: Tensor, y_sq: Tensor) -> float:
    """The mean per-feature variance of y (N, D), (Σ_n ‖y_n‖² / N − ‖ȳ‖²) / D, from the row
    norms ``y_sq`` (N,) and one column sum (``Tensor.var(0)`` reduces across rows with a
    stride: 50× slower on 5,000 MNIST images; a float64 column sum converts all of y)."""
    n, d = y.shape
    mean = y.sum(0).double() / n       # a float32 column sum is plenty for a tolerance scale
    return float((y_sq.sum(dtype=torch.float64) / n - mean.dot(mean)).clamp_min(0.0) / d)


def kmeans_plusplus(y: Tensor, k: int, generator: torch.Generator,
                    n_local_trials: int | None = None) -> Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; scikit-learn's variant):
    each new centre is the best of ``2 + ⌊log k⌋`` candidates drawn ∝ D(y)², the one
    that lowers the potential Σ min_k ‖y − c_k‖² most. Returns (k, D)."""
    n = y.shape[0]
    trials = n_local_trials or 2 + int(math.log(k))
    y_sq = squared_norms(y)
    draw = generator.device  # draw where the generator lives (a CPU generator serves CUDA data)
    first = int(torch.randint(n, (1,), generator=generator, device=draw))
    centers = [y[first]]
    closest = squared_distances(y, y[first:first + 1], y_sq[first:first + 1], y_sq).squeeze(1)
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than k: pick uniformly
            ids = torch.randint(n, (trials,), generator=generator, device=draw).to(y.device)
        else:
            ids = torch.multinomial((closest / total).to(draw), trials, replacement=True,
                                    generator=generator).to(y.device)
        dist = squared_distances(y, y[ids], y_sq[ids], y_sq)  # (N, trials)
        candidate_pot = torch.minimum(closest[:, None], dist)
        best = int(candidate_pot.sum(0).argmin())
        closest = candidate_pot[:, best]
        centers.append(y[ids[best]])
    return torch.stack(centers)


def assign_and_accumulate(y: Tensor, y_sq: Tensor, centers: Tensor,
                          chunk_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """One fused pass over y: nearest centre (labels, squared distances) and the per-cluster
    sums Σ_{i: z_i = k} y_i, chunk by chunk so that each chunk of y stays in cache for
    both the distance matmul and the scatter-add (y is read from memory once)."""
    n = y.shape[0]
    c_sq = (centers * centers).sum(-1)
    labels = torch.empty(n, dtype=torch.long, device=y.device)
    dist = torch.empty(n, dtype=y.dtype, device=y.device)
    sums = torch.zeros_like(centers)
    for start in range(0, n, chunk_size):
        block = y[start:start + chunk_size]
        # argmin_k ‖y − c_k‖² = argmin_k (‖c_k‖² − 2 y·c_k): ‖y‖² is added to the minimum only
        d, i = _distance_terms(block, centers, c_sq).min(dim=1)
        labels[start:start + chunk_size] = i
        dist[start:start + chunk_size] = d
        sums.index_add_(0, i, block)
    dist += y_sq
    return labels, dist.clamp_min_(0.0), sums


def lloyd_step(y: Tensor, y_sq: Tensor, centers: Tensor,
               chunk_size: int = 1024) -> tuple[Tensor, Tensor, float, float]:
    """One Lloyd iteration from ``centers`` (K, D): assign every sample to its nearest centre,
    move every centre to the mean of its samples (an empty cluster moves to the sample
    farthest from its centre). ``y_sq`` (N,) holds ‖y_n‖². Returns (new centres, labels (N,),
    total squared shift Σ_k ‖Δw_k‖², inertia Σ_n min_k ‖y_n − w_k‖² of the old centres)."""
    k = centers.shape[0]
    labels, dist, sums = assign_and_accumulate(y, y_sq, centers, chunk_size)
    counts = torch.bincount(labels, minlength=k).to(y.dtype)
    new = sums / counts.clamp_min(1)[:, None]
    empty = counts == 0
    if bool(empty.any()):
        far = dist.topk(int(empty.sum())).indices
        new[empty] = y[far]
    return new, labels, float(((new - centers) ** 2).sum()), float(dist.sum())


_MARGIN = 1e-5  # relative slack of the distance bounds (round-off of ‖y‖² − 2y·c + ‖c‖² in float32)
ELKAN_MAX_BOUNDS = 50_000_000  # "auto" keeps the N × K lower bounds below this many numbers

def _distance_terms(block: Tensor, centers: Tensor, c_sq: Tensor) -> Tensor:
    """‖c_k‖² − 2 y·c_k for a block of rows, (B, K), by one GEMM. With few centres (K ≤ 16) the
    product is computed as C Yᵀ (K, B) and returned transposed: MKL runs the narrow (B, D)×(D, K)
    case up to twice as slowly on one thread (1,024 rows, K = 10: 0.27 vs 0.56 ms at D = 784 on
    one CPU, 0.44 vs 0.64 ms on another; 2.15 vs 2.67 ms at D = 3,072), but it does not split
    C Yᵀ over threads when D is large (D = 3,072, two threads: 1.91 vs 1.26 ms), so that form is
    kept for one thread or D ≤ 1,024. At K = 32 the plain form is already faster (3.47 vs 4.00
    ms). The (K, B) result is made contiguous again (row-wise arg-min over a transposed view is
    4× slower)."""
    if centers.shape[0] <= 16 and (torch.get_num_threads() == 1 or block.shape[1] <= 1024):
        return torch.addmm(c_sq.unsqueeze(1), centers, block.T, alpha=-2.0).T.contiguous()
    return torch.addmm(c_sq.unsqueeze(0), block, centers.T, alpha=-2.0)


# Elkan's state between iterations: labels (N,), upper (N,) and lower (N, K) distance bounds
# relative to the centres of the previous call, the shifts δ (K,) that moved those centres to
# the current ones (applied lazily, block by block, by the next call), and the per-cluster
# sums (K, D, float64) and counts (K,) of the labels.
Bounds = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]
_BLOCK_CHUNKS = 4  # rows per bounds block = 4 × chunk_size: the block's (rows, K) bounds stay in cache


def elkan_step(y: Tensor, y_sq: Tensor, centers: Tensor, bounds: Bounds | None,
               chunk_size: int = 1024) -> tuple[Tensor, Tensor, float, float, Bounds | None]:
    """One Lloyd iteration with Elkan's triangle-inequality bounds (Elkan, "Using the triangle
    inequality to accelerate k-means", ICML 2003), vectorised: the same labels as
    :func:`lloyd_step`, computing a sample's distances only when its bounds cannot prove that
    its centre is still the nearest, and touching only the samples that change cluster.

    ``bounds`` = (labels, u, l, sums, counts, δ) from the previous call (None: compute every
    distance), u and l **updated in place**: u_i ≥ ‖y_i − c_{a_i}‖ and l_ij ≤ ‖y_i − c_j‖ once the
    previous shifts δ are applied (u_i += δ_{a_i}, l_ij −= δ_j). A sample keeps its label when
    u_i < l_ij for every j ≠ a_i (with a relative slack of 1e-5 for the round-off of the
    one-GEMM distances); the others get all their distances by one GEMM per ``chunk_size``
    rows. The shift, the test and the fresh distances are applied block by block (4 ×
    ``chunk_size`` rows), so the N × K bounds are read and written once per iteration while
    each block is in cache. The per-cluster sums S_k are kept in float64 and updated by the
    samples that changed cluster only (S_new += y_i, S_old −= y_i), so an iteration in which
    few samples move reads few of them; the centres S_k / n_k then agree with Lloyd's float32
    re-summation to float32 round-off. The inertia of the old centres comes from the sums,
    Σ‖y‖² − 2 Σ_k c_k·S_k + Σ_k n_k ‖c_k‖² (float64). Returns (new centres, labels, total
    squared shift, inertia, new bounds); an empty cluster falls back to one
    :func:`lloyd_step` (its rule needs every exact distance) and returns None bounds."""
    n, k = y.shape[0], centers.shape[0]
    c_sq = (centers * centers).sum(-1)
    top = float(c_sq.max())
    if bounds is None:
        labels = torch.empty(n, dtype=torch.long, device=y.device)
        upper = torch.empty(n, dtype=y.dtype, device=y.device)
        lower = torch.empty(n, k, dtype=y.dtype, device=y.device)
    else:
        previous, upper, lower, sums, counts, shift = bounds
        labels = previous.clone()  # a new tensor: callers compare it with the previous labels
        ratio = (1 + _MARGIN) / (1 - _MARGIN)
    computed = []
    rows_per_block = _BLOCK_CHUNKS * chunk_size
    for start in range(0, n, rows_per_block):
        stop = min(n, start + rows_per_block)
        todo = None
        if bounds is not None:
            low, up = lower[start:stop], upper[start:stop]
            low.sub_(shift)
            up.add_(shift[labels[start:stop]])
            # Row i is open when some l_ij < u_i (with slack); l_{i a_i} ≤ u_i always counts,
            # so "open" is "more than one l_ij below u_i" (no masking of the own centre).
            todo = ((low < (up * ratio).unsqueeze(1)).sum(1) > 1).nonzero().squeeze(1).add_(start)
            if 2 * todo.numel() > stop - start:  # most rows open: a contiguous block beats a gather
                todo = None
        parts = [torch.arange(i, min(i + chunk_size, stop), device=y.device)
                 for i in range(start, stop, chunk_size)] if todo is None else todo.split(chunk_size)
        for part in parts:
            # index_select, not y[part]: ~5× faster row gathers on the CPU
            block = y[int(part[0]):int(part[-1]) + 1] if todo is None else y.index_select(0, part)
            d = _distance_terms(block, centers, c_sq)
            d += y_sq[part].unsqueeze(1)
            slack = (_MARGIN * (y_sq[part] + top)).unsqueeze(1)
            best = d.argmin(1)
            labels[part] = best
            lower.index_copy_(0, part, (d - slack).clamp_min_(0.0).sqrt_())
            upper[part] = (d.gather(1, best.unsqueeze(1)) + slack).clamp_min_(0.0).sqrt_().squeeze(1)
            computed.append(part)
    if bounds is None:
        sums = torch.zeros_like(centers).index_add_(0, labels, y).double()
        counts = torch.bincount(labels, minlength=k).double()
    elif computed:
        done = torch.cat(computed)
        moved_rows = done[labels[done] != previous[done]]
        if moved_rows.numel():
            rows = y.index_select(0, moved_rows).double()
            sums = sums.index_add(0, labels[moved_rows], rows).index_add_(0, previous[moved_rows], rows,
                                                                          alpha=-1.0)
            counts = counts + torch.bincount(labels[moved_rows], minlength=k) \
                - torch.bincount(previous[moved_rows], minlength=k)
    if bool((counts == 0).any()):
        return (*lloyd_step(y, y_sq, centers, chunk_size), None)
    inertia = float(y_sq.sum(dtype=torch.float64) - 2.0 * (centers.double() * sums).sum()
                    + (counts * c_sq.double()).sum())
    new = (sums / counts[:, None]).to(centers.dtype)
    shift_sq = (new - centers).pow(2).sum(-1)
    return new, labels, float(shift_sq.sum()), inertia, (labels, upper, lower, sums, counts, shift_sq.sqrt())


class KMeans(Energy):
    """K-means clustering, scikit-learn style, as an :class:`Energy` with a one-hot latent.

    Parameters
    ----------
    n_clusters : int
    init : "k-means++", "random" or array (K, D)
        Seeding; an explicit array gives exactly those starting centres (one run).
    n_init : int
        Restarts from different seeds; the lowest inertia wins.
    max_iter : int
    tol : float
        Relative tolerance: stop when Σ_k ‖Δw_k‖² ≤ tol · mean per-feature variance.
    seed : int, torch.Generator or None
    dtype : torch.dtype, "float32"/"float64" or None (keep the input's)
    chunk_size : int
        Rows per fused distance + scatter-add block (cache-sized: y is read once per
        Lloyd iteration).
    algorithm : "auto", "elkan" or "lloyd"
        Both run Lloyd's iteration with the same labels and centres; "elkan" skips the
        distances its triangle-inequality bounds prove unnecessary (:func:`elkan_step`; N × K
        bounds in memory), "lloyd" computes all of them every iteration. "auto": Elkan while
        N · K ≤ 5·10⁷.

    Attributes
    ----------
    cluster_centers_ : Tensor (K, D)
    labels_ : Tensor (N,)
    inertia_ : float     Σ_i min_k ‖y_i − w_k‖²
    n_iter_ : int

    References
    ----------
    Lloyd, "Least squares quantization in PCM" (1982); Arthur & Vassilvitskii,
    "k-means++: the advantages of careful seeding" (SODA 2007).

    Examples
    --------
    >>> import torch
    >>> y = torch.cat([torch.randn(50, 2) - 5, torch.randn(50, 2) + 5])
    >>> km = KMeans(2, seed=0).fit(y)
    >>> km.predict(y).bincount().tolist()
    [50, 50]
    """

    has_latent = True

    def __init__(self, n_clusters: int = 8, *, init: str | Any = "k-means++", n_init: int = 1,
                 max_iter: int = 300, tol: float = 1e-4, seed: int | torch.Generator | None = None,
                 dtype: torch.dtype | str | None = None, chunk_size: int = 1024,
                 algorithm: str = "auto") -> None:
        super().__init__()
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.algorithm = algorithm
        self.cluster_centers_: Tensor | None = None
        self._fit_cache: tuple[Any, Tensor, Tensor] | None = None

    def _check_params(self, n_samples: int) -> None:
        k = self.n_clusters
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"n_clusters must be a positive integer, got {k!r}")
        if k > n_samples:
            raise ValueError(f"n_clusters={k} is larger than the number of samples ({n_samples})")
        for name in ("n_init", "max_iter", "chunk_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        check_positive("tol", self.tol, allow_zero=True)
        if self.algorithm not in ("auto", "elkan", "lloyd"):
            raise ValueError(f"algorithm must be 'auto', 'elkan' or 'lloyd', got {self.algorithm!r}")

    def _initial_centers(self, y: Tensor, generator: torch.Generator) -> Tensor:
        if isinstance(self.init, str):
            if self.init == "k-means++":
                return kmeans_plusplus(y, self.n_clusters, generator)
            if self.init == "random":
                return y[torch.randperm(y.shape[0], generator=generator)[: self.n_clusters]].clone()
            raise ValueError(f"init must be 'k-means++', 'random' or an array (K, D); got {self.init!r}")
        centers = as_data("init", self.init, dtype=y.dtype, device=y.device)
        if centers.shape != (self.n_clusters, y.shape[1]):
            raise ValueError(f"init must have shape ({self.n_clusters}, {y.shape[1]}), "
                             f"got {tuple(centers.shape)}")
        return centers.clone()

    def fit(self, y: Any) -> KMeans:
        """Run ``n_init`` seedings + Lloyd on y (N, D); keep the lowest inertia."""
        from genoise.train.estimator import run_steps

        run_steps(self, y, make_generator(self.seed))
        return self

    # ------------------------------------------------------------------ step-wise fit
    # One step is one Lloyd iteration; the ``n_init`` restarts follow one another, each
    # seeded when the previous one ends, so the steps replay the same generator draws as
    # a single ``fit`` (see :func:`genoise.train.estimator.fit_estimator`).
    def _fit_data(self, y: Any) -> tuple[Tensor, Tensor]:
        """(y as a tensor, its squared row norms), cached from ``init_fit``."""
        if self._fit_cache is None or self._fit_cache[0] is not y:
            data = as_data("y", y, dtype=resolve_dtype(self.dtype))
            self._fit_cache = (y, data, (data * data).sum(-1))
        return self._fit_cache[1], self._fit_cache[2]

    def init_fit(self, y: Any, generator: torch.Generator) -> None:
        """Validate y (N, D) and the parameters, seed the first restart from ``generator``."""
        data = as_data("y", y, dtype=resolve_dtype(self.dtype))
        self._check_params(data.shape[0])
        y_sq = squared_norms(data)
        self._fit_cache = (y, data, y_sq)
        self._generator = generator
        self._tol = self.tol * mean_variance(data, y_sq)
        self._restarts = 1 if not isinstance(self.init, str) else self.n_init
        self._restart, self._iter, self._labels_old, self._best, self._bounds = 0, 0, None, None, None
        self._elkan = self.algorithm == "elkan" or (
            self.algorithm == "auto" and data.shape[0] * self.n_clusters <= ELKAN_MAX_BOUNDS)
        self._centers = self._initial_centers(data, generator)
        self.converged_ = False
        self.n_features_in_ = data.shape[1]

    def fit_step(self, y: Any) -> dict[str, float]:
        """One Lloyd iteration of the current restart; returns its ``energy`` (the mean
        min_k ‖y − w_k‖² before the update), ``shift`` and ``restart``."""
        data, y_sq = self._fit_data(y)
        old = self._centers
        if self._elkan:
            self._centers, labels, shift, inertia, self._bounds = elkan_step(
                data, y_sq, old, self._bounds, self.chunk_size)
        else:
            self._centers, labels, shift, inertia = lloyd_step(data, y_sq, old, self.chunk_size)
        self._iter += 1
        row = {"restart": self._restart + 1, "energy": inertia / data.shape[0], "shift": shift}
        done = (self._labels_old is not None and torch.equal(labels, self._labels_old)) \
            or shift <= self._tol or self._iter >= self.max_iter
        self._labels_old = labels
        if done:
            self._end_restart(data, y_sq)
        return row

    def _end_restart(self, data: Tensor, y_sq: Tensor) -> None:
        labels, dist, _ = assign_and_accumulate(data, y_sq, self._centers, self.chunk_size)
        inertia = float(dist.sum())
        if self._best is None or inertia < self._best[2]:
            self._best = (self._centers, labels, inertia, self._iter)
        self._restart += 1
        self._iter, self._labels_old, self._bounds = 0, None, None
        if self._restart < self._restarts:
            self._centers = self._initial_centers(data, self._generator)
            return
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = self._best
        self.converged_ = True

    _STATE = ("_centers", "_iter", "_labels_old", "_bounds", "_best", "_restart", "_restarts", "_tol",
              "converged_", "cluster_centers_", "labels_", "inertia_", "n_iter_", "n_features_in_")

    def state_dict(self) -> dict[str, Any]:
        """The fit in progress (not the data, not the generator)."""
        return {name: getattr(self, name, None) for name in self._STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self._STATE:
            setattr(self, name, state[name])

    def _input(self, y: Any) -> Tensor:
        check_fitted(self, "cluster_centers_")
        y = as_data("y", y, dtype=self.cluster_centers_.dtype, device=self.cluster_centers_.device)
        check_features("y", y, self.n_features_in_)
        return y

    def predict(self, y: Any) -> Tensor:
        """Index of the nearest prototype, (N,) int64."""
        return nearest(self._input(y), self.cluster_centers_, self.chunk_size)[0]

    def fit_predict(self, y: Any) -> Tensor:
        return self.fit(y).labels_

    def transform(self, y: Any) -> Tensor:
        """Euclidean distances to every prototype, (N, K) (scikit-learn's convention)."""
        return squared_distances(self._input(y), self.cluster_centers_).sqrt()

    def score(self, y: Any) -> float:
        """Minus the inertia of y (higher is better), as scikit-learn."""
        return -float(nearest(self._input(y), self.cluster_centers_, self.chunk_size)[1].sum())

    # ------------------------------------------------------------------ energy surface
    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """E(y, z) = ‖y − Wᵀz‖², (B,); z (B, K) one-hot (z = nearest prototype when None)."""
        y = self._input(y)
        if z is None:
            return nearest(y, self.cluster_centers_, self.chunk_size)[1]
        z = as_data("z", z, dtype=y.dtype, device=y.device)
        return ((y - z @ self.cluster_centers_) ** 2).sum(-1)

    def latent_candidates(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """The K one-hot codes (identity K×K): the free energy is exact."""
        check_fitted(self, "cluster_centers_")
        return torch.eye(self.n_clusters, dtype=self.cluster_centers_.dtype,
                         device=self.cluster_centers_.device)

    def energies_over_latents(self, y: Tensor, x: Tensor | None, candidates: Tensor) -> Tensor:
        """‖y_b − Wᵀc_k‖² for every sample and candidate code c_k, (B, K'), one matmul
        (no (B·K, D) tiling)."""
        y = self._input(y)
        return squared_distances(y, candidates.to(y.dtype) @ self.cluster_centers_)
