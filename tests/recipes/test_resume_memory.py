"""Resume of the memory recipe (MemN2N on bAbI task 1, tiny): stopped after step K and
resumed, both phases' checkpoints equal an uninterrupted run's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.recipes._resume import assert_resume_bit_for_bit

# task 1 (1k): 900 training questions -> 29 steps per epoch. Linear start is 1 epoch (29
# steps), so stopping after step 40 interrupts the main phase in its second epoch.
TINY = ["task=1", "embedding_dim=8", "hops=2", "ls_epochs=1", "epochs=2", "lr_decay_every=1"]
CASES = {"memn2n-babi": (TINY, 40)}


def _babi_dir(tmp_path: Path) -> list[str]:
    """The shared bAbI folder when there is one, else a handmade task-1 folder."""
    shared = os.environ.get("GENOISE_DATA")
    if shared and (Path(shared) / "babi" / "en").is_dir():
        return []
    folder = tmp_path / "data" / "babi" / "en"
    folder.mkdir(parents=True)
    story = "".join(f"1 Mary moved to the room{i % 5}.\n2 John went to the hall.\n"
                    f"3 Where is Mary?\troom{i % 5}\t1\n" for i in range(900))
    for split in ("train", "test"):
        (folder / f"qa1_single-supporting-fact_{split}.txt").write_text(story)
    return [f"data_dir={tmp_path / 'data'}"]


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_memory_recipe_resumes_bit_for_bit(tmp_path, recipe):
    overrides, stop_after = CASES[recipe]
    assert_resume_bit_for_bit(tmp_path, recipe, overrides + _babi_dir(tmp_path), stop_after)


def test_memn2n_resumes_bit_for_bit_when_stopped_inside_linear_start(tmp_path):
    overrides = [*TINY, "ls_epochs=2", "epochs=1"]  # stop in LS's second epoch; main not started
    assert_resume_bit_for_bit(tmp_path, "memn2n-babi", overrides + _babi_dir(tmp_path), 40)
