"""`python -m pipeline <command>`: one command per DVC stage.

Each command imports only its own stage module, so a stage pays for the libraries it uses
and nothing else. Errors a user can fix print one line and exit 1; --debug shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .core import numerics
from .core.errors import PipelineError


def _stage(module: str, function: str = "main"):
    """The command's function, its module imported only now: a stage pays for its own libraries."""
    found = getattr(importlib.import_module(f"pipeline.{module}"), function)
    numerics.check()  # the stage's libraries loaded: each took the pinned code path
    return found


def _dataset(args) -> str:
    # A name the shell split (a dataset named with a space) arrives whole, for params to refuse.
    return " ".join(args.dataset)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, run, help: str):
        found = sub.add_parser(name, help=help)
        found.set_defaults(run=run)
        return found

    for name, module, what in (("fetch", "data.fetch", "fetch@<dataset>: the table as fetched"),
                               ("preprocess", "data.preprocess", "preprocess@<dataset>: features and splits")):
        command(name, lambda a, module=module: _stage(module)(_dataset(a), params_path=a.params), what
                ).add_argument("dataset", nargs="+")
    train = command("train", lambda a: _stage("study.train")(_dataset(a), *a.variants, params_path=a.params),
                    "train@<dataset>: every variant whose inputs changed, or those named")
    train.add_argument("dataset", nargs=1)
    train.add_argument("variants", nargs="*", help="train these (default: every variant whose inputs changed)")
    plain = {"train-study": ("study.train", "main_study", "what every train@<dataset> would train, at once"),
             "report": ("reports.stage", "main", "the reports of every dataset and the page across them"),
             "fetch-iris": ("iris.fetch", "main", "the Iris table"),
             "preprocess-iris": ("iris.preprocess", "main", "the Iris split"),
             "sweep-alpha": ("iris.sweep", "main", "the alpha sweep and its GIF"),
             "experiments": ("study.experiments", "main", "`dvc exp show`, narrowed to what differs"),
             "back": ("back", "main", "the workspace back to the last commit's params and outputs"),
             "benchmark": ("benchmark", "main", "the benchmark (keel/): its `dvc repro`, with the time left"),
             "plots-template": ("plots_template", "main", "DVC's offline plots template")}
    for name, (module, function, what) in plain.items():
        command(name, lambda a, module=module, function=function: _stage(module, function)(params_path=a.params),
                what)
    command("publish", lambda a: _stage("tracking.publish")(params_path=a.params, only=a.names or None),
            "log to MLflow whatever it lacks").add_argument(
        "names", nargs="*", help="variants, 'sweep', 'report' or 'across' (default: all)")
    command("launch", lambda a: _stage("tracking.launch")(a.argv, params_path=a.params),
            "`mlflow run .`'s entry points").add_argument(
        "argv", nargs=argparse.REMAINDER, help="main | train ... | sweep ...")
    command("views", lambda a: _stage("tracking.study_view")(a.url, params_path=a.params),
            "the MLflow UI's saved views").add_argument(
        "url", nargs="?", default="http://127.0.0.1:5000", help="the MLflow UI's address")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except PipelineError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # unwritable output folder, full disk, ...: name the file
        if args.debug:
            raise
        where = exc.filename or ""
        name = os.path.basename(str(where))
        if name.startswith(".") and name.endswith(".tmp"):  # a staged output: name its folder
            where = os.path.relpath(os.path.dirname(str(where)))
        print(f"error: {where}: {exc.strerror or exc} (check that it is writable and the disk has room)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: {args.command} stopped; its outputs are left as they were", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
