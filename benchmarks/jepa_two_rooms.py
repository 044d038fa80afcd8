"""Two Rooms: goal reaching by planning in the latent space of an action-conditioned JEPA
(issue 14), ours vs the numbers eb_jepa's ``ac_video_jepa`` reports, in one run.

Every cell is a ``genoise train jepa-two-rooms`` run folder under ``--out`` (skipped when
it already finished: the benchmark resumes where it stopped):

(a) main table, random wall: the recipe's defaults for each training seed, every row
    (mppi, cem, gradient, mppi_last, gcbc, random, oracle) on the same 20 tasks —
    success % mean ± std over seeds, final distance, planning seconds per episode;
    and the CPU time of the whole default recipe (data, training, evaluation);
(b) ablations (MPPI): without IDM, var, cov, time similarity; SIGReg only;
(c) success vs number of training trajectories (JEPA + MPPI and GCBC);
(d) a figure: an executed plan over the two rooms with the probe's decoding of the
    latent rollout of the first plan (``figure.png``);
(e) with ``--quality``: MPPI against the data knobs PLDM studies (Sobal et al. 2025): the
    wall-crossing rate, the action noise and the trajectory length (at the same number of
    transitions), each changed alone from the recipe's data (and the wall-bump rate, alone and
    with straighter walks: the most wall contacts the generator gives and half of them), with
    what each data set holds (room changes, wall contacts) and the success per detour
    class.

Writes ``benchmarks/records/jepa_two_rooms.md`` (with the figure ``jepa_two_rooms.png``) and
``benchmarks/records/jepa_two_rooms.json``
(rows named mppi, cem, gradient, mppi_last, gcbc, random, oracle, no_idm, no_var, no_cov,
no_time_sim, sigreg, plus data_<N> and quality_<setting>; the command; the date).

    python benchmarks/jepa_two_rooms.py                      # (a) 3 seeds, (b) and (c) 1 seed
    python benchmarks/jepa_two_rooms.py --seeds 0 1 2 --ablation-seeds 0 1 2
    python benchmarks/jepa_two_rooms.py --ablation-seeds 0 1 2 --size-seeds 0   # (b) over 3 seeds
    python benchmarks/jepa_two_rooms.py --quick              # a smoke run in a few minutes
    python benchmarks/jepa_two_rooms.py --skip ablations sizes --record jepa_two_rooms_a  # (a) only
    python benchmarks/jepa_two_rooms.py --seeds 0 --rows mppi --skip ablations sizes --set dim=128 \\
        --out benchmarks/results/jepa_two_rooms_d128 --record jepa_two_rooms_d128  # MPPI only
    python benchmarks/jepa_two_rooms.py --rows mppi --skip ablations sizes --quality \\
        --out benchmarks/results/jepa_two_rooms_mppi --record jepa_two_rooms_quality  # (a) and (e)
    python benchmarks/jepa_two_rooms.py --seeds 0 1 2 3 4 --rows mppi --skip ablations sizes \\
        --quality noise_0.05 contacts_half contacts_max --out benchmarks/results/jepa_two_rooms_mppi \\
        --record jepa_two_rooms_contacts  # the best data over five seeds
    python benchmarks/jepa_two_rooms.py --seeds 0 1 2 3 4 --rows mppi --skip ablations sizes \\
        --set wall_bump_rate=0.325 angle_noise=0.05 dim=128 width=32 hidden=512 steps=6000 \\
        --out benchmarks/results/jepa_two_rooms_contacts_large \\
        --record jepa_two_rooms_contacts_large  # that data with the 4x wider model
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import _cells as cells  # noqa: E402
from _cells import recipe_overrides  # noqa: E402

from benchmarks._records import write_records  # noqa: E402
from genoise.recipes import load_recipe  # noqa: E402

MAIN_ROWS = ("mppi", "cem", "gradient", "mppi_last", "gcbc", "random", "oracle")
ABLATIONS = {
    "no_idm": {"idm_weight": 0.0},
    "no_var": {"var_weight": 0.0},
    "no_cov": {"cov_weight": 0.0},
    "no_time_sim": {"time_sim_weight": 0.0},
    "sigreg": {"regularizer": "sigreg"},
}
# eb_jepa examples/ac_video_jepa/README.md: success %, mean ± std (3 seeds x last 3 epochs)
REFERENCE = {
    "mppi": "97 ± 2",
    "cem": "96 ± 2",
    "mppi_last": "89 ± 2",
    "no_idm": "1 ± 1",
    "no_var": "47 ± 3",
    "no_cov": "46 ± 3",
    "no_time_sim": "61 ± 2",
    "sigreg": "—",
    "gcbc": "—",
    "gradient": "—",
    "random": "—",
    "oracle": "—",
}
REFERENCE_SECONDS = {"mppi": "37 (GPU)", "cem": "37 (GPU)", "mppi_last": "37 (GPU)"}
# table (e): PLDM's data knobs, each changed alone (the recipe: cross_wall_rate 0.35, angle_noise 0.2,
# 20,000 trajectories of 16 actions)
QUALITY = {
    "cross_0": {"cross_wall_rate": 0.0},
    "cross_0.7": {"cross_wall_rate": 0.7},
    "noise_0.05": {"angle_noise": 0.05},
    "noise_1": {"angle_noise": 1.0},
    "length_8": {"length": 8, "trajectories": 40000},  # the same 320,000 transitions, one window each
    # the most wall contacts the generator gives: every walk not built to cross is aimed at the
    # middle wall outside the door (eb_jepa's wall bumps), and walks run straighter
    "contacts_max": {"wall_bump_rate": 0.65, "angle_noise": 0.05},
    # contacts_max's two knobs apart: the wall bumps alone at the recipe's action noise, replacing
    # every free walk (0.65) or half of them (0.325, the rest of the data as the recipe's)
    "bump_0.65": {"wall_bump_rate": 0.65},
    "bump_0.325": {"wall_bump_rate": 0.325},
    # half of contacts_max's bumps, at its straighter walks: half the recipe's free walks kept
    "contacts_half": {"wall_bump_rate": 0.325, "angle_noise": 0.05},
}


CELLS_USED: list[str] = []  # the cells of this invocation's tables, for the cost table


def run_cell(out: Path, name: str, overrides: dict) -> tuple[dict, float]:
    """Train and evaluate one ``jepa-two-rooms`` run folder (or reuse a finished one)."""
    CELLS_USED.append(name)
    return cells.run_cell(out, "jepa-two-rooms", name, overrides, "planning.json")


def _stats(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values)) if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds of table (a)")
    parser.add_argument(
        "--ablation-seeds",
        type=int,
        nargs="+",
        default=[0],
        help="training seeds of (b), and of (c) without --size-seeds",
    )
    parser.add_argument(
        "--size-seeds",
        type=int,
        nargs="+",
        default=None,
        help="training seeds of (c), when they differ from (b)'s (default: --ablation-seeds)",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[200, 2000, 5000, 20000],
        help="numbers of training trajectories of table (c)",
    )
    parser.add_argument(
        "--ablations",
        nargs="*",
        default=list(ABLATIONS),
        choices=list(ABLATIONS),
        help="which ablations of table (b) to run (default: all five)",
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["ablations", "sizes"])
    parser.add_argument(
        "--quality",
        nargs="*",
        default=None,
        choices=list(QUALITY),
        help="table (e): MPPI under these data settings (no value: all of them; default: no table (e))",
    )
    parser.add_argument(
        "--quality-seeds", type=int, nargs="+", default=None, help="training seeds of (e) (default: --seeds)"
    )
    parser.add_argument("--out", default="benchmarks/results/jepa_two_rooms")
    parser.add_argument(
        "--record",
        default="jepa_two_rooms",
        help="file stem of the record under benchmarks/records (another stem keeps the full record "
        "when only part of the tables is refreshed)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny budgets: checks the pipeline, not the numbers"
    )
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra recipe overrides")
    parser.add_argument(
        "--rows",
        nargs="+",
        default=list(MAIN_ROWS),
        choices=list(MAIN_ROWS),
        help="rows of table (a) (default: all seven; a subset for costly settings, without gcbc the "
        "baseline is not trained)",
    )
    args = parser.parse_args(argv)
    CELLS_USED.clear()
    size_seeds = args.ablation_seeds if args.size_seeds is None else args.size_seeds
    main_rows = [row for row in MAIN_ROWS if row in args.rows]
    needs = {"ablations": {"mppi"}, "sizes": {"mppi", "gcbc"}}
    quality = None if args.quality is None else (args.quality or list(QUALITY))
    quality_seeds = args.seeds if args.quality_seeds is None else args.quality_seeds
    for table, rows_needed in needs.items():
        if table not in args.skip and not rows_needed <= set(main_rows):
            parser.error(f"--rows lacks {', '.join(sorted(rows_needed - set(main_rows)))}, which table "
                         f"{table} reuses: add it or --skip {table}")
    command = " ".join(["python benchmarks/jepa_two_rooms.py", *(argv if argv is not None else sys.argv[1:])])
    defaults = load_recipe("jepa-two-rooms").config
    base: dict = recipe_overrides(parser, "jepa-two-rooms", "--set", args.set)
    out = Path(args.out + ("_quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        base.update(
            trajectories=1000, steps=150, gcbc_steps=100, episodes=6, horizon=32, iterations=3, samples=50
        )
        args.sizes = [200, 1000]
    setting = {**defaults, **base}

    rows: list[dict] = []
    cells: dict[str, list[dict]] = {row: [] for row in main_rows}
    cpu_main: list[float] = []
    protocol = None
    main_overrides = {**base, "rows": main_rows} | ({} if "gcbc" in main_rows else {"gcbc_steps": 0})
    for seed in args.seeds:
        record, cpu = run_cell(out, f"main-s{seed}", {**main_overrides, "seed": seed})
        protocol = record["protocol"]
        if not record.get("resumed", True):
            cpu_main.append(cpu)
        for row in main_rows:
            cells[row].append(record["results"][row])
    lines = [
        f"# Two Rooms: planning in a JEPA's latent space ({date.today().isoformat()})",
        "",
        f"Command: `{command}`",
        "",
        f"Protocol (fixed, printed with every table): {protocol_text(protocol)}",
        "",
        f"Planner: horizon {setting['horizon']}, {setting['iterations']} iterations × "
        f"{setting['samples']} samples "
        f"({setting['elites']} elites), {setting['replan_every']} actions executed per re-plan "
        "(the reference: horizon 90, 20 × 200, 1 action per re-plan); all episodes planned as one batch; "
        f"cost: the {setting['distance']} distance to the goal embedding, averaged over the horizon "
        "(the reference: squared, summed).",
        "",
        f"Model: {setting['image_size']} px, D = {setting['dim']}, {setting['encoder']} encoder of width "
        f"{setting['width']}, "
        f"predictor {setting['predictor']} (hidden {setting['hidden']}), "
        f"{setting['steps']} updates of {setting['batch_size']} windows of {setting['window']} steps, "
        f"{setting['trajectories']} trajectories (wall-crossing rate {setting['cross_wall_rate']}, "
        f"action noise {setting['angle_noise']}, wall-bump rate {setting['wall_bump_rate']}); "
        f"loss weights cov {setting['cov_weight']} "
        "(÷ D(D−1), eb_jepa's), "
        f"var {setting['var_weight']}, time-sim {setting['time_sim_weight']}, IDM {setting['idm_weight']}.",
        "",
        f"## (a) Main table, random wall ({len(args.seeds)} training seed(s) × "
        f"{protocol['episodes']} episodes)",
        "",
        "| row | success % (ours) | success % (reference) | final distance | planning s / episode (ours) | "
        "(reference) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in main_rows:
        mean, std = _stats([c["success"] for c in cells[row]])
        dist, _ = _stats([c["final_distance"] for c in cells[row]])
        secs, _ = _stats([c["plan_seconds_per_episode"] for c in cells[row]])
        rows.append(
            {
                "name": row,
                "table": "main",
                "success_mean": mean,
                "success_std": std,
                "final_distance": dist,
                "plan_seconds_per_episode": secs,
                "success_per_seed": [c["success"] for c in cells[row]],
                "seeds": args.seeds,
                "reference_success": REFERENCE[row],
                "reference_seconds": REFERENCE_SECONDS.get(row, "—"),
            }
        )
        lines.append(
            f"| {row} | {mean:.0f} ± {std:.0f} | {REFERENCE[row]} | {dist:.1f} | {secs:.2f} | "
            f"{REFERENCE_SECONDS.get(row, '—')} |"
        )
    cpu_mean = float(np.mean(cpu_main)) / 60 if cpu_main else float("nan")
    timed = f"{cpu_mean:.1f} CPU-minutes per seed (process user + system time; goal ≤ 30)."
    untimed = "not timed here (every main cell was interrupted and resumed; see the cost table)."
    what = (
        "Whole recipe (data, JEPA, GCBC, the seven rows): "
        if main_rows == list(MAIN_ROWS)
        else f"The recipe with the rows {', '.join(main_rows)} only (data, JEPA"
        + (", GCBC" if "gcbc" in main_rows else "; no GCBC")
        + "; not the whole recipe): "
    )
    lines += [
        "",
        what + (timed if cpu_main else untimed),
        "",
    ]

    if "ablations" not in args.skip:
        lines += [
            f"## (b) Ablations, MPPI ({len(args.ablation_seeds)} seed(s))",
            "",
            "| row | success % (ours) | success % (reference) | final distance |",
            "|---|---:|---:|---:|",
        ]
        full = [
            c["success"] for s, c in zip(args.seeds, cells["mppi"], strict=True) if s in args.ablation_seeds
        ]
        lines.append(f"| full (mppi) | {_stats(full)[0]:.0f} ± {_stats(full)[1]:.0f} | 97 ± 2 | |")
        for name in args.ablations:
            change = ABLATIONS[name]
            results = [
                run_cell(
                    out,
                    f"{name}-s{seed}",
                    {**base, **change, "seed": seed, "rows": ["mppi"], "gcbc_steps": 0},
                )[0]["results"]["mppi"]
                for seed in args.ablation_seeds
            ]
            mean, std = _stats([r["success"] for r in results])
            dist, _ = _stats([r["final_distance"] for r in results])
            rows.append(
                {
                    "name": name,
                    "table": "ablation",
                    "success_mean": mean,
                    "success_std": std,
                    "final_distance": dist,
                    "success_per_seed": [r["success"] for r in results],
                    "seeds": args.ablation_seeds,
                    "reference_success": REFERENCE[name],
                    "change": change,
                }
            )
            lines.append(f"| {name} | {mean:.0f} ± {std:.0f} | {REFERENCE[name]} | {dist:.1f} |")
        lines.append("")

    if "sizes" not in args.skip:
        lines += [
            f"## (c) Success vs training trajectories ({len(size_seeds)} seed(s))",
            "",
            "| trajectories | JEPA + MPPI success % | GCBC success % |",
            "|---:|---:|---:|",
        ]
        for size in args.sizes:
            results = []
            for seed in size_seeds:
                if size == setting["trajectories"] and seed in args.seeds:
                    results.append(
                        cells["mppi"][args.seeds.index(seed)]
                        | {"gcbc": cells["gcbc"][args.seeds.index(seed)]}
                    )
                    continue
                record = run_cell(
                    out,
                    f"data{size}-s{seed}",
                    {**base, "trajectories": size, "seed": seed, "rows": ["mppi", "gcbc"]},
                )[0]
                results.append(record["results"]["mppi"] | {"gcbc": record["results"]["gcbc"]})
            jepa, gcbc = (
                _stats([r["success"] for r in results]),
                _stats([r["gcbc"]["success"] for r in results]),
            )
            rows.append(
                {
                    "name": f"data_{size}",
                    "table": "data_size",
                    "trajectories": size,
                    "success_mean": jepa[0],
                    "success_std": jepa[1],
                    "gcbc_success_mean": gcbc[0],
                    "gcbc_success_std": gcbc[1],
                    "seeds": size_seeds,
                }
            )
            lines.append(f"| {size} | {jepa[0]:.0f} ± {jepa[1]:.0f} | {gcbc[0]:.0f} ± {gcbc[1]:.0f} |")
        lines.append("")

    if quality is not None:
        recipe_cells = (
            {f"main-s{seed}": cells["mppi"][args.seeds.index(seed)] for seed in quality_seeds}
            if "mppi" in main_rows and set(quality_seeds) <= set(args.seeds)
            else None
        )
        lines += quality_table(out, base, setting, quality, quality_seeds, recipe_cells, rows, protocol)

    lines += [
        "## Cost of each cell (process user + system time; 2 cores, shared with other cells)",
        "",
        "| cell | rows evaluated | CPU-minutes | wall minutes | interrupted and resumed |",
        "|---|---|---:|---:|---|",
    ]
    for folder in sorted(out / name for name in set(CELLS_USED)):
        cell = json.loads((folder / "planning.json").read_text())
        cpu, wall = cell.get("cpu_seconds", float("nan")) / 60, cell.get("wall_seconds", float("nan")) / 60
        lines.append(
            f"| {folder.name} | {', '.join(cell['results'])} | {cpu:.1f} | {wall:.1f} | "
            f"{'yes' if cell.get('resumed', True) else 'no'} |"
        )
    lines.append("")
    records = ROOT / "benchmarks" / "records"
    records.mkdir(parents=True, exist_ok=True)
    stem = args.record + ("_quick" if args.quick else "")
    figure = out / f"main-s{args.seeds[0]}" / "planning.png"
    if figure.is_file():
        shutil.copyfile(figure, records / f"{stem}.png")
        lines += [
            "## (d) A planned episode",
            "",
            f"![planned episode]({stem}.png)",
            "",
            "Blue: the executed trajectory; green: the probe's decoding of the latent rollout of the "
            "first plan; red circle: the success radius around the goal.",
            "",
        ]
    text = "\n".join(lines)
    print(text)
    record = {
        "command": command,
        "date": date.today().isoformat(),
        "protocol": protocol,
        "setting": setting,
        "cpu_minutes_default_recipe": cpu_mean,
        "rows": rows,
    }
    write_records(records, stem, text, record)
    return 0


def _detour_cell(results: list[dict]) -> str:
    """Tasks solved / tasks per detour class, summed over the seeds' cells."""
    parts = []
    for name in results[0]["success_by_detour"]:
        classes = [r["success_by_detour"][name] for r in results]
        tasks = sum(c["tasks"] for c in classes)
        solved = sum(round((c["success"] or 0.0) * c["tasks"] / 100) for c in classes)
        parts.append(f"{solved}/{tasks}")
    return " · ".join(parts)


