"""The check reader's graphs: interpretation graph layout, segment classes from pixel owners,
decoding and its confidence, and bad input."""

from __future__ import annotations

import pytest
import torch

from genoise.data.digit_strings import DigitStringConfig, digit_strings
from genoise.structured.grammar import amount_grammar
from genoise.structured.losses import graph_loss
from genoise.structured.reader import NUM_CLASSES, RUBBISH, CheckReader, decode, interpretation_graph
from genoise.structured.segmentation import Segments
from genoise.structured.semiring import forward_score


def _pool():
    """28 × 28 'digits': class c is a filled rectangle 3 + c columns wide (separate strokes)."""
    images = torch.zeros(10, 28, 28)
    for c in range(10):
        images[c, 6:22, 10 : 13 + c] = 1.0
    return images, torch.arange(10)


def _two_strings() -> Segments:
    """Segments of two strings: string 0 has boundaries 0, 1, 2 and segments 0→1, 0→2, 1→2
    (one or two characters); string 1 has one segment 0→1."""
    return Segments(
        string=torch.tensor([0, 0, 0, 1]),
        start=torch.tensor([0, 0, 1, 0]),
        end=torch.tensor([1, 2, 2, 1]),
        x0=torch.zeros(4, dtype=torch.long),
        x1=torch.ones(4, dtype=torch.long),
    )


def test_interpretation_graph_layout():
    segs = _two_strings()
    log_probs = torch.randn(4, NUM_CLASSES).log_softmax(-1)
    graph = interpretation_graph(log_probs, segs, torch.tensor([3, 2]))
    assert graph.num_arcs == 4 * 11 and graph.batch_size == 2
    assert graph.start.tolist() == [0, 3] and graph.final.tolist() == [2, 4]
    torch.testing.assert_close(graph.weight.view(4, 11), log_probs[:, :11])
    assert graph.label.view(4, 11)[2].tolist() == list(range(11))
    # readings of string 0: one segment (0→2) or two (0→1→2): log Σ = lse(one) ⊕ lse(two)
    first = torch.logsumexp(log_probs[1, :11], 0)
    second = torch.logsumexp(log_probs[0, :11], 0) + torch.logsumexp(log_probs[2, :11], 0)
    assert forward_score(graph)[0].item() == pytest.approx(torch.logaddexp(first, second).item(), abs=1e-5)


def test_segment_classes_follow_the_pixel_owners():
    images, labels = _pool()
    strings = digit_strings(
        images, labels, 6, DigitStringConfig(min_length=3, max_length=4, min_gap=2, max_gap=4), seed=0
    )
    reader = CheckReader(max_span=2)
    segmented = reader.segment(strings.images, strings.widths)
    classes = reader.segment_classes(segmented, strings.owner, strings.labels)
    # separate rectangles: every single piece is one character, every two-piece segment rubbish
    span = segmented.segs.end - segmented.segs.start
    single = span == 1
    expected = strings.labels[segmented.segs.string, segmented.segs.start]
    assert torch.equal(classes[single], expected[single])
    assert bool((classes[~single] == RUBBISH).all())


