"""`python -m pipeline experiments`: the study's headline per DVC experiment, in 120 columns.

`dvc exp show` prints every param and metric of every stage, hundreds of columns; this prints
one row per variant and one column per experiment (the workspace, the baseline commit, each
experiment by name), each cell the variant's `val_accuracy_mean`, and above the table what each
experiment changed against the baseline. The numbers are DVC's own (`dvc exp show --json`).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from ..core import config
from ..core.catalog import VariantFiles
from ..core.errors import PipelineError

WIDTH = 120
METRIC = "val_accuracy_mean"
GAP = "  "


def show_json() -> list[dict]:
    """DVC's experiments of the current commit: a list of baselines (the workspace first), each
    with its `experiments`, each with its `revs`, each with `data.params` and `data.metrics`."""
    command = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        said = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        reason = next((line for line in said if line.startswith("ERROR")), said[-1] if said else "no output")
        raise PipelineError(f"`dvc exp show --json` failed: {reason.removeprefix('ERROR: ')}")
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise PipelineError(f"`dvc exp show --json` printed no JSON: {done.stdout[:80]!r}") from None


def columns(shown: list[dict]) -> list[tuple[str, dict]]:
    """(name, data) for the workspace, each baseline commit and each of its experiments."""
    found = []
    for baseline in shown:
        rev = baseline["rev"]
        name = baseline.get("name") or (rev if rev == "workspace" else rev[:7])
        found.append((name, baseline.get("data") or {}))
        for experiment in baseline.get("experiments") or []:
            for each in experiment.get("revs") or []:
                found.append((each.get("name") or experiment.get("name") or each["rev"][:7], each.get("data") or {}))
    return found


def flatten(tree, prefix: str = "") -> dict[str, object]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def params_of(data: dict) -> dict[str, object]:
    """Every param of every params file, dotted (`variants.mse.epochs`); the file named when it is
    not params.yaml."""
    flat = {}
    for path, content in (data.get("params") or {}).items():
        for key, value in flatten((content or {}).get("data") or {}).items():
            flat[key if path == "params.yaml" else f"{path}:{key}"] = value
    return flat


def changes(params: dict, baseline: dict) -> list[str]:
    """What differs from the baseline, in `dvc exp run --set-param` syntax (`~key` for a key removed)."""
    said = [f"{key}={json.dumps(value) if not isinstance(value, str) else value}"
            for key, value in params.items() if key not in baseline or baseline[key] != value]
    return said + [f"~{key}" for key in baseline if key not in params]


def variants_of(data: dict, params_path: str) -> list[str]:
    content = ((data.get("params") or {}).get(params_path) or {}).get("data") or {}
    variants = content.get("variants")
    return list(variants) if isinstance(variants, dict) else []


def datasets_of(data: dict, params_path: str) -> list[str]:
    content = ((data.get("params") or {}).get(params_path) or {}).get("data") or {}
    datasets = content.get("datasets")
    return list(datasets) if isinstance(datasets, dict) else []


def headline(data: dict, variant: str, dataset: str) -> str:
    value = ((data.get("metrics") or {}).get(str(VariantFiles(variant, dataset).metrics)) or {}).get("data", {}).get(METRIC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.3f}"
    return "-" if value is None else str(value)


def blocks(names: list[str], rows: dict[str, list[str]], width: int = WIDTH) -> list[str]:
    """The table, its columns side by side until `width`, then in further blocks below."""
    label = max([len("variant"), *map(len, rows)])
    sizes = [max(len(name), *(len(cells[i]) for cells in rows.values())) for i, name in enumerate(names)]
    lines, start = [], 0
    while start < len(names):
        end, used = start, label
        while end < len(names) and (end == start or used + len(GAP) + sizes[end] <= width):
            used += len(GAP) + sizes[end]
            end += 1
        if lines:
            lines.append("")
        shown = range(start, end)
        lines.append(GAP.join(["variant".ljust(label), *(names[i].ljust(sizes[i]) for i in shown)]).rstrip())
        for variant, cells in rows.items():
            lines.append(GAP.join([variant.ljust(label), *(cells[i].ljust(sizes[i]) for i in shown)]).rstrip())
        start = end
    return lines


def render(shown: list[dict], params_path: str = config.PARAMS_FILE, width: int = WIDTH) -> list[str]:
    found = columns(shown)
    # Names wider than a column can hold are cut (DVC's names are short; `-n` may not be).
    most = width - max(len("variant"), 12) - len(GAP)
    names = [name if len(name) <= most else name[:most - 1] + "…" for name, _ in found]
    variants, datasets = [], []
    for _, data in found:
        variants += [v for v in variants_of(data, params_path) if v not in variants]
        datasets += [d for d in datasets_of(data, params_path) if d not in datasets]
    # The headline is the first dataset's, as params.yaml lists them (docs/pipeline.md).
    dataset = datasets[0] if datasets else "<dataset>"
    rows = {variant: [headline(data, variant, dataset) for _, data in found] for variant in variants}
    if not any(cell != "-" for cells in rows.values() for cell in cells):
        raise PipelineError(f"nothing to show: no experiment has a {METRIC} in "
                            f"{VariantFiles('<variant>', dataset).metrics}; run `dvc repro` or `dvc exp run` first")
    baseline_index = next((i for i, (name, _) in enumerate(found) if name != "workspace"), 0)
    baseline = params_of(found[baseline_index][1])
    said = []
    for i, (name, data) in enumerate(found):
        changed = changes(params_of(data), baseline) if i != baseline_index and data else []
        if changed:
            said += textwrap.wrap(f"{names[i]}: {', '.join(changed)}", width=width,
                                  subsequent_indent=" " * min(len(names[i]) + 2, 24), break_on_hyphens=False)
    title = f"{METRIC} per variant on {dataset}, against {names[baseline_index]} (dvc exp show --json)"
    return [title[:width], *said, "", *blocks(names, rows, width)]


def main(params_path: str = config.PARAMS_FILE) -> None:
    print("\n".join(render(show_json(), params_path)))
