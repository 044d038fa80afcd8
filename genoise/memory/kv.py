"""Soft key-value memory: a differentiable associative "hash table" of pairs (K_i, V_i).

A read with query x is content-based addressing (Graves et al., "Neural Turing Machines",
arXiv:1410.5401, 2014, §3.3.1; Weston, Chopra, Bordes, "Memory Networks", ICLR 2015;
Sukhbaatar et al., "End-To-End Memory Networks", NeurIPS 2015, eq. 1–2)::

    C_i = softmax_i(β · K_iᵀ x)        (attention over the N slots; β = 1 / temperature)
    y   = Σ_i C_i V_i

The dense read costs O(N·D) per query. For large memories the top-k read keeps only the
k keys with the largest K_iᵀx, found by a nearest-neighbour (maximum inner product)
index — faiss ``IndexFlatIP`` (exact), ``IndexIVFFlat`` or ``IndexHNSWFlat``
(approximate) — and renormalises the softmax over those k. The index only *selects*
rows; the selected keys and values are gathered from the torch tensors, so gradients
flow to them (and to the query) exactly as in the dense read restricted to the k rows.
When k = N (or the top-k holds all the attention mass) the top-k read equals the dense one.

Shapes: query (B, D); keys (N, D) shared by the batch or (B, N, D) per sample; values
(N, Dv) or (B, N, Dv); mask (B, N) or (N,) bool, True = slot in use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from genoise._checks import check_choice, check_finite, check_ndim, check_positive

INDEX_KINDS = ("flat", "ivf", "hnsw")


def _check_memory(query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None) -> None:
    check_ndim("query", query, 2)
    check_ndim("keys", keys, (2, 3))
    check_ndim("values", values, keys.ndim)
    if keys.shape[-1] != query.shape[-1]:
        raise ValueError(f"keys dim {keys.shape[-1]} != query dim {query.shape[-1]} "
                         f"(keys {tuple(keys.shape)}, query {tuple(query.shape)})")
    if keys.shape[:-1] != values.shape[:-1]:
        raise ValueError(f"keys {tuple(keys.shape)} and values {tuple(values.shape)} "
                         "must have the same number of slots")
    if keys.ndim == 3 and keys.shape[0] != query.shape[0]:
        raise ValueError(f"batch sizes differ (query: {query.shape[0]}, keys: {keys.shape[0]})")
    if mask is not None:
        slots = keys.shape[-2]
        want = (query.shape[0], slots)
        if mask.dtype != torch.bool or tuple(mask.shape) not in (want, (slots,)):
            raise ValueError(f"mask must be a bool tensor of shape {want} or ({slots},), "
                             f"got {mask.dtype} {tuple(mask.shape)}")


def attention_scores(query: Tensor, keys: Tensor) -> Tensor:
    """Inner products K_iᵀx: (B, N)."""
    if keys.ndim == 2:
        return query @ keys.T
    return torch.einsum("bd,bnd->bn", query, keys)


def attention_weights(query: Tensor, keys: Tensor, mask: Tensor | None = None, *,
                      temperature: float = 1.0, linear: bool = False) -> Tensor:
    """C (B, N) = softmax_i(K_iᵀx / temperature) over the unmasked slots.

    ``linear=True`` skips the softmax (C_i = K_iᵀx on unmasked slots, 0 elsewhere): the
    "linear start" of Sukhbaatar et al. (2015, §4.2). A row whose mask is all False gets
    zero weights (an empty memory reads as the zero vector)."""
    scores = attention_scores(query, keys) / temperature
    if mask is not None:
        mask = mask.expand_as(scores)
    if linear:
        return scores if mask is None else scores * mask
    if mask is None:
        return torch.softmax(scores, dim=-1)
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return torch.nan_to_num(weights, nan=0.0)  # all-masked rows: 0/0


def weighted_sum(weights: Tensor, values: Tensor) -> Tensor:
    """Y = Σ_i C_i V_i: (B, Dv)."""
    if values.ndim == 2:
        return weights @ values
    return torch.einsum("bn,bnd->bd", weights, values)


def soft_read(query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None, *,
              temperature: float = 1.0, linear: bool = False,
              return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Dense soft read Y = Σ_i softmax_i(K_iᵀx / temperature) V_i (module docstring).

    Parameters
    ----------
    query : (B, D); keys : (N, D) or (B, N, D); values : (N, Dv) or (B, N, Dv)
    mask : (B, N) or (N,) bool, optional — True marks slots in use (variable-length memories)
    temperature : softmax temperature (1/β of Graves et al. 2014)
    linear : drop the softmax (linear start, Sukhbaatar et al. 2015)
    return_weights : also return the attention weights C (B, N)

    Examples
    --------
    >>> q, K, V = torch.randn(2, 4), torch.randn(5, 4), torch.randn(5, 3)
    >>> soft_read(q, K, V).shape
    torch.Size([2, 3])
    """
    _check_memory(query, keys, values, mask)
    check_positive("temperature", temperature)
    weights = attention_weights(query, keys, mask, temperature=temperature, linear=linear)
    out = weighted_sum(weights, values)
    return (out, weights) if return_weights else out