def test_decode_reads_through_the_grammar_with_a_log_probability_confidence():
    images, labels = _pool()
    strings = digit_strings(
        images, labels, 4, DigitStringConfig(min_length=3, max_length=4, min_gap=2, max_gap=4), seed=1
    )
    reader = CheckReader(max_span=2)
    graph, _ = reader(strings.images, strings.widths)
    plain = decode(graph)
    assert (plain.confidence <= 1e-5).all() and torch.isfinite(plain.confidence).all()
    constrained = decode(graph, amount_grammar())
    for b in range(4):
        text = constrained.labels[b, : int(constrained.lengths[b])].tolist()
        assert (text and text[0] != 0) or text[:2] == [0, 10]  # no leading zero under the grammar
    # the confidence is log P(reading | x): readings' probabilities sum to ≤ 1
    assert float(constrained.confidence.detach().exp().max()) <= 1 + 1e-5


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_the_confidence_at_a_temperature_equals_path_enumeration(temperature: float):
    """Two tiny graphs: string 0 has two segmentations (one segment 0→2, or 0→1→2), string 1 one
    segment. Every path is enumerated; log P_T(ŷ | x) = log Σ_{paths reading ŷ} e^{s/T} −
    log Σ_{all paths} e^{s/T}, and the reading is the same at every T."""
    segs = _two_strings()
    log_probs = (2 * torch.randn(4, NUM_CLASSES, generator=torch.Generator().manual_seed(3))).log_softmax(-1)
    graph = interpretation_graph(log_probs, segs, torch.tensor([3, 2]))
    w = log_probs[:, :11]
    paths = [  # (string, labels, score) of every path
        *[(0, (a,), w[1, a]) for a in range(11)],
        *[(0, (a, b), w[0, a] + w[2, b]) for a in range(11) for b in range(11)],
        *[(1, (a,), w[3, a]) for a in range(11)],
    ]
    reading, at_one = decode(graph, temperature=temperature), decode(graph)
    assert torch.equal(reading.labels, at_one.labels) and torch.equal(reading.lengths, at_one.lengths)
    for b in range(2):
        best = tuple(reading.labels[b, : int(reading.lengths[b])].tolist())
        mine = [float(score) / temperature for string, labels, score in paths if string == b]
        same = [float(score) / temperature for string, labels, score in paths
                if string == b and labels == best]
        expected = torch.logsumexp(torch.tensor(same), 0) - torch.logsumexp(torch.tensor(mine), 0)
        assert float(reading.confidence[b]) == pytest.approx(float(expected), abs=1e-5)
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        decode(graph, temperature=0)


def test_bad_reader_input():
    reader = CheckReader()
    with pytest.raises(ValueError, match="string image 1 is empty"):
        reader(torch.cat([torch.ones(1, 28, 30) * 0.9, torch.zeros(1, 28, 30)]))
    images, labels = _pool()
    strings = digit_strings(
        images, labels, 2, DigitStringConfig(min_length=3, max_length=3, min_gap=2), seed=0
    )
    graph, _ = reader(strings.images, strings.widths)
    bad = strings.labels.clone()
    bad[0, 0] = 12
    with pytest.raises(ValueError, match=r"label 12 is outside the alphabet 0..10"):
        graph_loss("forward", graph, bad, strings.lengths, num_labels=11)


def test_isolated_step_weights_the_rubbish_class():
    from genoise.structured.train import ReaderStep, string_tensors

    images, labels = _pool()
    strings = digit_strings(
        images, labels, 3, DigitStringConfig(min_length=3, max_length=3, min_gap=2, max_gap=3), seed=2
    )
    reader = CheckReader(max_span=2)
    batch = string_tensors(strings)
    segmented = reader.segment(strings.images, strings.widths)
    classes = reader.segment_classes(segmented, strings.owner, strings.labels)
    scores = reader.recognizer(segmented.crops)
    weight = torch.ones(NUM_CLASSES)
    weight[RUBBISH] = 0.3
    step = ReaderStep("isolated", rubbish_weight=0.3)
    expected = torch.nn.functional.cross_entropy(scores, classes, weight=weight)
    torch.testing.assert_close(step(reader, batch, torch.Generator())["loss"], expected)
    # 0: the rubbish segments are left out, the characters alone give the cross-entropy
    keep = classes != RUBBISH
    assert 0 < keep.sum() < len(classes)
    characters = torch.nn.functional.cross_entropy(scores[keep], classes[keep])
    out = ReaderStep("isolated", rubbish_weight=0.0)(reader, batch, torch.Generator())
    torch.testing.assert_close(out["loss"], characters)
    torch.testing.assert_close(out["rubbish"], (~keep).float().mean())
    with pytest.raises(ValueError, match="rubbish_weight"):
        ReaderStep("isolated", rubbish_weight=-0.1)


