"""Resume of the world recipes: stopped after step K (`--stop-after K`) and continued with
`--resume`, every checkpoint (forward model, policies) is bit-for-bit that of an
uninterrupted run."""

from __future__ import annotations

import pytest
import yaml

from tests.recipes._resume import assert_resume_bit_for_bit
from tests.world.conftest import TINY, TINY_MPUR


def _overrides(values: dict) -> list[str]:
    return [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in values.items()]


CASES = {
    # stopped inside the forward-model loop (train_steps=3)
    "world-model-traffic": (_overrides(TINY), 2),
    # the model (2 steps) finishes; stopped inside the first policy's loop (bc, 4 steps)
    "world-mpur-traffic": (
        _overrides(dict(TINY_MPUR, train_steps=2, policy_steps=4, policies=["bc", "mpur"])), 3
    ),
    # the alias; stopped inside the forward model, the policies train after the resume
    "mpur-traffic": (_overrides(dict(TINY_MPUR, policies=["mpur"])), 1),
}


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_world_recipe_resumes_bit_for_bit(tmp_path, recipe: str) -> None:
    overrides, stop_after = CASES[recipe]
    assert_resume_bit_for_bit(tmp_path, recipe, overrides, stop_after)