def _model_diagnostics(folder: Path, common: dict) -> dict[str, float]:
    """What a cell's JEPA makes of the wall: the fraction of the 12-step pushes into it (‖a‖ = 1)
    whose rollout the probe decodes beyond it, and the one-step errors on wall and free
    transitions of ``common`` (the same data for every cell)."""
    from genoise.world.jepa_diagnostics import transition_errors, wall_hallucination
    from genoise.world.jepa_train import load_jepa

    jepa = load_jepa(folder / "jepa" / "last.pt")
    errors = transition_errors(jepa, common)
    return {"pushes_beyond": wall_hallucination(jepa, speed=1.0)["model"], **errors}


def quality_table(
    out: Path,
    base: dict,
    setting: dict,
    names: list[str],
    seeds: list[int],
    recipe_cells: dict[str, dict] | None,
    rows: list[dict],
    protocol: dict,
) -> list[str]:
    """Table (e): MPPI with each data setting of ``names`` (``QUALITY``: one or two knobs changed
    from the recipe's),
    over ``seeds``, beside the recipe's own data (``recipe_cells``: table (a)'s MPPI results by
    cell folder, when they cover the seeds), and what each setting's JEPAs make of the wall,
    measured on one common data set (4,000 trajectories of the recipe's data with a seed no cell
    trains on). Appends one JSON row per setting to ``rows``; returns the Markdown lines."""
    from genoise.recipes.jepa import COMMON_SEED, common_data, data_config
    from genoise.world.two_rooms_data import data_statistics

    common = common_data(setting)
    lines = [
        f"## (e) Data quality: PLDM's knobs, MPPI ({len(seeds)} seed(s) × {protocol['episodes']} tasks)",
        "",
        "Each setting changes one or two knobs of the recipe's data (wall-crossing rate 0.35: the "
        "fraction of trajectories built to pass through the door; action noise 0.2: 1 / κ of the random "
        "walk's Von Mises turn; 20,000 trajectories of 16 actions, or twice as many of 8, the training "
        "window, for the same transitions; wall-bump rate 0: the fraction of trajectories aimed at the "
        "middle wall outside the door). *Room changes* and *wall contacts* describe the data (4,000 "
        "trajectories of the setting): trajectories that change room; transitions that meet a wall or the "
        "border, where the dot stops and bounces off. "
        "*Solved by detour* counts the tasks reached per class of detour the wall forces "
        "(< 3 / 3–10 / ≥ 10 world units), over the seeds. The last two columns, means over the seeds, "
        "are what the JEPAs make of the wall: the fraction of 200 twelve-step pushes into it at "
        "‖a‖ = 1 whose predicted rollout the probe decodes beyond it (the physics: none), and the "
        "one-step error of the representation on transitions stopped by the middle wall and on free "
        f"ones, on the same 4,000 trajectories of the recipe's data for every cell (seed {COMMON_SEED}).",
        "",
        "| data | room changes % | wall contacts % | MPPI % per seed | mean ± std | solved by detour "
        "(< 3 · 3–10 · ≥ 10) | final distance | pushes beyond the wall | one-step error, wall / free "
        "(× 10⁻⁴) |",
        "|---|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    todo = [("recipe", {})] if recipe_cells is not None else []
    for name, change in [*todo, *((n, QUALITY[n]) for n in names)]:
        stats = data_statistics(data_config({**setting, **change}))
        if name == "recipe":
            folders, results = list(recipe_cells), list(recipe_cells.values())
        else:
            folders = [f"{name}-s{seed}" for seed in seeds]
            cell = {**base, **change, "rows": ["mppi"], "gcbc_steps": 0}
            results = [
                run_cell(out, folder, {**cell, "seed": seed})[0]["results"]["mppi"]
                for folder, seed in zip(folders, seeds, strict=True)
            ]
        models = [_model_diagnostics(out / folder, common) for folder in folders]
        pushes = float(np.mean([m["pushes_beyond"] for m in models]))
        wall, free = (float(np.mean([m[k] for m in models])) for k in ("wall", "free"))
        successes = [r["success"] for r in results]
        mean, std = _stats(successes)
        dist, _ = _stats([r["final_distance"] for r in results])
        label = ", ".join(f"{k}={v:g}" for k, v in change.items()) or (
            f"the recipe's ({setting['cross_wall_rate']:g}, {setting['angle_noise']:g})"
        )
        rows.append(
            {
                "name": f"quality_{name}",
                "table": "data_quality",
                "change": change,
                "room_changes_pct": stats["crossing"],
                "wall_contacts_pct": stats["wall_contacts"],
                "success_mean": mean,
                "success_std": std,
                "success_per_seed": successes,
                "seeds": seeds,
                "solved_by_detour": _detour_cell(results),
                "final_distance": dist,
                "pushes_beyond_wall": pushes,
                "one_step_error_wall": wall,
                "one_step_error_free": free,
            }
        )
        lines.append(
            f"| {label} | {stats['crossing']:.1f} | {stats['wall_contacts']:.1f} | "
            f"{' / '.join(f'{v:.0f}' for v in successes)} | {mean:.0f} ± {std:.0f} | "
            f"{_detour_cell(results)} | {dist:.1f} | {100 * pushes:.0f} % | "
            f"{1e4 * wall:.1f} / {1e4 * free:.1f} |"
        )
    lines.append("")
    return lines


def protocol_text(protocol: dict) -> str:
    wall = "fixed wall" if protocol["fixed_wall"] else "random wall and door per episode"
    return (
        f"{protocol['episodes']} episodes (task seed {protocol['seed']}), {wall}; {protocol['goal']}; "
        f"{protocol['max_steps']} steps, ‖a‖ ≤ {protocol['max_norm']}; success = final distance < "
        f"{protocol['success_radius']} px (65 px world units)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
