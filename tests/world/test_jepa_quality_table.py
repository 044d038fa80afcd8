"""Table (e) of ``benchmarks/jepa_two_rooms.py`` (PLDM's data knobs): each setting's cells are read
back, its data described, the detour classes summed over seeds, and every cell's JEPA diagnosed
on one common data set — on finished cells written here (a tiny JEPA trained two updates stands
in for each cell's), so nothing else trains."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from genoise.recipes import load_recipe
from genoise.world.jepa import JEPAConfig
from tests._benchmarks import load_benchmark
from tests.world.conftest import train_tiny_jepa

TINY = JEPAConfig(image_size=17, dim=8, width=4, hidden=16)


def _cell(folder: Path, success: float, by_detour: dict, seed: int, change: dict, jepa: Path) -> None:
    (folder / "jepa").mkdir(parents=True)
    shutil.copyfile(jepa, folder / "jepa" / "last.pt")
    config = {"seed": seed, "rows": ["mppi"], "gcbc_steps": 0, **change}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "summary.json").write_text("{}")
    result = {"success": success, "final_distance": 10.0 - success / 10, "success_by_detour": by_detour}
    (folder / "planning.json").write_text(json.dumps({"results": {"mppi": result}, "cpu_seconds": 60.0}))


def _classes(*solved_tasks: tuple[int, int]) -> dict:
    names = ("< 3", "3–10", "≥ 10")
    return {
        n: {"success": (100 * s / t if t else None), "tasks": t}
        for n, (s, t) in zip(names, solved_tasks, strict=True)
    }


def test_quality_table_reads_each_setting_and_sums_the_detour_classes(tmp_path: Path) -> None:
    bench = load_benchmark("jepa_two_rooms")
    train_tiny_jepa(TINY, tmp_path / "tiny", steps=2)
    jepa = tmp_path / "tiny" / "last.pt"
    change = bench.QUALITY["cross_0.7"]
    _cell(tmp_path / "cross_0.7-s0", 50.0, _classes((6, 8), (3, 6), (1, 6)), 0, change, jepa)
    _cell(tmp_path / "cross_0.7-s1", 30.0, _classes((5, 8), (1, 6), (0, 6)), 1, change, jepa)
    for seed in (0, 1):
        _cell(tmp_path / f"main-s{seed}", 40.0, _classes((7, 8), (1, 6), (0, 6)), seed, {}, jepa)
    setting = load_recipe("jepa-two-rooms").config
    rows: list[dict] = []
    protocol = {"episodes": 20}
    recipe = {f"main-s{seed}": json.loads((tmp_path / f"main-s{seed}" / "planning.json").read_text())
              ["results"]["mppi"] for seed in (0, 1)}
    bench.CELLS_USED.clear()
    lines = bench.quality_table(tmp_path, {}, setting, ["cross_0.7"], [0, 1], recipe, rows, protocol)
    # the cost table lists the cells this table read, not every folder under --out
    assert bench.CELLS_USED == ["cross_0.7-s0", "cross_0.7-s1"]
    assert [r["name"] for r in rows] == ["quality_recipe", "quality_cross_0.7"]
    mine = rows[1]
    assert mine["success_per_seed"] == [50.0, 30.0]
    assert mine["success_mean"] == pytest.approx(40.0) and mine["success_std"] == pytest.approx(10.0)
    assert mine["solved_by_detour"] == "11/16 · 4/12 · 1/12"
    # more built crossings: more trajectories change room, fewer steps meet a wall
    assert mine["room_changes_pct"] > rows[0]["room_changes_pct"] + 15
    assert mine["wall_contacts_pct"] < rows[0]["wall_contacts_pct"]
    assert any(line.startswith("| cross_wall_rate=0.7 |") and "50 / 30 | 40 ± 10 |" in line for line in lines)
    # the same JEPA in every cell: the same diagnostics on the common data, whatever its training data
    for key in ("pushes_beyond_wall", "one_step_error_wall", "one_step_error_free"):
        assert rows[0][key] == rows[1][key]
    assert 0 <= mine["pushes_beyond_wall"] <= 1 and mine["one_step_error_wall"] > 0
    # a cell trained with another setting is refused, not reported under this one
    other = tmp_path / "other"
    _cell(other / "noise_1-s0", 10.0, _classes((1, 8), (1, 6), (0, 6)), 0, {"angle_noise": 0.2}, jepa)
    with pytest.raises(SystemExit, match="angle_noise"):
        bench.quality_table(other, {}, setting, ["noise_1"], [0], None, [], {"episodes": 20})


def test_every_quality_setting_is_valid_data_and_the_bump_rate_adds_wall_contacts() -> None:
    from genoise.recipes.jepa import data_config
    from genoise.world.two_rooms_data import data_statistics

    bench = load_benchmark("jepa_two_rooms")
    setting = load_recipe("jepa-two-rooms").config
    contacts = {
        name: data_statistics(data_config({**setting, **change}), n=600)["wall_contacts"]
        for name, change in [("recipe", {}), *bench.QUALITY.items()]
    }
    # the bumps replace free walks by walks aimed at the wall: more of them, more contacts
    assert contacts["recipe"] < contacts["bump_0.325"] < contacts["bump_0.65"]
    assert contacts["noise_0.05"] < contacts["contacts_half"] < contacts["contacts_max"]
