"""The coverage simulation at the study's own design: python -m benchmarks.coverage [--studies N]

Titanic-like samples of 714 rows, 20 overlapping splits x 5 nested seeds, params.yaml's network
(2 x 64, 20 epochs, lr 0.001), cross-entropy against the square loss, the report's statistics
(pipeline/statistics/coverage.py; tests/test_coverage.py runs a small design in CI). Prints the
coverage of the 95% intervals now and as built before (Nadeau-Bengio on the whole split-means'
variance), TOST's type-I error at |difference| = margin, the difference intervals' mean width,
and writes them between the coverage markers of benchmarks/README.md (docs/study.md quotes them).
About 15 minutes on one core.
"""
from __future__ import annotations

import argparse
import json
import re
import time

import pipeline  # noqa: F401  (isort: skip) the numerics pinned before torch loads
from pipeline.statistics import coverage

from .run import ROOT

MARKERS = ("<!-- coverage:begin -->", "<!-- coverage:end -->")


def table(design: coverage.Design, found: coverage.Coverage, known: dict, seconds: float) -> str:
    shares = {key: found.share(key) for key in ("mean", "mean_as_built", "difference", "difference_as_built",
                                                "tost_errors", "tost_errors_as_built")}
    widths = found.as_dict()
    return "\n".join([
        f"{design.studies} studies of {design.rows} rows, {design.splits} splits x {design.seeds} seeds, "
        f"{design.hidden_layers} x {design.hidden_size} network, {design.epochs} epochs; truth from "
        f"{design.truth_samples} samples judged on {design.test_rows} fresh rows each: reference accuracy "
        f"{known['reference']:.4f}, difference {known['difference']:+.4f} (se {known['difference_se']:.4f}); "
        f"{seconds / 60:.0f} min.", "",
        "| 95% intervals | now (seed-aware) | as built (Nadeau-Bengio on all of s_b^2) |",
        "|---|---|---|",
        f"| cover the mean accuracy | {shares['mean']:.1%} | {shares['mean_as_built']:.1%} |",
        f"| cover the paired difference | {shares['difference']:.1%} | {shares['difference_as_built']:.1%} |",
        f"| difference interval, mean width | {widths['width']:.4f} | {widths['width_as_built']:.4f} |",
        f"| TOST equivalence where the truth is +-margin ({found.tost_tries} tries) | "
        f"{shares['tost_errors']:.1%} | {shares['tost_errors_as_built']:.1%} |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=coverage.Design.studies)
    args = parser.parse_args()
    design = coverage.Design(studies=args.studies)
    started = time.perf_counter()
    found, known = coverage.simulate(design)
    text = table(design, found, known, time.perf_counter() - started)
    print(text)
    print(json.dumps({"truth": known, "coverage": found.as_dict()}))
    readme = ROOT / "benchmarks" / "README.md"
    body = readme.read_text()
    pattern = re.compile(rf"({re.escape(MARKERS[0])}\n).*?({re.escape(MARKERS[1])})", re.S)
    if pattern.search(body):
        readme.write_text(pattern.sub(lambda m: m.group(1) + text + "\n" + m.group(2), body))


if __name__ == "__main__":
    main()
