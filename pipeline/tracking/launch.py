"""The `mlflow run .` entry points (see MLproject): main, train and sweep.

Overrides never edit params.yaml behind DVC's back: they go through
`dvc exp run --set-param`, so params.yaml, dvc.lock and the MLflow runs tell one story (and
DVC records the experiment: `dvc exp show`). Without overrides it is a plain `dvc repro`.
Afterwards the launch's own run (MLFLOW_RUN_ID, opened by `mlflow run`) is tagged with every
run it stands for, even when nothing had to run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

from ..core import config
from ..core.errors import PipelineError

TRAIN_KEYS = ("epochs", "lr", "hidden_size", "hidden_layers")
SWEEP_KEYS = ("alpha_min", "alpha_max", "alpha_count", "model", "neurons", "max_iter", "frame_ms")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline launch")
    sub = p.add_subparsers(dest="entry", required=True)
    sub.add_parser("main", help="the whole pipeline (dvc repro)")
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
    elif args.entry == "sweep":
        for key in SWEEP_KEYS:
            value = getattr(args, key)
            if value is not None and value != getattr(params.iris, key):
                sets.append(f"iris.{key}={value}")
    if getattr(args, "seed", None) is not None and args.seed != params.seed:
        sets.append(f"seed={args.seed}")
    return sets


def command(entry: str, sets: list[str]) -> list[str]:
    # The sweep has its own chain of stages; train and main end in publish, which needs every
    # variant, so DVC re-runs only the stages whose settings changed and reuses the rest.
    target = "sweep_alpha" if entry == "sweep" else "publish"
    if not sets:
        return ["dvc", "repro", target]
    return ["dvc", "exp", "run", *[arg for s in sets for arg in ("--set-param", s)], target]


def apply(raw: dict, sets: list[str]) -> list[str]:
    """Apply the overrides to a copy of params (checked against the schema before DVC writes
    them); return them in DVC's syntax, where a key params.yaml lacks needs a leading '+'."""
    import yaml

    spelled = []
    for item in sets:
        key, _, value = item.partition("=")
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        spelled.append(item if leaf in node else f"+{item}")
        node[leaf] = yaml.safe_load(value)
    config.parse(raw)
    return spelled


def main(argv: list[str], params_path: str = config.PARAMS_FILE) -> None:
    import yaml

    args = parser().parse_args(argv)
    params = config.load(params_path)
    sets = apply(yaml.safe_load(open(params_path)), overrides(args, params))
    cmd = command(args.entry, sets)
    print("launch: " + " ".join(cmd), flush=True)
    done = subprocess.run(cmd, env=os.environ.copy())
    if done.returncode != 0:
        raise PipelineError(f"launch {args.entry}: `{' '.join(cmd)}` failed with exit code {done.returncode}")
    from . import publish

    names = ["sweep"] if args.entry == "sweep" else None
    publish.main(params_path, only=names)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
