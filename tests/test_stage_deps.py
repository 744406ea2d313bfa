"""Every stage's `deps` list every project module its process imports, and no more.

The modules come from the real processes: the session's template study (conftest.py) runs its
`dvc repro` with a `sitecustomize.py` on PYTHONPATH (Python imports it at start-up, DVC passes the
environment to each stage), whose exit hook writes the process's command line and the files of
every module it loaded from the copy's `pipeline/` package. Each process is matched to its stage
by its command; the deps are read as DVC reads them. A module imported but not listed means an
edit to it re-runs nothing (stale results reported up to date); a `.py` listed but never
imported re-runs a stage for nothing.
"""
import os
import shlex
from pathlib import Path

import pytest
from dvc.repo import Repo

pytestmark = pytest.mark.slow


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


def test_every_stage_depends_on_the_modules_it_imports_and_no_more(study_template, monkeypatch):
    """The session's template study ran its `dvc repro` with conftest's TRACER on PYTHONPATH."""
    repo, traces = study_template.repo, study_template.traces
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


def test_the_train_stages_depend_on_the_losses_folder_a_variant_may_name():
    """A loss of your own (`loss: losses.<module>:<Name>`) runs in train@'s process from outside
    pipeline/, where the test above does not look: each train stage lists the folder itself."""
    from pipeline.core.vocabulary import USER_LOSSES

    from .conftest import ROOT

    with Repo(str(ROOT)) as dvc:
        train = [stage for stage in dvc.index.stages if stage.addressing.startswith("train@")]
        assert train and all(any(Path(dep.fs_path) == ROOT / USER_LOSSES for dep in stage.deps) for stage in train)


def test_the_benchmarks_stages_depend_on_the_code_of_their_twins_in_the_default_study():
    """keel/dvc.yaml runs ../dvc.yaml's commands from its own folder (PYTHONPATH=..): each stage's
    code deps are its twin's, each path from ../ (the test above traces the twins' processes)."""
    import yaml

    from .conftest import ROOT

    def stages(path):
        return {name: stage.get("do", stage) for name, stage in yaml.safe_load(path.read_text())["stages"].items()}

    def code(deps, prefix=""):
        return [dep[len(prefix):] for dep in deps if dep.startswith(prefix)
                and dep[len(prefix):].split("/")[0] in ("pipeline", "losses")]

    default, benchmark = stages(ROOT / "dvc.yaml"), stages(ROOT / "keel" / "dvc.yaml")
    assert set(benchmark) == {"fetch", "preprocess", "train", "report", "publish"}
    # Its publish names what it logs: the benchmark has no alpha sweep.
    named = {"publish": " report across"}
    for name, stage in benchmark.items():
        assert stage["cmd"] == f"PYTHONPATH=.. {default[name]['cmd']}{named.get(name, '')}", name
        assert code(stage["deps"], "../") == code(default[name]["deps"]), name
        assert not [dep for dep in stage["deps"] if dep.split("/")[0] in ("pipeline", "losses")], name
