"""Every stage's `deps` list every project module its process imports, and no more.

The modules come from the real processes: a `dvc repro` of a small copy of the project runs
with a `sitecustomize.py` on PYTHONPATH (Python imports it at start-up, DVC passes the
environment to each stage), whose exit hook writes the process's command line and the files of
every module it loaded from the copy's `pipeline/` package. Each process is matched to its stage
by its command; the deps are read as DVC reads them. A module imported but not listed means an
edit to it re-runs nothing (stale results reported up to date); a `.py` listed but never
imported re-runs a stage for nothing.
"""
import json
import os
import shlex
from pathlib import Path

import pytest
from dvc.repo import Repo

from .conftest import sh

pytestmark = pytest.mark.slow

# Written to a folder of its own on PYTHONPATH; runs in every Python process of the repro,
# DVC's included (those load nothing of the package and are left out).
SITECUSTOMIZE = '''\
import atexit
import json
import os
import sys


def _write_trace():
    package = os.environ["STAGE_DEPS_PACKAGE"]
    files = {os.path.realpath(module.__file__) for module in list(sys.modules.values())
             if isinstance(getattr(module, "__file__", None), str)}
    mine = sorted(f for f in files if f.startswith(package + os.sep))
    if mine:
        with open(os.path.join(os.environ["STAGE_DEPS_TRACE"], f"{os.getpid()}.json"), "w") as out:
            json.dump({"argv": sys.orig_argv, "modules": mine}, out)


if os.environ.get("STAGE_DEPS_TRACE"):
    atexit.register(_write_trace)  # registered first, so it runs last of all exit hooks
'''


def traced_repro(repo: Path, tmp_path: Path, monkeypatch) -> list[dict]:
    hook, traces = tmp_path / "hook", tmp_path / "traces"
    hook.mkdir()
    traces.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("STAGE_DEPS_TRACE", str(traces))
    monkeypatch.setenv("STAGE_DEPS_PACKAGE", os.path.realpath(repo / "pipeline"))
    sh(repo, "dvc", "repro")
    return [json.loads(path.read_text()) for path in sorted(traces.glob("*.json"))]


def commands(stage) -> list[list[str]]:
    cmd = stage.cmd if isinstance(stage.cmd, list) else [stage.cmd]
    return [shlex.split(line) for line in cmd]


def code_deps(stage, root: Path) -> list[Path]:
    """The stage's deps inside pipeline/, as DVC resolved them: .py files and folders."""
    package = root / "pipeline"
    found = []
    for dep in stage.deps:
        path = Path(os.path.realpath(dep.fs_path))
        if (path == package or package in path.parents) and (path.suffix == ".py" or path.is_dir()):
            found.append(path)
    return found


def check(stages, traces: list[dict], root: Path) -> tuple[list[str], list[str]]:
    """(problems, table rows) for DVC's stages against the traced processes."""
    relative = lambda path: str(Path(path).relative_to(root))  # noqa: E731
    problems, rows = [], []
    matched = set()
    for stage in stages:
        mine = [i for i, trace in enumerate(traces) if trace["argv"] in commands(stage)]
        if not mine:
            problems.append(f"{stage.addressing}: never traced (no process ran `{stage.cmd}`; "
                            f"is it cached, or not a Python process?)")
            continue
        matched.update(mine)
        imported = {Path(f) for i in mine for f in traces[i]["modules"]}
        listed = code_deps(stage, root)
        covered = lambda f: any(f == dep or dep in f.parents for dep in listed)  # noqa: E731
        for missing in sorted(f for f in imported if not covered(f)):
            problems.append(f"{stage.addressing}: imports {relative(missing)}, not in its deps")
        for dep in listed:
            files = [dep] if dep.suffix == ".py" else sorted(dep.rglob("*.py"))
            for extra in (f for f in files if f not in imported):
                problems.append(f"{stage.addressing}: lists {relative(extra)}"
                                f"{'' if extra == dep else f' (in {relative(dep)})'}, never imported")
        rows.append((stage.addressing, ", ".join(relative(f) for f in sorted(imported)),
                     "yes" if all(covered(f) for f in imported) else "no"))
    for i, trace in enumerate(traces):
        if i not in matched:
            problems.append(f"a process matching no stage's cmd ran project code: {shlex.join(trace['argv'])}")
    return problems, rows


def table(rows) -> str:
    width = max(len(stage) for stage, _, _ in rows)
    lines = [f"{'stage'.ljust(width)}  all listed  modules imported"]
    lines += [f"{stage.ljust(width)}  {listed.ljust(10)}  {modules}" for stage, modules, listed in rows]
    return "\n".join(lines)


def test_every_stage_depends_on_the_modules_it_imports_and_no_more(repo, tmp_path, monkeypatch):
    traces = traced_repro(repo, tmp_path, monkeypatch)
    root = Path(os.path.realpath(repo))
    monkeypatch.chdir(repo)  # stage names as DVC prints them: train@mse, not dvc.yaml:train@mse
    with Repo(str(repo)) as dvc:
        stages = list(dvc.index.stages)
    assert stages
    problems, rows = check(stages, traces, root)
    print("\n" + table(rows))
    assert not problems, "\n".join(problems) + "\n\n" + table(rows)


def test_the_check_names_a_missing_an_extra_and_an_untraced_stage(tmp_path):
    root = tmp_path
    (root / "pipeline").mkdir()

    class Dep:
        def __init__(self, path):
            self.fs_path = str(root / path)

    class Stage:
        def __init__(self, name, cmd, deps):
            self.addressing, self.cmd, self.deps = name, cmd, [Dep(d) for d in deps]

    stages = [Stage("a", "python -m pipeline a", ["pipeline/a.py", "pipeline/b.py", "data/x.csv"]),
              Stage("b", "python -m pipeline b", ["pipeline/b.py"])]
    traces = [{"argv": ["python", "-m", "pipeline", "a"], "modules": [str(root / "pipeline/a.py"),
                                                                       str(root / "pipeline/config.py")]},
              {"argv": ["python", "-m", "pipeline", "c"], "modules": [str(root / "pipeline/c.py")]}]
    problems, rows = check(stages, traces, root)
    assert problems == ["a: imports pipeline/config.py, not in its deps",
                        "a: lists pipeline/b.py, never imported",
                        "b: never traced (no process ran `python -m pipeline b`; is it cached, or not a Python process?)",
                        "a process matching no stage's cmd ran project code: python -m pipeline c"]
    assert rows == [("a", "pipeline/a.py, pipeline/config.py", "no")]
