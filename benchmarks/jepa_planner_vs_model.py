"""Two Rooms: is the planner or the learned model the limit? (issue 14, beside table (a))

One trained ``jepa-two-rooms`` run (the recipe's defaults, seed 0, or ``--run``) and the
20 tasks of the protocol, each planner setting evaluated twice in one run:

- ``mppi_true_dynamics`` — MPPI on the arena's exact physics, cost = mean distance to the
  goal in world units: the **planner's ceiling** (what it misses, the planner misses);
- ``mppi`` — the same MPPI through the JEPA's predictor, cost = mean distance to the goal's
  embedding (the issue's row);

for the planner before this revision (white perturbations, temperature 0.05: the MPPI
mean ≈ the single cheapest sample) and now (perturbations coloured along the horizon,
β = 2, iCEM; temperature 10: the elites' mean, eb_jepa's). Beside them, eb_jepa's MPPI
(97 ± 2 %) and the model's wall diagnostics (``genoise eval planning RUN diagnose=true``).

Writes ``benchmarks/records/jepa_planner_vs_model.{md,json}`` (rows named
``<row>/<planner>``; the command; the date).

    python benchmarks/jepa_planner_vs_model.py                 # trains the run if absent (~8 CPU-min)
    python benchmarks/jepa_planner_vs_model.py --run runs/jepa-two-rooms
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import _cells as cells  # noqa: E402

from benchmarks._records import write_records  # noqa: E402
from genoise.recipes import jepa as recipe  # noqa: E402
from genoise.world.jepa_train import load_jepa  # noqa: E402
from genoise.world.latent_planning import Protocol  # noqa: E402

PLANNERS = {
    "before": {"noise_beta": 0.0, "temperature": 0.05},
    "now": {"noise_beta": 2.0, "temperature": 10.0},
}
ROWS = ("mppi_true_dynamics", "mppi")
REFERENCE = {"mppi": "97 ± 2", "mppi_true_dynamics": "—"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=None, help="a trained jepa-two-rooms run folder")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "jepa_two_rooms")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--records", type=Path, default=ROOT / "benchmarks" / "records")
    args = parser.parse_args(argv)
    run = args.run
    if run is None:  # the default recipe, seed 0, evaluated here rather than by the recipe
        cells.run_cell(
            args.out,
            "jepa-two-rooms",
            "planner-vs-model-s0",
            {"seed": 0, "gcbc_steps": 0, "rows": ["oracle"]},
            "planning.json",
        )
        run = args.out / "planner-vs-model-s0"
    rows = []
    for planner, options in PLANNERS.items():
        out = recipe.evaluate(run, rows=list(ROWS), episodes=args.episodes, figures=False, **options)
        for row in ROWS:
            r = out["results"][row]
            rows.append(
                {
                    "row": f"{row}/{planner}",
                    "planner": planner,
                    **options,
                    "success": r["success"],
                    "final_distance": r["final_distance"],
                    "plan_seconds_per_episode": r["plan_seconds_per_episode"],
                    "reference": REFERENCE[row],
                }
            )
            print(
                f"{row:>20} {planner:>7}: {r['success']:5.1f} % (final distance {r['final_distance']:.1f}, "
                f"{r['plan_seconds_per_episode']:.1f} s / episode)",
                flush=True,
            )
        protocol = out["protocol"]
    diagnostics = recipe.diagnose(run, load_jepa(run / "jepa" / "last.pt"))
    shown = run.resolve().relative_to(ROOT) if run.resolve().is_relative_to(ROOT) else run
    lines = [
        "# Two Rooms: the planner's ceiling vs planning through the learned model",
        "",
        f"Run: `{shown}` (the recipe's defaults, seed 0). Protocol: {Protocol(**protocol).describe()}.",
        "Planner: horizon 48, 8 iterations × 200 samples, 20 elites, 4 actions per re-plan; *before*: white "
        "perturbations, temperature 0.05; *now*: coloured perturbations β = 2, temperature 10.",
        "",
        "| planner | MPPI on the true dynamics (ceiling) % | MPPI through the JEPA % | eb_jepa MPPI % "
        "| planning s / episode (JEPA) |",
        "|---|---:|---:|---:|---:|",
    ]
    for planner in PLANNERS:
        ceiling, model = (next(r for r in rows if r["row"] == f"{row}/{planner}") for row in ROWS)
        lines.append(
            f"| {planner} | {ceiling['success']:.0f} | {model['success']:.0f} | {REFERENCE['mppi']} "
            f"| {model['plan_seconds_per_episode']:.1f} |"
        )
    lines += [
        "",
        "Wall diagnostics of the model (`genoise eval planning RUN diagnose=true`):",
        "",
        (run / "diagnostics.md").read_text().strip(),
        "",
    ]
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python benchmarks/jepa_planner_vs_model.py", *given])
    text = "\n".join(lines) + f"\nCommand: `{command}`; date {date.today().isoformat()}.\n"
    write_records(
        args.records,
        "jepa_planner_vs_model",
        text,
        {
            "rows": rows,
            "diagnostics": diagnostics,
            "protocol": protocol,
            "run": str(shown),
            "command": command,
            "date": date.today().isoformat(),
        },
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
