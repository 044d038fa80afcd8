"""Scores of a string reader: string accuracy, character error rate (Levenshtein distance
over the total reference length) and the reject curve of a confidence score (LeCun et al.
1998, Section X: the check reader's operating point is the share of checks read correctly
when the rejection threshold lets at most 1 % of all checks through wrongly read)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


def edit_distance(hyp: Tensor, hyp_lengths: Tensor, ref: Tensor, ref_lengths: Tensor) -> Tensor:
    """(B,) Levenshtein distances between padded label sequences (dynamic programme over
    positions, vectorised over the batch)."""
    size = hyp.shape[0]
    width_h, width_r = hyp.shape[1], ref.shape[1]
    device = hyp.device
    row = torch.arange(width_r + 1, device=device).expand(size, -1).clone()
    final = torch.where(hyp_lengths == 0, ref_lengths, 0)
    for i in range(1, width_h + 1):
        new = torch.empty_like(row)
        new[:, 0] = i
        differ = (hyp[:, i - 1, None] != ref).long()
        for j in range(1, width_r + 1):
            new[:, j] = torch.minimum(
                torch.minimum(row[:, j] + 1, new[:, j - 1] + 1), row[:, j - 1] + differ[:, j - 1]
            )
        row = new
        final = torch.where(hyp_lengths == i, row.gather(1, ref_lengths[:, None]).squeeze(1), final)
    return final


class RejectPoint(NamedTuple):
    """Fractions of all strings at one threshold: read correctly, read wrongly, rejected."""

    correct: float
    error: float
    rejected: float


def reject_curve(confidence: Tensor, correct: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(rejected, error, correct) fractions of all strings for every threshold between two
    distinct confidence values, from accepting nothing to accepting everything."""
    order = torch.argsort(confidence, descending=True, stable=True)
    conf, right = confidence[order], correct[order].float()
    n = conf.shape[0]
    cum_right = torch.cat([right.new_zeros(1), torch.cumsum(right, 0)])
    cum_wrong = torch.cat([right.new_zeros(1), torch.cumsum(1 - right, 0)])
    cut = torch.ones(n + 1, dtype=torch.bool, device=conf.device)
    cut[1:n] = conf[:-1] > conf[1:]  # never split a tie
    accepted = torch.arange(n + 1, device=conf.device)[cut]
    return 1 - accepted.float() / n, cum_wrong[cut] / n, cum_right[cut] / n


def accepted_correct_at(confidence: Tensor, correct: Tensor, max_error: float = 0.01) -> RejectPoint:
    """The operating point with the most strings accepted whose wrongly read share of *all*
    strings is at most ``max_error``."""
    if confidence.shape != correct.shape or confidence.ndim != 1 or confidence.numel() == 0:
        raise ValueError(
            f"confidence and correct must be equal non-empty vectors, got "
            f"{tuple(confidence.shape)} and {tuple(correct.shape)}"
        )
    rejected, error, right = reject_curve(confidence, correct)
    ok = (error <= max_error + 1e-12).nonzero().flatten()
    best = int(ok[-1])
    return RejectPoint(float(right[best]), float(error[best]), float(rejected[best]))


def correct_strings(labels: Tensor, lengths: Tensor, ref: Tensor, ref_lengths: Tensor) -> Tensor:
    """(B,) bool: each padded reading equals its reference (the same length and labels)."""
    width = max(labels.shape[1], ref.shape[1])
    hyp = torch.nn.functional.pad(labels, (0, width - labels.shape[1]), value=-1)
    target = torch.nn.functional.pad(ref, (0, width - ref.shape[1]), value=-1)
    positions = torch.arange(width, device=hyp.device)
    agree = ((hyp == target) | (positions >= ref_lengths[:, None])).all(1)
    return (lengths == ref_lengths) & agree


def string_scores(
    labels: Tensor,
    lengths: Tensor,
    ref: Tensor,
    ref_lengths: Tensor,
    confidence: Tensor,
    max_error: float = 0.01,
) -> dict[str, float]:
    """String accuracy, character error rate and the reject operating point of a reading."""
    correct = correct_strings(labels, lengths, ref, ref_lengths)
    distance = edit_distance(labels, lengths, ref, ref_lengths)
    point = accepted_correct_at(confidence, correct, max_error)
    return {
        "string_accuracy": float(correct.float().mean()),
        "character_error_rate": float(distance.sum() / ref_lengths.sum().clamp_min(1)),
        "accepted_correct": point.correct,
        "accepted_error": point.error,
        "rejected": point.rejected,
    }
