"""The ``genoise`` command line: ``train``, ``eval``, ``recipes``, ``demo``, ``world``, ``plan``,
``export``, ``bench-inference``.

Thin: it parses, validates and dispatches to the recipe modules of :mod:`genoise.recipes`;
nothing here is capability-specific. torch is imported only by the commands that need it,
so ``genoise --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from genoise._invocation import invoked_as
from genoise.recipes import DEMO_SECTIONS, EVALUATORS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genoise",
        description="Energy-based self-supervised learning and latent-variable world models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train", help="run a recipe: genoise train RECIPE [key=value ...]",
        description="Run a training recipe (`genoise recipes` lists them) into runs/NAME/. "
        "An existing run folder is never replaced silently: continue it with --resume, or "
        "replace it with --overwrite. One writer per run folder.")
    train.add_argument("recipe", help="recipe name (see `genoise recipes`) or a YAML path")
    train.add_argument("overrides", nargs="*", metavar="key=value",
                       help="override a configuration value of the recipe")
    train.add_argument("--name", help="run folder name inside --runs-dir (default: the recipe name)")
    train.add_argument("--runs-dir", default="runs", help="parent folder of run folders")
    train.add_argument("--data-dir", help="folder holding data sets (default: $GENOISE_DATA)")
    train.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: recipe's)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --name from its checkpoints (its config.yaml is the "
                            "base; key=value may change schedule keys, not the model's)")
    train.add_argument("--overwrite", action="store_true",
                       help="delete the existing run folder --name and start again")
    train.add_argument("--stop-after", type=int, metavar="K",
                       help="stop after step K of the (first unfinished) training loop, "
                            "checkpointed; continue with --resume")
    train.add_argument("--no-progress", action="store_true", help="hide progress bars")
    train.add_argument("--tensorboard", action="store_true", help="also log to TensorBoard")

    evaluate = sub.add_parser("eval", help="evaluate a finished run: genoise eval KIND RUN_DIR [key=value]",
                              description="Evaluate a run folder. Kinds: "
                              f"{', '.join(EVALUATORS)}. Examples: genoise eval knn runs/vicreg-mnist "
                              "k=20; genoise eval linear runs/vicreg-mnist epochs=50.")
    evaluate.add_argument("kind", help="what to evaluate (" + ", ".join(EVALUATORS) + ")")
    evaluate.add_argument("run_dir", help="the run folder written by `genoise train`")
    evaluate.add_argument("options", nargs="*", metavar="key=value",
                          help="evaluator options (e.g. k=20)")

    recipes = sub.add_parser("recipes", help="list the shipped recipes, or explain one's keys",
                             description="List recipes, or show one with every key explained.")
    recipes.add_argument("recipe", nargs="?", help="show this recipe's keys: meaning, type, range, default")

    demo = sub.add_parser("demo", help="run the short demo of every capability",
                          description="Run the demo sections and write runs/demo/report.md. "
                          f"Sections: {', '.join(DEMO_SECTIONS)}.")
    demo.add_argument("--only", action="append", metavar="NAME",
                      help="run only this section (repeatable); the report keeps the others")
    demo.add_argument("--full", action="store_true", help="longer settings (takes longer)")
    demo.add_argument("--out", default="runs/demo", help="output folder")
    demo.add_argument("--data-dir", help="folder holding data sets (default: $GENOISE_DATA)")
    demo.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.add_argument("--jobs", type=int, default=None,
                      help="sections run at a time, each in its own process with CPUs/jobs threads "
                      "(default: the CPUs available, at most 4; 1 = one after another in this process)")

    from genoise.cli import deploy, world

    world.add_subcommands(sub)
    deploy.add_subcommands(sub)
    return parser


def _eval(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import yaml

    from genoise.recipes import recipe_module

    if args.kind not in EVALUATORS:
        raise ValueError(f"unknown evaluation kind {args.kind!r}; available: {', '.join(EVALUATORS)}")
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder")
    options = {}
    for item in args.options:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"option {item!r} must look like key=value")
        try:
            options[key] = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError as err:
            raise ValueError(f"option {item!r}: not a valid value ({str(err).splitlines()[0]})") from err
    module, preset = EVALUATORS[args.kind]
    result = recipe_module(module).evaluate(run_dir, **{**preset, **options})
    print(json.dumps(result, indent=2, default=str))
    return 0


def _recipes(args: argparse.Namespace) -> int:
    from genoise.recipes import list_recipes, load_recipe

    if args.recipe:
        recipe = load_recipe(args.recipe)
        print(f"{recipe.name}: {recipe.description}\nentry: {recipe.entry}\nkeys (meaning; type; "
              "range or choices; default):")
        width = max(map(len, recipe.config))
        for key in recipe.config:
            print(f"  {key:<{width}}  {recipe.describe_key(key)}")
        return 0
    recipes = list_recipes()
    width = max((len(r.name) for r in recipes), default=0)
    for recipe in recipes:
        print(f"{recipe.name:<{width}}  {recipe.description}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genoise.cli.demo import DemoSectionError, available_cpus, run_demo
    from genoise.data.paths import resolve_data_dir

    jobs = min(available_cpus(), 4) if args.jobs is None else args.jobs
    try:
        report = run_demo(Path(args.out), only=args.only, full=args.full, device=args.device,
                          data_dir=resolve_data_dir(args.data_dir), progress=not args.no_progress,
                          jobs=jobs)
    except DemoSectionError as err:  # the report keeps the sections that finished
        print(f"genoise: error: {err}", file=sys.stderr)
        return 1
    print(f"report: {report.resolve()}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from genoise.cli.train import train

    return train(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``genoise`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args, extras = parser.parse_known_args(argv)
    # key=value overrides may come after options (`genoise train R --resume steps=9`).
    overrides = [e for e in extras if "=" in e and not e.startswith("-")]
    if args.command in ("train", "eval") and overrides:
        target = "overrides" if args.command == "train" else "options"
        setattr(args, target, [*getattr(args, target), *overrides])
        extras = [e for e in extras if e not in overrides]
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    handlers = {"train": _train, "recipes": _recipes, "demo": _demo, "eval": _eval}
    handler = getattr(args, "handler", None) or handlers[args.command]
    try:
        if args.command != "recipes":  # every command that trains or evaluates on the CPU
            from genoise.train.allocator import tune_cpu_allocator

            tune_cpu_allocator()
        with invoked_as(argv):
            return int(handler(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"genoise: error: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genoise: interrupted (the last checkpoint is kept; rerun with --resume)",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # `genoise recipes X | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
