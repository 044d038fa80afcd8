"""MemN2N: position encoding, the factored batched forward vs the plain soft-read
definition, random noise, weight tying, bad input."""

from __future__ import annotations

import pytest
import torch

from genoise.memory import MemN2N, position_encoding, position_weights, random_noise_time


def test_position_encoding_matches_the_paper_formula():
    J, d = 6, 5
    got = position_encoding(J, d)
    for j in range(1, J + 1):
        for k in range(1, d + 1):
            expected = (1 - j / J) - (k / d) * (1 - 2 * j / J)
            assert abs(float(got[j - 1, k - 1]) - expected) < 1e-6


def test_paper_position_weights_use_each_sentence_own_length_and_zero_padding():
    tokens = torch.tensor([[4, 5, 6, 0, 0], [7, 8, 9, 10, 11]])
    w = position_weights(tokens, 3)
    torch.testing.assert_close(w[0, :3], position_encoding(3, 3))
    assert torch.all(w[0, 3:] == 0)
    torch.testing.assert_close(w[1], position_encoding(5, 3))
    assert torch.all(position_weights(tokens, 3, "bow")[0] == torch.tensor([1, 1, 1, 0, 0.0])[:, None])


def _toy(generator, vocab=40, slots=10):
    sentences = torch.randint(1, vocab, (20, 6), generator=generator)
    sentences[:, 4:] = 0
    sentences[0] = 0
    sentences[5, 2:] = 0
    memories = torch.randint(1, 20, (7, slots), generator=generator)
    memories[:, 6:] = 0
    memories[3] = 0  # a question with an empty memory
    queries = torch.randint(1, vocab, (7, 5), generator=generator)
    queries[:, 4] = 0
    return queries, sentences, memories


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
@pytest.mark.parametrize("encoding", ["bow", "pe", "pe-paper"])
@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("empty_slots", ["zero", "masked"])
def test_factored_forward_equals_plain_soft_read_definition(tying, encoding, linear, empty_slots, generator):
    model = MemN2N(40, 10, 8, 3, encoding=encoding, tying=tying, generator=generator,
                   empty_slots=empty_slots)
    queries, sentences, memories = _toy(generator)
    time = random_noise_time(memories > 0, 0.3, generator)
    got = model(queries, sentences, memories, time=time, linear=linear)
    ref = model.forward_reference(queries, sentences, memories, time=time, linear=linear)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("empty_slots", ["masked", "zero"])
def test_one_hop_matches_hand_computation(generator, empty_slots):
    model = MemN2N(12, 4, 3, 1, encoding="bow", temporal=False, generator=generator,
                   empty_slots=empty_slots)
    A, C = model.words[0], model.words[1]  # adjacent: B = A, W = C
    sentences = torch.tensor([[0, 0], [1, 2], [3, 0]])
    memories = torch.tensor([[2, 1, 0, 0]])
    query = torch.tensor([[4, 5]])
    u = A[4] + A[5]
    m = torch.stack([A[3], A[1] + A[2]])
    c = torch.stack([C[3], C[1] + C[2]])
    scores = m @ u
    if empty_slots == "zero":  # the two empty slots are zero vectors: score 0, output 0
        p = torch.softmax(torch.cat([scores, torch.zeros(2)]), dim=0)[:2]
    else:
        p = torch.softmax(scores, dim=0)
    expected = (u + p @ c) @ C.T
    torch.testing.assert_close(model(query, sentences, memories)[0], expected)


def test_released_code_position_encoding_uses_one_length_and_weights_the_time_word():
    d, words = 4, 3
    model = MemN2N(12, 4, d, 1, encoding="pe", sentence_length=words)
    J = words + 1  # + the time word's position
    l = position_encoding(J, d, form="code")
    for j in range(1, J + 1):
        for k in range(1, d + 1):
            expected = 1 + 4 * (k - (d + 1) / 2) * (j - (J + 1) / 2) / (d * J)
            assert abs(float(l[j - 1, k - 1]) - expected) < 1e-6
    tokens = torch.tensor([[3, 4, 0], [5, 6, 7]])  # two sentences of different lengths
    E = model.words[0]
    got = model.embed(E, tokens, J)
    torch.testing.assert_close(got[0], l[0] * E[3] + l[1] * E[4])  # same l for every sentence
    torch.testing.assert_close(got[1], l[0] * E[5] + l[1] * E[6] + l[2] * E[7])
    torch.testing.assert_close(model.time_scale(J), l[-1])