def test_isolated_step_without_rubbish_gives_a_zero_loss_on_rubbish_only_batches():
    from genoise.structured.train import ReaderStep, string_tensors

    images, labels = _pool()
    strings = digit_strings(
        images, labels, 2, DigitStringConfig(min_length=3, max_length=3, min_gap=2, max_gap=3), seed=2
    )
    batch = list(string_tensors(strings))
    batch[4] = torch.full_like(batch[4], -1)  # no pixel owned by any character: every segment rubbish
    reader = CheckReader(max_span=2)
    out = ReaderStep("isolated", rubbish_weight=0.0)(reader, tuple(batch), torch.Generator())
    assert out["loss"].item() == 0.0 and out["rubbish"].item() == 1.0
    out["loss"].backward()  # a graph to step through, with zero gradients
    assert all(p.grad is None or not p.grad.any() for p in reader.parameters())


def test_isolated_characters_are_normalised_as_whole_segments():
    from genoise.structured.segment_images import crop_segments, normalise_characters

    x = _pool()[0][:5]
    whole = Segments(torch.arange(5), torch.zeros(5, dtype=torch.long), torch.ones(5, dtype=torch.long),
                     torch.zeros(5, dtype=torch.long), torch.full((5,), 28))
    torch.testing.assert_close(normalise_characters(x), crop_segments(x, whole))
    assert normalise_characters(x[:, None]).shape == (5, 1, 28, 28)
    assert normalise_characters(x[:0]).shape == (0, 1, 28, 28)


def test_pretraining_on_isolated_characters_fits_them():
    from genoise.structured.segment_images import normalise_characters
    from genoise.structured.train import pretrain_recognizer

    x, y = _pool()
    torch.manual_seed(0)
    reader = CheckReader(max_span=2)
    before = torch.nn.functional.cross_entropy(reader.recognizer(normalise_characters(x)), y).item()
    pretrain_recognizer(reader, x, y, 20, batch_size=5, lr=3e-3, progress=False)
    after = torch.nn.functional.cross_entropy(reader.recognizer(normalise_characters(x)), y).item()
    assert after < 0.5 * before
    with pytest.raises(ValueError, match="digits 0-9"):
        pretrain_recognizer(reader, x, torch.full_like(y, 11), 1, progress=False)
    with pytest.raises(ValueError, match="to match images"):
        pretrain_recognizer(reader, x, y[:3], 1, progress=False)


def test_distortions_are_affine_maps_of_the_right_size():
    from genoise.structured.train import CharacterStep, distort

    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:18, 12:16] = 1.0
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(distort(x, gen, 0.0), x)  # strength 0: the identity
    y = distort(x, torch.Generator().manual_seed(0), 1.0)
    assert not torch.equal(y, x)
    # the ink's centre moves by at most the shift (2 px) plus what scale and shear move a centre
    # 0.5 px off the field's centre; its mass changes by at most the area factors (0.9-1.1)^±1
    rows, cols = torch.arange(28.0) + 0.5, torch.arange(28.0) + 0.5
    mass = y.sum((1, 2, 3))
    cy = (y.sum((1, 3)) * rows).sum(1) / mass
    cx = (y.sum((1, 2)) * cols).sum(1) / mass
    assert float((cy - 14.5).abs().max()) < 2.6 and float((cx - 14.5).abs().max()) < 3.6
    assert bool(((mass / 32) > 0.8).all() and ((mass / 32) < 1.25).all())
    assert float((cx - 14.5).std()) > 0.5  # the shifts are drawn per image
    with pytest.raises(ValueError, match="distortion"):
        CharacterStep(-1.0)


def test_frozen_features_leave_c1_to_c5_unchanged_and_train_the_last_two_layers():
    from genoise.structured.train import freeze_features, pretrain_recognizer

    x, y = _pool()
    torch.manual_seed(0)
    reader = CheckReader(max_span=2)
    freeze_features(reader.recognizer)
    before = {name: p.detach().clone() for name, p in reader.recognizer.named_parameters()}
    pretrain_recognizer(reader, x, y, 2, batch_size=5, lr=3e-3, progress=False)
    for name, p in reader.recognizer.named_parameters():
        moved = not torch.equal(p, before[name])
        assert moved == name.startswith(("f6.", "output.")), name
    with pytest.raises(ValueError, match="needs a LeNet-5 recogniser"):
        freeze_features(torch.nn.Linear(3, 2))


