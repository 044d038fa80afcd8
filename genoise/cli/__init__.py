"""The ``genoise`` command line: ``train``, ``recipes``, ``demo`` (see ``--help``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from genoise.cli.demo import SECTIONS, run_demo
from genoise.recipes import list_recipes, load_recipe, resolve_config

# kind -> ("module:function", preset options); the function is fn(run_dir: Path, **options) -> dict
EVALUATORS: dict[str, tuple[str, dict]] = {
    "linear": ("genoise.ssl.recipes:evaluate_run", {"kind": "linear"}),
    "knn": ("genoise.ssl.recipes:evaluate_run", {"kind": "knn"}),
    "babi": ("genoise.memory.recipes:evaluate_babi_run", {}),
    "driving": ("genoise.world.evaluate:evaluate_driving_run", {}),
}
# sub-commands whose arguments are parsed by the capability itself: name -> "module:main(argv)"
PASSTHROUGH: dict[str, tuple[str, str]] = {
    "world": ("genoise.world.cli:collect_main",
              "world-model data: genoise world collect OUT_DIR [--episodes N ...]"),
    "plan": ("genoise.world.cli:plan_main",
             "drive with a planner over a learned model: genoise plan MODEL_RUN --planner mpc|cem|mppi"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genoise",
        description="Energy-based self-supervised learning and latent-variable world models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="run a recipe: genoise train RECIPE [key=value ...]",
                           description="Run a training recipe. `genoise recipes` lists them.")
    train.add_argument("recipe", help="recipe name (see `genoise recipes`) or a YAML path")
    train.add_argument("overrides", nargs="*", metavar="key=value",
                       help="override a configuration value of the recipe")
    train.add_argument("--name", help="run name (default: the recipe name)")
    train.add_argument("--runs-dir", default="runs", help="parent folder of run folders")
    train.add_argument("--data-dir", help="folder holding data sets (default: $GENOISE_DATA)")
    train.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: recipe's)")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    train.add_argument("--no-progress", action="store_true", help="hide progress bars")
    train.add_argument("--tensorboard", action="store_true", help="also log to TensorBoard")

    evaluate = sub.add_parser("eval", help="evaluate a finished run: genoise eval KIND RUN_DIR",
                              description="Evaluate a run folder. Kinds: "
                              f"{', '.join(EVALUATORS) or 'none yet'}.")
    evaluate.add_argument("kind", help="what to evaluate (" + ", ".join(EVALUATORS) + ")")
    evaluate.add_argument("run_dir", help="the run folder written by `genoise train`")
    evaluate.add_argument("options", nargs="*", metavar="key=value",
                          help="evaluator options (e.g. k=20)")

    for name, (_, help_text) in PASSTHROUGH.items():
        passthrough = sub.add_parser(name, help=help_text, add_help=False)
        passthrough.add_argument("rest", nargs=argparse.REMAINDER)

    recipes = sub.add_parser("recipes", help="list the shipped recipes",
                             description="List recipes, or show one with its defaults.")
    recipes.add_argument("recipe", nargs="?", help="show this recipe's configuration")

    demo = sub.add_parser("demo", help="run the short demo of every capability",
                          description="Run the demo sections and write runs/demo/report.md. "
                          f"Sections: {', '.join(SECTIONS)}.")
    demo.add_argument("--only", action="append", metavar="NAME",
                      help="run only this section (repeatable)")
    demo.add_argument("--full", action="store_true", help="longer settings (takes longer)")
    demo.add_argument("--out", default="runs/demo", help="output folder")
    demo.add_argument("--data-dir", help="folder holding data sets (default: $GENOISE_DATA)")
    demo.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def _train(args: argparse.Namespace) -> int:
    from genoise.data.paths import resolve_data_dir
    from genoise.train.run import Run, resolve_device

    recipe = load_recipe(args.recipe)
    overrides = list(args.overrides)
    if args.data_dir:
        overrides.append(f"data_dir={args.data_dir}")
    if args.device:
        overrides.append(f"device={args.device}")
    config = resolve_config(recipe, overrides)
    run = Run(Path(args.runs_dir) / (args.name or recipe.name), config=config,
              device=resolve_device(config["device"]),
              data_dir=resolve_data_dir(config["data_dir"]), resume=args.resume,
              progress=not args.no_progress, tensorboard=args.tensorboard)
    run.save_config()
    summary = recipe.load_entry()(run) or {}
    run.save_summary(summary)
    print(json.dumps(summary, indent=2, default=str))
    print(f"run folder: {run.dir}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import importlib

    import yaml

    if args.kind not in EVALUATORS:
        raise ValueError(f"unknown evaluation kind {args.kind!r}; available: {', '.join(EVALUATORS)}")
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder")
    options = {}
    for item in args.options:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"option {item!r} must look like key=value")
        options[key] = yaml.safe_load(raw)
    target, preset = EVALUATORS[args.kind]
    module_name, _, attr = target.partition(":")
    result = getattr(importlib.import_module(module_name), attr)(run_dir, **{**preset, **options})
    print(json.dumps(result, indent=2, default=str))
    return 0


def _recipes(args: argparse.Namespace) -> int:
    if args.recipe:
        recipe = load_recipe(args.recipe)
        print(f"{recipe.name}: {recipe.description}\nentry: {recipe.entry}\nconfig:")
        for key, value in recipe.config.items():
            allowed = f"   (one of: {', '.join(map(str, recipe.choices[key]))})" \
                if key in recipe.choices else ""
            print(f"  {key} = {value!r}{allowed}")
        return 0
    recipes = list_recipes()
    width = max((len(r.name) for r in recipes), default=0)
    for recipe in recipes:
        print(f"{recipe.name:<{width}}  {recipe.description}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from genoise.data.paths import resolve_data_dir

    report = run_demo(Path(args.out), only=args.only, full=args.full, device=args.device,
                      data_dir=resolve_data_dir(args.data_dir), progress=not args.no_progress)
    print(f"report: {report.resolve()}")
    return 0


def _passthrough(argv: list[str]) -> int:
    import importlib

    name, rest = argv[0], argv[1:]
    if name == "world":
        if not rest or rest[0] != "collect":
            asked = rest[:1] in (["-h"], ["--help"])
            print("usage: genoise world collect OUT_DIR [options]   (see: genoise world collect --help)",
                  file=sys.stdout if asked else sys.stderr)
            return 0 if asked else 2
        rest = rest[1:]
    module_name, _, attr = PASSTHROUGH[name][0].partition(":")
    try:
        return int(getattr(importlib.import_module(module_name), attr)(rest) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"genoise: error: {err}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``genoise`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASSTHROUGH:
        return _passthrough(argv)
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
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError) as err:
        print(f"genoise: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genoise: interrupted (the last checkpoint is kept; rerun with --resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
