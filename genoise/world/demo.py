"""``genoise demo`` section: a short driving run in dense traffic, with its GIF."""

from __future__ import annotations

from genoise.train.run import Run
from genoise.world.policy import evaluate_driving, expert, keep_speed
from genoise.world.render import filmstrip, save_gif, save_png


def demo_section(run: Run, full: bool) -> str:
    """Episodes of the IDM driver (replayed ghost) and of "keep speed" on the same seeds;
    the first IDM episode is rendered to ``driving.gif`` / ``driving.png``."""
    env_kwargs = dict(route_length=200.0, max_steps=300)
    seeds = list(range(10 if full else 4))
    rows = []
    for name, controller in (("IDM driver (replay)", expert), ("no action (keep speed)", keep_speed)):
        outcome = evaluate_driving(
            controller, seeds, env_kwargs, history=1, record=0 if controller is expert else None
        )
        if outcome["frames"]:
            save_gif(outcome["frames"][::2], run.path("driving.gif"))
            save_png(filmstrip(outcome["frames"], every=40), run.path("driving.png"))
        rows.append(
            f"| {name} | {100 * outcome['success_rate']:.0f} | {100 * outcome['collision_rate']:.0f} | "
            f"{outcome['mean_distance']:.0f} |"
        )
    return "\n".join(
        [
            "## Driving in dense traffic (genoise/HighwayTraffic-v0)",
            "",
            "4-lane ring road, IDM car following + MOBIL lane changes, a slow merge zone in the right lane; "
            f"{len(seeds)} episodes of a 200 m route in the invisible-car setting.",
            "",
            "| controller | success % | collision % | mean distance (m) |",
            "|---|---|---|---|",
            *rows,
            "",
            "![driving episode](driving.png)",
            "",
            "[GIF of the episode](driving.gif)",
            "",
        ]
    )
