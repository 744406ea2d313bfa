"""The `mlflow run .` entry points (see MLproject): main, train and sweep.

An override sets its value in params.yaml and changes nothing else there (config.set_values:
comments, flow style and order stay; `dvc exp run --set-param` would rewrite the whole file),
then `dvc exp run` runs the experiment from that workspace, so params.yaml, dvc.lock and the
MLflow runs tell one story (and DVC records the experiment: `dvc exp show`). Without overrides it
is a plain `dvc repro`.
The launch's own run (MLFLOW_RUN_ID, opened by `mlflow run`) is named for what it launches
(`mlflow run train mse: epochs=3`), its DVC experiment likewise (`train-mse-epochs-3`), and
afterwards the run is tagged with every run it stands for, even when nothing had to run.
"""
from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys

from ..core import config
from ..core.errors import PipelineError

TRAIN_KEYS = ("epochs", "lr", "hidden_size", "hidden_layers")
SWEEP_KEYS = ("alpha_min", "alpha_max", "alpha_count", "model", "neurons", "max_iter", "frame_ms")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline launch")
    sub = p.add_subparsers(dest="entry", required=True)
    main = sub.add_parser("main", help="the whole pipeline (dvc repro)")
    main.add_argument("--tuning", choices=("true", "false", "params"), default="params",
                      help="the tuned study on or off (tuning.enabled); params: as params.yaml says")
    train = sub.add_parser("train", help="one variant, with overrides of its settings")
    train.add_argument("--variant", required=True)
    sweep = sub.add_parser("sweep", help="the Iris alpha sweep, with overrides")
    # Each option takes the type of the setting it overrides (the schema's defaults say it).
    for entry, keys, defaults in ((train, TRAIN_KEYS, config.Training()), (sweep, SWEEP_KEYS, config.IrisSweep())):
        for key in keys:
            entry.add_argument(f"--{key.replace('_', '-')}", type=type(getattr(defaults, key)))
        entry.add_argument("--seed", type=int)
    return p


def overrides(args, params: config.Params) -> list[str]:
    """`key=value` for each requested value that differs from what params.yaml already says."""
    sets = []
    if args.entry == "train":
        variant = params.variant(args.variant)
        for key in TRAIN_KEYS:
            value = getattr(args, key)
            if value is not None and value != getattr(variant.training, key):
                sets.append(f"variants.{args.variant}.{key}={value}")
    elif args.entry == "main":
        if args.tuning != "params" and (args.tuning == "true") != params.tuning.enabled:
            sets.append(f"tuning.enabled={args.tuning}")
    elif args.entry == "sweep":
        for key in SWEEP_KEYS:
            value = getattr(args, key)
            if value is not None and value != getattr(params.iris, key):
                sets.append(f"iris.{key}={value}")
    if getattr(args, "seed", None) is not None and args.seed != params.seed:
        sets.append(f"seed={args.seed}")
    return sets


def command(entry: str, experiment: str | None) -> list[str]:
    """`dvc exp run` under the `experiment` name where a value was overridden, else `dvc repro`.
    The sweep has its own chain of stages; train and main end in publish, which needs every
    variant, so DVC re-runs only the stages whose settings changed and reuses the rest."""
    target = "sweep_alpha" if entry == "sweep" else "publish"
    return ["dvc", "exp", "run", "--name", experiment, target] if experiment else ["dvc", "repro", target]


def label(args, changed: dict[str, object]) -> str:
    """What a launch is, in words: `train mse: epochs=3`, `main`, `main: tuning.enabled=false`."""
    what = f"train {args.variant}" if args.entry == "train" else args.entry
    prefix = f"variants.{args.variant}." if args.entry == "train" else ""
    settings = ", ".join(f"{key.removeprefix(prefix)}={str(value).lower() if isinstance(value, bool) else value}"
                         for key, value in changed.items())
    return f"{what}: {settings}" if settings else what


def experiment_name(what: str, taken: set[str]) -> str:
    """A DVC experiment's name from the launch's label (a git ref's characters), numbered past
    the names the baseline's experiments already have: DVC refuses a name twice."""
    base = re.sub(r"[^A-Za-z0-9_.]+", "-", what).strip("-.")
    return next(name for name in (base if n == 1 else f"{base}-{n}" for n in itertools.count(1))
                if name not in taken)


def experiments() -> set[str]:
    """The names of the current commit's DVC experiments."""
    listed = subprocess.run(["dvc", "exp", "list", "--name-only"], capture_output=True, text=True)
    return set(listed.stdout.split()) if listed.returncode == 0 else set()


def name_launch_run(what: str) -> None:
    """The run `mlflow run` opened (MLFLOW_RUN_ID) is named for what it launches, not at random."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if run_id:
        from mlflow import MlflowClient

        from . import store

        MlflowClient(store.tracking_uri()).update_run(run_id, name=f"mlflow run {what}")


def values(sets: list[str]) -> dict[str, object]:
    """`key=value` overrides as {key: value}, each value read as YAML reads it."""
    import yaml

    return {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in sets)}


def main(argv: list[str], params_path: str = config.PARAMS_FILE) -> None:
    args = parser().parse_args(argv)
    params = config.load(params_path)
    changed = values(overrides(args, params))
    if changed:  # validated before a byte is written: a bad value leaves params.yaml as it was
        config.set_values(params_path, changed)
    what = label(args, changed)
    name_launch_run(what)
    cmd = command(args.entry, experiment_name(what, experiments()) if changed else None)
    print("launch: " + " ".join(cmd), flush=True)
    done = subprocess.run(cmd, env=os.environ.copy())
    if done.returncode != 0:
        raise PipelineError(f"launch {args.entry}: `{' '.join(cmd)}` failed with exit code {done.returncode}")
    from . import publish

    names = ["sweep"] if args.entry == "sweep" else None
    publish.main(params_path, only=names)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