def build_index(keys: Tensor | np.ndarray, kind: str = "flat", *, nlist: int | None = None,
                nprobe: int = 8, hnsw_m: int = 32, ef_search: int = 64, seed: int = 0) -> Any:
    """A faiss maximum-inner-product index over ``keys`` (N, D).

    ``kind``: ``"flat"`` exact ``IndexFlatIP``; ``"ivf"`` ``IndexIVFFlat`` with ``nlist``
    k-means cells (default ≈ 4·√N) of which ``nprobe`` are scanned per query;
    ``"hnsw"`` ``IndexHNSWFlat`` (M = ``hnsw_m``, efSearch = ``ef_search``)."""
    import faiss

    check_choice("kind", kind, INDEX_KINDS)
    array = keys.detach().cpu().float().numpy() if isinstance(keys, Tensor) else np.asarray(keys)
    array = np.ascontiguousarray(array, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"keys must be a non-empty (N, D) array, got shape {array.shape}")
    n, dim = array.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = ef_search
    else:
        nlist = nlist or max(1, min(n // 39, int(4 * np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.cp.min_points_per_centroid = 1  # small memories: no warning
        rng = np.random.default_rng(seed)
        sample = array if n <= 64 * nlist else array[rng.choice(n, 64 * nlist, replace=False)]
        index.train(sample)
        index.nprobe = min(nprobe, nlist)
    index.add(array)
    return index


def topk_read(query: Tensor, keys: Tensor, values: Tensor, k: int, *, index: Any = None,
              mask: Tensor | None = None, temperature: float = 1.0,
              return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor, Tensor]:
    """Sparse read over the k best keys: Y = Σ_{i ∈ top-k(x)} softmax_{top-k}(K_iᵀx / T) V_i.

    Parameters
    ----------
    query : (B, D); keys : (N, D) or (B, N, D); values : (N, Dv) or (B, N, Dv)
    k : number of slots read per query (clipped to N)
    index : faiss index over ``keys`` (:func:`build_index`), only for shared (N, D) keys;
        ``None`` selects the top-k exactly with ``torch.topk``. Slots the index does not
        return (faiss id −1, e.g. an IVF probe with fewer than k entries) are ignored.
    mask : (B, N) or (N,) bool — only with ``index=None``
    return_weights : also return the selected slot ids (B, k) and their weights (B, k)

    The selection is not differentiable (it is a discrete choice); everything after it is:
    the selected rows are gathered from ``keys`` / ``values`` and the softmax runs in torch.
    """
    _check_memory(query, keys, values, mask)
    check_positive("temperature", temperature)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    n_slots = keys.shape[-2]
    k = min(k, n_slots)
    if index is not None:
        if keys.ndim != 2:
            raise ValueError("an index can only be used with shared keys of shape (N, D)")
        if mask is not None:
            raise ValueError("mask is not supported with an index; remove masked keys from the index")
        if index.ntotal != n_slots:
            raise ValueError(f"index holds {index.ntotal} keys but keys has {n_slots}; rebuild it")
        q = np.ascontiguousarray(query.detach().cpu().float().numpy())
        _, ids = index.search(q, k)
        ids_t = torch.from_numpy(ids).to(query.device)
        valid = ids_t >= 0
        ids_t = ids_t.clamp_min(0)
    else:
        scores = attention_scores(query, keys).detach()
        if mask is not None:
            scores = scores.masked_fill(~mask.expand_as(scores), float("-inf"))
        top, ids_t = scores.topk(k, dim=-1)
        valid = torch.isfinite(top)
    if keys.ndim == 2:
        sel_keys, sel_values = keys[ids_t], values[ids_t]  # (B, k, D), (B, k, Dv)
    else:
        batch = torch.arange(keys.shape[0], device=keys.device)[:, None]
        sel_keys, sel_values = keys[batch, ids_t], values[batch, ids_t]
    out, weights = soft_read(query, sel_keys, sel_values, valid, temperature=temperature,
                             return_weights=True)
    return (out, ids_t, weights) if return_weights else out


class KeyValueMemory(nn.Module):
    """A growable key-value memory with dense and top-k reads (thin wrapper of
    :func:`soft_read` / :func:`topk_read`).

    Keys and values are stored as given (they may carry gradients, e.g. when computed
    by an encoder in the same step); the faiss index is built lazily from a detached
    copy and extended on :meth:`append` (IVF cells are kept from the first build).

    Examples
    --------
    >>> memory = KeyValueMemory(key_dim=8, value_dim=4)
    >>> memory.append(torch.randn(100, 8), torch.randn(100, 4))
    >>> y = memory.read(torch.randn(2, 8))                           # dense, (2, 4)
    >>> y_sparse = memory.read_topk(torch.randn(2, 8), k=10, index="hnsw")
    """

    def __init__(self, key_dim: int, value_dim: int, *, temperature: float = 1.0) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        self.key_dim, self.value_dim, self.temperature = key_dim, value_dim, temperature
        self.keys = torch.zeros(0, key_dim)
        self.values = torch.zeros(0, value_dim)
        self._indexes: dict[str, Any] = {}
        self._index_options: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def _check_pairs(self, keys: Tensor, values: Tensor) -> None:
        check_ndim("keys", keys, 2)
        check_ndim("values", values, 2)
        if keys.shape[1] != self.key_dim or values.shape[1] != self.value_dim:
            raise ValueError(f"expected keys (N, {self.key_dim}) and values (N, {self.value_dim}), "
                             f"got {tuple(keys.shape)} and {tuple(values.shape)}")
        if keys.shape[0] != values.shape[0]:
            raise ValueError(f"keys ({keys.shape[0]}) and values ({values.shape[0]}) differ in count")
        check_finite("keys", keys)
        check_finite("values", values)

    def write(self, keys: Tensor, values: Tensor) -> None:
        """Replace the whole memory by (keys (N, Dk), values (N, Dv))."""
        self._check_pairs(keys, values)
        self.keys, self.values = keys, values
        self._indexes.clear()

    def append(self, keys: Tensor, values: Tensor) -> None:
        """Add rows at the end of the memory (and to any index already built)."""
        self._check_pairs(keys, values)
        self.keys = torch.cat([self.keys.to(keys), keys])
        self.values = torch.cat([self.values.to(values), values])
        for index in self._indexes.values():
            index.add(np.ascontiguousarray(keys.detach().cpu().float().numpy()))

    def clear(self) -> None:
        self.write(torch.zeros(0, self.key_dim), torch.zeros(0, self.value_dim))

    def index(self, kind: str = "flat", **options: Any) -> Any:
        """The faiss index of ``kind`` over the current keys (built on first use)."""
        if len(self) == 0:
            raise ValueError("the memory is empty; write or append keys first")
        if kind not in self._indexes or (options and options != self._index_options.get(kind)):
            self._indexes[kind] = build_index(self.keys, kind, **options)
            self._index_options[kind] = options
        return self._indexes[kind]

    def read(self, query: Tensor, mask: Tensor | None = None) -> Tensor:
        """Dense soft read (B, Dv)."""
        if len(self) == 0:
            raise ValueError("the memory is empty; write or append keys first")
        return soft_read(query, self.keys, self.values, mask, temperature=self.temperature)

    def read_topk(self, query: Tensor, k: int, index: str | None = "flat", **options: Any) -> Tensor:
        """Top-k read (B, Dv); ``index=None`` selects exactly with ``torch.topk``."""
        if len(self) == 0:
            raise ValueError("the memory is empty; write or append keys first")
        faiss_index = None if index is None else self.index(index, **options)
        return topk_read(query, self.keys, self.values, k, index=faiss_index,
                         temperature=self.temperature)

    def forward(self, query: Tensor) -> Tensor:
        return self.read(query)