def test_zero_empty_slots_take_softmax_mass(generator):
    queries, sentences, memories = _toy(generator)
    masked = MemN2N(40, 10, 8, 1, empty_slots="masked", generator=generator)
    zero = MemN2N(40, 10, 8, 1, empty_slots="zero")
    zero.load_state_dict(masked.state_dict())
    _, p_masked = masked(queries, sentences, memories, return_attention=True)
    _, p_zero = zero(queries, sentences, memories, return_attention=True)
    partial = memories.gt(0).any(1)
    assert torch.all(p_masked[:, partial].sum(-1) > 0.999)
    assert torch.all(p_zero[:, partial].sum(-1) < 1)  # the empty slots took a share
    assert torch.all(p_zero[:, memories == 0] == 0)
    ratio = p_zero[:, partial] / p_masked[:, partial].clamp_min(1e-30)  # same softmax, renormalised
    real = memories[partial].gt(0).expand_as(ratio)
    torch.testing.assert_close(ratio[real], ratio[..., :1].expand_as(ratio)[real])


def test_attention_is_zero_on_empty_slots_and_sums_to_one(generator):
    model = MemN2N(40, 10, 8, 2, generator=generator, empty_slots="masked")
    queries, sentences, memories = _toy(generator)
    _, attention = model(queries, sentences, memories, return_attention=True)
    assert attention.shape == (2, 7, 10)
    assert torch.all(attention[:, memories == 0] == 0)
    rows = memories.gt(0).any(1)
    torch.testing.assert_close(attention[:, rows].sum(-1), torch.ones(2, int(rows.sum())))


def test_random_noise_inserts_gaps_in_time_but_keeps_order(generator):
    mask = torch.ones(2000, 50, dtype=torch.bool)
    mask[:, 30:] = False
    time = random_noise_time(mask, 0.1, generator)
    assert torch.all(time[:, 1:30] >= time[:, :29])  # monotone
    shift = (time[:, 29] - 29).float().mean()
    assert 2.0 < shift < 4.0  # ≈ 0.1 · 30 empty memories before the 30th sentence
    assert torch.equal(random_noise_time(mask, 0.0), torch.arange(50).expand(2000, 50))
    assert int(time.max()) <= 49


def test_adjacent_and_layerwise_tying_parameter_counts():
    V, M, d, K = 30, 10, 6, 3
    adjacent = MemN2N(V, M, d, K)
    layerwise = MemN2N(V, M, d, K, tying="layerwise")
    assert sum(p.numel() for p in adjacent.parameters()) == (K + 1) * (V * d + M * d)
    assert sum(p.numel() for p in layerwise.parameters()) == 4 * V * d + 2 * M * d + d * d


def test_bad_inputs_raise(generator):
    with pytest.raises(ValueError, match="encoding"):
        MemN2N(10, 5, 4, 1, encoding="bag")
    with pytest.raises(ValueError, match="hops"):
        MemN2N(10, 5, 4, 0)
    with pytest.raises(ValueError, match="empty_slots"):
        MemN2N(10, 5, 4, 1, empty_slots="none")
    with pytest.raises(ValueError, match="sentence_length"):
        MemN2N(10, 5, 4, 1, sentence_length=0)
    model = MemN2N(40, 5, 4, 1)
    queries, sentences, memories = _toy(generator)
    with pytest.raises(ValueError, match="memory_size"):
        model(queries, sentences, memories)
    with pytest.raises(ValueError, match="batch sizes"):
        model(queries[:2], sentences, memories[:, :5])


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
@pytest.mark.parametrize("encoding", ["bow", "pe", "pe-paper"])
@pytest.mark.parametrize("linear", [False, True])
def test_double_model_runs_in_float64_and_agrees_with_float32(tying, encoding, linear, generator):
    model = MemN2N(40, 10, 8, 3, encoding=encoding, tying=tying, generator=generator)
    queries, sentences, memories = _toy(generator)
    time = random_noise_time(memories > 0, 0.3, generator)
    single = model(queries, sentences, memories, time=time, linear=linear)
    model.double()
    got = model(queries, sentences, memories, time=time, linear=linear)
    ref = model.forward_reference(queries, sentences, memories, time=time, linear=linear)
    assert got.dtype == ref.dtype == torch.float64
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)  # float64 tolerances, not float32's
    torch.testing.assert_close(got.float(), single, rtol=1e-5, atol=1e-5)


def test_double_model_gradients_pass_gradcheck(generator):
    """Finite differences in float64 check the backward of the factored forward."""
    model = MemN2N(40, 10, 4, 2, encoding="pe", generator=generator).double()
    queries, sentences, memories = _toy(generator)
    names = [name for name, _ in model.named_parameters()]

    def logits(*params: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(model, dict(zip(names, params, strict=True)),
                                          (queries[:3], sentences, memories[:3]))

    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())
    assert torch.autograd.gradcheck(logits, params, eps=1e-6, atol=1e-6)
