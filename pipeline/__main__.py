"""`python -m pipeline <command>`: one command per DVC stage.

Each command imports only its own stage module, so a stage pays for the libraries it uses
and nothing else. Errors a user can fix print one line and exit 1; --debug shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import PipelineError

# command -> (module, takes a variant name)
COMMANDS = {
    "fetch-titanic": ("fetch_titanic", False),
    "preprocess-titanic": ("preprocess_titanic", False),
    "train": ("train", True),
    "plot-titanic": ("plot_titanic", False),
    "fetch-iris": ("fetch_iris", False),
    "preprocess-iris": ("preprocess_iris", False),
    "sweep-alpha": ("sweep_alpha", False),
    "publish": ("publish", False),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, takes_variant) in COMMANDS.items():
        command = sub.add_parser(name)
        if takes_variant:
            command.add_argument("variant")
    args = parser.parse_args(argv)
    module_name, takes_variant = COMMANDS[args.command]
    try:
        module = importlib.import_module(f"pipeline.{module_name}")
        if takes_variant:
            module.main(args.variant, params_path=args.params)
        else:
            module.main(params_path=args.params)
    except PipelineError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
