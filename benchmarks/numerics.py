"""What pinned numerics cost: python -m benchmarks.numerics [--repeats N]

After `make repro` (it reads the checkout's prepared data), every variant of params.yaml on
Titanic and two on digits (the smallest table and the one with the largest matmuls, 100
replicas each, the default study) trained by the train stage's own loop
(`pipeline.study.train.train`), in a fresh process per measurement: pinned (pipeline/core/numerics.py,
what every stage runs) against the machine's own dispatch (torch, MKL, numpy and OpenBLAS each
choosing for this CPU, as before the pin). The two alternate, `--repeats` times each (default 3),
and the medians are compared, in one invocation, so a noisy machine moves both. Writes the table
between the numerics markers of benchmarks/README.md and prints it.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys

from pipeline.core.numerics import PINNED

from .run import ROOT, env

MARKERS = ("<!-- numerics:begin -->", "<!-- numerics:end -->")
# dataset -> its variants (None: every one of params.yaml)
CELLS = {"titanic": None, "digits": ["cross_entropy", "square_loss"]}

# A child process: "native" lets each library choose its code path for this CPU before the
# pipeline's import can pin it (torch chooses at its first op, MKL at its first call, numpy and
# OpenBLAS as they load), then times the same training loop.
CHILD = """
import json, sys, time
native = sys.argv[1] == "native"
if native:
    import numpy, torch
    torch.ones(64, 64) @ torch.ones(64, 64)
    torch.ones(2).exp()
from pipeline.core import config, numerics
from pipeline.data.preprocess import load_prepared
from pipeline.data.splits import replicas
from pipeline.study.train import train
import torch
torch.set_num_threads(1)
params = config.load()
found = {"unpinned": numerics.unpinned(), "cpu": torch.backends.cpu.get_cpu_capability(), "seconds": {}}
for dataset, names in json.loads(sys.argv[2]).items():
    prepared = load_prepared(dataset)
    classes = len(json.loads(open(f"data/{dataset}/prepared.json").read())["classes"])
    study = params.study
    started = time.perf_counter()
    for name in names or params.variants:
        train(params.variant(name), replicas(params.seed, study.seeds, study.splits), prepared, False, classes)
    found["seconds"][dataset] = time.perf_counter() - started
print(json.dumps(found))
"""


def measure(mode: str) -> dict:
    # Not inherited: this process imported the pipeline, which pinned its own environment.
    unset = {key: value for key, value in env().items() if key not in PINNED}
    done = subprocess.run([sys.executable, "-c", CHILD, mode, json.dumps(CELLS)], cwd=ROOT, env=unset,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def cpu_model() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = {"native": [], "pinned": []}
    for _ in range(args.repeats):
        for mode in runs:
            runs[mode].append(measure(mode))
    assert all(not r["unpinned"] for r in runs["pinned"]), runs["pinned"][0]["unpinned"]
    assert all(r["unpinned"] for r in runs["native"]), "the native runs were pinned: nothing to compare"
    rows = [f"| training (100 replicas each) | native dispatch ({runs['native'][0]['cpu']}, s) | "
            f"pinned (AVX2, MKL COMPATIBLE, s) | ratio |", "|---|---|---|---|"]
    totals = {mode: 0.0 for mode in runs}
    for dataset, names in CELLS.items():
        median = {mode: statistics.median(r["seconds"][dataset] for r in found) for mode, found in runs.items()}
        totals = {mode: totals[mode] + median[mode] for mode in runs}
        rows.append(f"| {dataset}, {', '.join(names) if names else 'every variant'} | {median['native']:.1f} | "
                    f"{median['pinned']:.1f} | {median['pinned'] / median['native']:.2f}x |")
    rows.append(f"| all | {totals['native']:.1f} | {totals['pinned']:.1f} | "
                f"{totals['pinned'] / totals['native']:.2f}x |")
    table = "\n".join(rows) + f"\n\nMedians of {args.repeats} runs each, alternating, on {cpu_model()}."
    print(table)
    readme = ROOT / "benchmarks" / "README.md"
    text = readme.read_text()
    if MARKERS[0] in text:
        head, rest = text.split(MARKERS[0], 1)
        readme.write_text(f"{head}{MARKERS[0]}\n{table}\n{MARKERS[1]}{rest.split(MARKERS[1], 1)[1]}")


if __name__ == "__main__":
    main()
