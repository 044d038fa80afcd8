"""A product of readers: each reader's log P(y | x) of any reading (against its own confidence,
nn.CTCLoss and a sum over every reading), the product's choice and confidence on hand-made
opinions (closed form), a mixed check reader + SDNN product through ``read_strings``, and bad
input."""

from __future__ import annotations

import math

import pytest
import torch

from genoise.data.digit_strings import DigitStringConfig, digit_strings
from genoise.structured.experts import Opinion, opinion, product_reading, read_with_experts
from genoise.structured.grammar import amount_grammar
from genoise.structured.graph import Graph
from genoise.structured.reader import CheckReader, decode
from genoise.structured.sdnn import SDNN
from genoise.structured.semiring import forward_score
from genoise.structured.train import read_strings


def _strings(n: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(10, 28, 28)
    for k in range(10):  # ten distinct blobs, one per digit class
        images[k, 6:22, 8 + k % 4 : 14 + k % 4] = torch.rand(16, 6, generator=g) * 0.5 + 0.5
    config = DigitStringConfig(min_length=3, max_length=4, min_gap=2, max_gap=4)
    return digit_strings(images, torch.arange(10), n, config, seed=seed)


def _two_readings(p_first: float) -> Opinion:
    """One string, readings "12" (probability p_first) and "13": a graph 0 -1-> 1 -{2,3}-> 2."""
    arcs = torch.tensor([[0, 1, 1], [1, 2, 2], [1, 2, 3]])
    weight = torch.tensor([0.0, math.log(p_first), math.log(1 - p_first)], dtype=torch.float64)
    graph = Graph.from_arcs(3, arcs, weight, final=[2])
    return Opinion(decode(graph), graph, None, None, forward_score(graph))


def test_the_product_picks_the_reading_both_readers_believe_and_sums_their_log_posteriors():
    a, b = _two_readings(0.6), _two_readings(0.1)  # a reads "12" (0.6), b reads "13" (0.9)
    assert a.reading.labels[0].tolist() == [1, 2] and b.reading.labels[0].tolist() == [1, 3]
    product = product_reading([a, b])
    assert product.labels[0].tolist() == [1, 3] and int(product.lengths[0]) == 2
    assert float(product.confidence[0]) == pytest.approx(math.log(0.4) + math.log(0.9), abs=1e-9)
    tie = product_reading([_two_readings(0.5), _two_readings(0.5)])  # both readings 0.25: the first reader's
    assert tie.labels[0].tolist() == decode(_two_readings(0.5).graph).labels[0].tolist()
    one = product_reading([a])  # a product of one reader is that reader
    assert torch.equal(one.labels, a.reading.labels)
    torch.testing.assert_close(one.confidence, a.reading.confidence)


@pytest.mark.parametrize("grammar", [None, amount_grammar()])
def test_each_readers_log_posterior_of_its_own_reading_is_its_confidence(grammar):
    strings = _strings()
    torch.manual_seed(0)
    for model in (CheckReader(max_span=2), SDNN(width=4)):
        with torch.no_grad():
            view = opinion(model.eval(), strings.images, strings.widths, grammar)
            mine = view.log_posterior(view.reading.labels, view.reading.lengths)
        torch.testing.assert_close(mine, view.reading.confidence, atol=1e-5, rtol=0)


def test_the_sdnns_log_posterior_is_minus_ctc_and_the_readers_sum_to_one_over_readings():
    strings = _strings(n=1, seed=3)
    torch.manual_seed(0)
    sdnn = SDNN(width=4).eval()
    with torch.no_grad():
        view = opinion(sdnn, strings.images, strings.widths)
        y, lengths = torch.tensor([[4, 2, 7]]), torch.tensor([3])
        ctc = torch.nn.CTCLoss(reduction="none")(view.log_probs, y + 1, view.frames, lengths)
        torch.testing.assert_close(view.log_posterior(y, lengths), -ctc)
    # a check reader over a two-piece string (max_span=1 and 2): its readings are every one- and
    # two-symbol sequence; their posteriors sum to 1
    reader = CheckReader(max_span=2).eval()
    images = torch.zeros(1, 28, 40)
    images[0, 6:22, 6:12] = 1.0
    images[0, 6:22, 24:30] = 1.0
    with torch.no_grad():
        view = opinion(reader, images, torch.tensor([40]))
        one = [view.log_posterior(torch.tensor([[a]]), torch.tensor([1])) for a in range(11)]
        two = [view.log_posterior(torch.tensor([[a, b]]), torch.tensor([2]))
               for a in range(11) for b in range(11)]
    assert float(torch.logsumexp(torch.cat(one + two), 0)) == pytest.approx(0.0, abs=1e-5)
    with torch.no_grad():  # a reading it cannot produce: three symbols from two pieces
        assert float(view.log_posterior(torch.tensor([[1, 2, 3]]), torch.tensor([3]))[0]) == -math.inf


def test_a_mixed_product_through_read_strings_reads_the_best_candidate_with_the_summed_confidence():
    strings = _strings(n=4)
    torch.manual_seed(0)
    reader, sdnn = CheckReader(max_span=2), SDNN(width=4)
    grammar = amount_grammar()
    both = read_strings([reader, sdnn], strings, grammar)
    with torch.no_grad():
        views = [opinion(m.eval(), strings.images, strings.widths, grammar) for m in (reader, sdnn)]
        score = [sum(v.log_posterior(c.reading.labels, c.reading.lengths) for v in views) for c in views]
    best = torch.maximum(score[0], score[1])
    torch.testing.assert_close(both.confidence, best, atol=1e-5, rtol=0)
    for b in range(4):
        text = both.labels[b, : int(both.lengths[b])].tolist()
        assert text in [v.reading.labels[b, : int(v.reading.lengths[b])].tolist() for v in views]
    alone = read_strings([reader], strings, grammar)  # a list of one: the reader itself
    plain = read_strings(reader, strings, grammar)
    assert torch.equal(alone.labels, plain.labels)
    torch.testing.assert_close(alone.confidence, plain.confidence)


def test_bad_products_are_refused_in_one_line():
    strings = _strings(n=1)
    with pytest.raises(ValueError, match="at least one reader"):
        product_reading([])
    with pytest.raises(TypeError, match="a reader is a CheckReader or an SDNN, got Linear"):
        read_with_experts([torch.nn.Linear(2, 2)], strings.images, strings.widths)
    with pytest.raises(ValueError, match="a product of readers have none"):
        read_strings([CheckReader(), SDNN(width=4)], strings, temperature=2.0)
