"""What one variant's training on one dataset is a function of, kept beside its results
(`inputs.json`), so that train@<dataset> re-trains only the variants whose inputs changed.

The inputs are the code the stage runs (each module of this package its process has loaded: the
`.py` deps dvc.yaml lists for it, as tests/test_stage_deps.py holds), the versions of the
libraries that compute and draw, the dataset's prepared data (each file by sha256) and what
params.yaml gives this variant: its settings (the shared `train` defaults resolved into them),
the seed and the study's seeds x splits; for a loss of your own, its module files' sha256.
Another variant's edit changes none of them (nor does an edit to another loss of your own); a
code or data edit changes every variant's. Training is deterministic (a test holds it to the
byte), so equal inputs mean equal outputs: keeping a variant's outputs is what re-training it would write.
The record also holds each output's sha256 as written, so an output edited since (a metrics file
checked out from another commit, say) is trained again, not kept.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

from ..core import config
from ..core.catalog import DatasetFiles, VariantFiles
from ..core.vocabulary import LOSSES, USER_LOSSES

PACKAGE = Path(__file__).resolve().parents[1]
LIBRARIES = ("torch", "numpy", "matplotlib")  # what trains, and what draws the figures


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def stage_files(dataset: str) -> dict[str, str]:
    """The code loaded so far (call it once the stage has imported all it runs) and the dataset's
    prepared files, each path -> its sha256."""
    loaded = {Path(m.__file__).resolve() for m in list(sys.modules.values())
              if isinstance(getattr(m, "__file__", None), str)}
    code = sorted(path for path in loaded if PACKAGE in path.parents)
    data = DatasetFiles(dataset)
    files = {f"{PACKAGE.name}/{path.relative_to(PACKAGE).as_posix()}": path for path in code}
    files.update({str(data.prepared): data.prepared, str(data.meta): data.meta})
    return {name: _sha256(path) for name, path in files.items()}


def loss_source(loss: str) -> dict[str, str]:
    """A loss of your own's module and every module under USER_LOSSES it imports, followed
    through their imports -> each file's sha256 (nothing for a torch loss): part of the inputs of
    the variants using it alone, so that editing any of them re-trains exactly those. By module
    name, which a Ray worker's copy of the project shares."""
    if loss in LOSSES:
        return {}
    import ast
    import importlib.util

    found, todo = {}, [loss.partition(":")[0]]
    while todo:
        module = todo.pop()
        try:  # `from losses.focal import FocalLoss` names a class too, not only modules
            spec = None if module in found else importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin:
            continue
        origin = Path(spec.origin)
        found[module] = _sha256(origin)
        package = module if origin.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(origin.read_bytes())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                    if node.level else node.module
                names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            # the project's losses folder only: torch and the rest are the libraries' versions
            todo += [name for name in names if name and name.split(".")[0] == USER_LOSSES]
    return dict(sorted(found.items()))


def of(files: dict[str, str], variant: config.Variant, params: config.Params) -> dict:
    """As inputs.json holds them (through JSON, so that a tuple compares equal to its list)."""
    from importlib.metadata import version

    return json.loads(json.dumps({
        "files": files, "loss_code": loss_source(variant.loss),
        "libraries": {name: version(name) for name in LIBRARIES},
        "variant": dataclasses.asdict(variant), "seed": params.seed,
        "study": {"seeds": params.study.seeds, "splits": params.study.splits},
        "tuning": dataclasses.asdict(params.tuning) if params.tuning.enabled else None}))


def _tuned(inputs: dict) -> bool:
    return bool(inputs.get("tuning"))


def record(files: VariantFiles, inputs: dict) -> str:
    """inputs.json: the inputs and every other output's sha256 (write it once they are in place)."""
    written = {str(path): _sha256(path) for path in files.outputs(_tuned(inputs)) if path != files.inputs}
    return json.dumps({"inputs": inputs, "outputs": written}, indent=2, sort_keys=True) + "\n"


def changed(files: VariantFiles, inputs: dict) -> str | None:
    """Why this variant must be trained again, or None when its outputs are those of `inputs`."""
    outputs = files.outputs(_tuned(inputs))
    missing = [path for path in outputs if not path.exists()]
    if missing:
        return f"{missing[0]} is missing"
    try:
        saved = json.loads(files.inputs.read_text())
        kept, written = saved["inputs"], saved["outputs"]
    except (ValueError, KeyError, TypeError):
        return f"{files.inputs} is unreadable"
    if kept != inputs:
        differ = sorted(key for key in inputs if kept.get(key) != inputs[key])
        if "files" in differ:
            edited = sorted(k for k in inputs["files"] if kept.get("files", {}).get(k) != inputs["files"][k])
            return f"{', '.join(edited) or 'the stage files'} changed"
        return f"its {', '.join(differ)} changed"
    for path in outputs:
        if path != files.inputs and written.get(str(path)) != _sha256(path):
            return f"{path} changed since it was written"
    return None
