"""Soft key-value memory: dense read vs explicit loops, masking, top-k (exact and faiss)."""

from __future__ import annotations

import math

import pytest
import torch

from genoise.memory import KeyValueMemory, build_index, soft_read, topk_read


def _loop_read(query, keys, values, mask=None, temperature=1.0):
    out = torch.zeros(query.shape[0], values.shape[-1], dtype=torch.float64)
    for b in range(query.shape[0]):
        K = keys if keys.ndim == 2 else keys[b]
        V = values if values.ndim == 2 else values[b]
        slots = [i for i in range(K.shape[0]) if mask is None or bool(mask[b, i])]
        scores = [float(K[i] @ query[b]) / temperature for i in slots]
        z = sum(math.exp(s) for s in scores)
        for i, s in zip(slots, scores, strict=True):
            out[b] += math.exp(s) / z * V[i].double()
    return out


def test_soft_read_equals_explicit_loop_shared_and_batched_keys(generator):
    q = torch.randn(3, 4, generator=generator)
    K, V = torch.randn(6, 4, generator=generator), torch.randn(6, 2, generator=generator)
    torch.testing.assert_close(soft_read(q, K, V).double(), _loop_read(q, K, V), rtol=1e-5, atol=1e-6)
    Kb, Vb = torch.randn(3, 6, 4, generator=generator), torch.randn(3, 6, 2, generator=generator)
    got = soft_read(q, Kb, Vb, temperature=0.5).double()
    torch.testing.assert_close(got, _loop_read(q, Kb, Vb, temperature=0.5), rtol=1e-5, atol=1e-6)


def test_masked_slots_get_no_weight_and_empty_memory_reads_zero(generator):
    q = torch.randn(3, 4, generator=generator)
    K, V = torch.randn(3, 5, 4, generator=generator), torch.randn(3, 5, 2, generator=generator)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    out, weights = soft_read(q, K, V, mask, return_weights=True)
    assert torch.all(weights[~mask] == 0)
    torch.testing.assert_close(weights[:2].sum(1), torch.ones(2))
    torch.testing.assert_close(out[:2].double(), _loop_read(q[:2], K[:2], V[:2], mask[:2]), rtol=1e-5,
                               atol=1e-6)
    assert torch.all(out[2] == 0)
    # changing a masked slot's content changes nothing
    K2 = K.clone()
    K2[0, 3] += 100.0
    torch.testing.assert_close(soft_read(q, K2, V, mask), out)


def test_linear_read_skips_softmax(generator):
    q, K = torch.randn(2, 3, generator=generator), torch.randn(4, 3, generator=generator)
    V = torch.randn(4, 2, generator=generator)
    torch.testing.assert_close(soft_read(q, K, V, linear=True), (q @ K.T) @ V)


@pytest.mark.parametrize("kind", ["exact", "flat", "ivf", "hnsw"])
def test_topk_read_with_k_equal_n_is_the_dense_read(kind, generator):
    K, V = torch.randn(64, 8, generator=generator), torch.randn(64, 3, generator=generator)
    q = torch.randn(5, 8, generator=generator)
    index = None if kind == "exact" else build_index(K, kind, nlist=4, nprobe=4)
    torch.testing.assert_close(topk_read(q, K, V, 64, index=index), soft_read(q, K, V), rtol=1e-5, atol=1e-6)


def test_topk_read_selects_the_largest_scores_and_renormalises(generator):
    K, V = torch.randn(50, 6, generator=generator), torch.randn(50, 2, generator=generator)
    q = torch.randn(4, 6, generator=generator)
    out, ids, weights = topk_read(q, K, V, 5, index=build_index(K, "flat"), return_weights=True)
    expected = (q @ K.T).topk(5, dim=1).indices
    assert torch.equal(ids.sort(1).values, expected.sort(1).values)
    torch.testing.assert_close(weights.sum(1), torch.ones(4))
    ref = soft_read(q, K[ids[0]], V[ids[0]])[:1]
    torch.testing.assert_close(out[:1], ref)


def test_gradients_reach_selected_keys_and_values_only(generator):
    K = torch.randn(40, 5, generator=generator, requires_grad=True)
    V = torch.randn(40, 3, generator=generator, requires_grad=True)
    q = torch.randn(2, 5, generator=generator, requires_grad=True)
    out, ids, _ = topk_read(q, K, V, 4, index=build_index(K, "hnsw"), return_weights=True)
    out.sum().backward()
    selected = torch.zeros(40, dtype=torch.bool)
    selected[ids.flatten()] = True
    assert torch.all(K.grad[selected].abs().sum(1) > 0) and torch.all(V.grad[selected].abs().sum(1) > 0)
    assert torch.all(K.grad[~selected] == 0) and torch.all(V.grad[~selected] == 0)
    assert q.grad.abs().sum() > 0


def test_topk_gradient_matches_dense_gradient_on_the_selected_rows(generator):
    # with k = N the sparse and dense reads are the same function: same gradients
    K1 = torch.randn(10, 4, generator=generator, requires_grad=True)
    K2 = K1.detach().clone().requires_grad_(True)
    V, q = torch.randn(10, 2, generator=generator), torch.randn(3, 4, generator=generator)
    soft_read(q, K1, V).pow(2).sum().backward()
    topk_read(q, K2, V, 10).pow(2).sum().backward()
    torch.testing.assert_close(K1.grad, K2.grad, rtol=1e-5, atol=1e-6)


def test_topk_read_respects_mask_without_index(generator):
    K, V = torch.randn(2, 6, 3, generator=generator), torch.randn(2, 6, 2, generator=generator)
    q = torch.randn(2, 3, generator=generator)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    torch.testing.assert_close(topk_read(q, K, V, 6, mask=mask), soft_read(q, K, V, mask))


def test_module_write_append_and_reads(generator):
    memory = KeyValueMemory(key_dim=4, value_dim=2)
    K, V = torch.randn(30, 4, generator=generator), torch.randn(30, 2, generator=generator)
    memory.write(K[:20], V[:20])
    memory.index("flat")  # built now, must be extended by append
    memory.append(K[20:], V[20:])
    assert len(memory) == 30 and memory.index("flat").ntotal == 30
    q = torch.randn(3, 4, generator=generator)
    torch.testing.assert_close(memory.read(q), soft_read(q, K, V))
    torch.testing.assert_close(memory.read_topk(q, 30, index="flat"), soft_read(q, K, V),
                               rtol=1e-5, atol=1e-6)


def test_bad_inputs_raise_one_line_errors(generator):
    q, K, V = torch.randn(2, 4), torch.randn(5, 4), torch.randn(5, 2)
    with pytest.raises(ValueError, match="keys dim"):
        soft_read(q, torch.randn(5, 3), V)
    with pytest.raises(ValueError, match="same number of slots"):
        soft_read(q, K, torch.randn(4, 2))
    with pytest.raises(ValueError, match="mask must be a bool"):
        soft_read(q, K, V, torch.ones(2, 5))
    with pytest.raises(ValueError, match="k must be a positive"):
        topk_read(q, K, V, 0)
    with pytest.raises(ValueError, match="rebuild"):
        topk_read(q, K, V, 2, index=build_index(K[:3]))
    with pytest.raises(ValueError, match="empty"):
        KeyValueMemory(4, 2).read(q)
    with pytest.raises(ValueError, match="kind"):
        build_index(K, "lsh")