@pytest.mark.parametrize("loss", ["isolated", "discriminative_forward"])
def test_characters_add_their_weighted_cross_entropy_to_a_string_step(loss):
    """L = L_strings + w · CE(a random batch of isolated characters), the batch drawn from the
    step's generator; at w = 0 the step is the plain one and draws nothing."""
    from genoise.structured.segment_images import normalise_characters
    from genoise.structured.train import Characters, ReaderStep, string_tensors

    images, labels = _pool()
    strings = digit_strings(
        images, labels, 3, DigitStringConfig(min_length=3, max_length=3, min_gap=2, max_gap=3), seed=2
    )
    batch = string_tensors(strings)
    torch.manual_seed(0)
    reader = CheckReader(max_span=2)
    characters = Characters(normalise_characters(images), labels, weight=0.7, batch=6)
    gen = torch.Generator().manual_seed(5)
    out = ReaderStep(loss, characters=characters)(reader, batch, gen)
    again = torch.Generator().manual_seed(5)
    plain = ReaderStep(loss)(reader, batch, again)
    assert again.get_state().equal(torch.Generator().manual_seed(5).get_state())  # drew nothing
    index = torch.randint(0, 10, (6,), generator=again)  # the draws the step made
    scores = reader.recognizer(characters.images[index])
    expected_ce = torch.nn.functional.cross_entropy(scores, labels[index])
    torch.testing.assert_close(out["characters"], expected_ce.detach())
    torch.testing.assert_close(out["loss"], plain["loss"] + 0.7 * expected_ce)
    assert gen.get_state().equal(again.get_state())
    off = ReaderStep(loss, characters=Characters(characters.images, labels, weight=0.0))
    gen = torch.Generator().manual_seed(5)
    torch.testing.assert_close(off(reader, batch, gen)["loss"], plain["loss"])
    assert gen.get_state().equal(torch.Generator().manual_seed(5).get_state())


def test_characters_are_checked_in_one_line():
    from genoise.structured.train import Characters

    images = torch.zeros(4, 1, 28, 28)
    with pytest.raises(ValueError, match=r"labels must be \(4,\)"):
        Characters(images, torch.zeros(3, dtype=torch.long), 1.0)
    with pytest.raises(ValueError, match="character_weight"):
        Characters(images, torch.zeros(4, dtype=torch.long), -1.0)


def test_string_scale_keeps_each_segments_size_and_height_in_its_string():
    """``scale="string"``: one factor per string (box / the string's ink height) and the string's
    vertical centre, so a short low block stays short and low, where the per-segment box blows it
    up to 20 px; a whole character whose ink is taller than wide is normalised as by its own box."""
    from genoise.structured.segment_images import crop_segments, normalise_characters, string_extent
    from genoise.structured.segmentation import find_pieces, segments

    x = torch.zeros(1, 28, 40)
    x[0, 4:24, 5:10] = 1.0  # a bar 20 rows tall: the string's height
    x[0, 18:24, 20:26] = 1.0  # a 6 × 6 block at its foot
    height, centre = string_extent(x)
    assert float(height[0]) == 20.0
    assert float(centre[0]) == pytest.approx((20 * 5 * 14.0 + 36 * 21.0) / (100 + 36))
    pieces = find_pieces(x)
    segs = segments(pieces, 1)
    def rows(images):
        return [ink.nonzero().flatten().tolist() for ink in (images[:, 0] > 0.1).any(2)]

    own, scaled = (crop_segments(x, segs, pieces=pieces, scale=s) for s in ("segment", "string"))
    block_own, block_scaled = rows(own)[1], rows(scaled)[1]
    assert len(block_own) >= 19  # the per-segment box: 20 px tall
    assert 5 <= len(block_scaled) <= 7  # the string's scale (20 / 20 = 1): 6 px
    assert min(block_scaled) > 14  # below the middle of the image, as in the string
    # a character alone, taller than wide, is its own string: the same image either way
    torch.testing.assert_close(normalise_characters(x[:, :, :14], scale="string"),
                               normalise_characters(x[:, :, :14]))
    with pytest.raises(ValueError, match="scale must be one of 'segment', 'string'; got 'page'"):
        crop_segments(x, segs, pieces=pieces, scale="page")
    with pytest.raises(ValueError, match="scale must be one of"):
        CheckReader(scale="page")
