"""`python -m pipeline <command>`: one command per DVC stage.

Each command imports only its own stage module, so a stage pays for the libraries it uses
and nothing else. Errors a user can fix print one line and exit 1; --debug shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import numerics
from .errors import PipelineError

# command -> (module, or module:function when not its main; what it takes: None, "dataset", "cells"
# (a dataset, then variants), "names", "argv" or "url")
COMMANDS = {
    "fetch": ("data.fetch", "dataset"),
    "preprocess": ("data.preprocess", "dataset"),
    "train": ("study.train", "cells"),
    "train-study": ("study.train:main_study", None),
    "report": ("study.report", None),
    "fetch-iris": ("iris.fetch", None),
    "preprocess-iris": ("iris.preprocess", None),
    "sweep-alpha": ("iris.sweep", None),
    "publish": ("tracking.publish", "names"),
    "experiments": ("study.experiments", None),
    "back": ("back", None),
    "launch": ("tracking.launch", "argv"),
    "views": ("tracking.study_view", "url"),
    "plots-template": ("plots_template", None),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, takes) in COMMANDS.items():
        command = sub.add_parser(name)
        if takes in ("dataset", "cells"):
            command.add_argument("dataset")
        if takes == "cells":
            command.add_argument("variants", nargs="*",
                                 help="train these (default: every variant whose inputs changed)")
        elif takes == "names":
            command.add_argument("names", nargs="*", help="variants, 'sweep', 'report' or 'across' (default: all)")
        elif takes == "argv":
            command.add_argument("argv", nargs=argparse.REMAINDER, help="main | train ... | sweep ...")
        elif takes == "url":
            command.add_argument("url", nargs="?", default="http://127.0.0.1:5000", help="the MLflow UI's address")
    args = parser.parse_args(argv)
    module_name, takes = COMMANDS[args.command]
    module_name, _, function = module_name.partition(":")
    try:
        entry = getattr(importlib.import_module(f"pipeline.{module_name}"), function or "main")
        numerics.check()  # the stage's libraries loaded: each took the pinned code path
        if takes == "dataset":
            entry(args.dataset, params_path=args.params)
        elif takes == "cells":
            entry(args.dataset, *args.variants, params_path=args.params)
        elif takes == "names":
            entry(params_path=args.params, only=args.names or None)
        elif takes == "argv":
            entry(args.argv, params_path=args.params)
        elif takes == "url":
            entry(args.url, params_path=args.params)
        else:
            entry(params_path=args.params)
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
