"""String scores: edit distance against a reference implementation, the reject curve on
hand-made confidences."""

from __future__ import annotations

import pytest
import torch

from genoise.structured.evaluate import accepted_correct_at, edit_distance, reject_curve, string_scores


def _levenshtein(a: list[int], b: list[int]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        new = [i]
        for j, y in enumerate(b, 1):
            new.append(min(row[j] + 1, new[j - 1] + 1, row[j - 1] + (x != y)))
        row = new
    return row[-1]


def test_edit_distance_matches_the_textbook_programme():
    g = torch.Generator().manual_seed(0)
    hyp = torch.randint(0, 4, (200, 7), generator=g)
    ref = torch.randint(0, 4, (200, 6), generator=g)
    hl = torch.randint(0, 8, (200,), generator=g)
    rl = torch.randint(0, 7, (200,), generator=g)
    ours = edit_distance(hyp, hl, ref, rl)
    expected = [_levenshtein(hyp[b, : hl[b]].tolist(), ref[b, : rl[b]].tolist()) for b in range(200)]
    assert ours.tolist() == expected


def test_reject_curve_never_splits_ties_and_spans_all_to_nothing():
    confidence = torch.tensor([0.9, 0.5, 0.5, 0.2, 0.1])
    correct = torch.tensor([True, True, False, True, False])
    rejected, error, right = reject_curve(confidence, correct)
    assert rejected.tolist() == pytest.approx([1.0, 0.8, 0.4, 0.2, 0.0])
    assert error.tolist() == pytest.approx([0.0, 0.0, 0.2, 0.2, 0.4])
    assert right.tolist() == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.6])
    point = accepted_correct_at(confidence, correct, max_error=0.2)
    assert point == pytest.approx((0.6, 0.2, 0.2))
    assert accepted_correct_at(confidence, correct, max_error=0.0).correct == pytest.approx(0.2)


def test_string_scores():
    labels = torch.tensor([[1, 2, -1], [3, 3, 3], [4, -1, -1]])
    scores = string_scores(
        labels,
        torch.tensor([2, 3, 1]),
        torch.tensor([[1, 2], [3, 3], [5, -1]]),
        torch.tensor([2, 2, 1]),
        torch.tensor([3.0, 2.0, 1.0]),
    )
    assert scores["string_accuracy"] == pytest.approx(1 / 3)
    assert scores["character_error_rate"] == pytest.approx(2 / 5)
    assert scores["accepted_correct"] == pytest.approx(1 / 3) and scores["accepted_error"] == 0.0
    with pytest.raises(ValueError, match="equal non-empty vectors"):
        accepted_correct_at(torch.zeros(3), torch.zeros(2, dtype=torch.bool))
