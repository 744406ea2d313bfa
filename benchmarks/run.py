"""One command for every figure in benchmarks/README.md:
python -m benchmarks.run [--quick] [--only study|datasets|whole] [--study SEEDSxSPLITS]

Each row: our figure, the baseline's, their ratio, as medians of several runs measured in this
one invocation. Writes the table between the markers in benchmarks/README.md and prints it
(not with --quick, --only or --study, which measure part of it or another study).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BIN = Path(PY).parent
SEED_VARIANTS = ("l1", "mse", "nll_relu", "nll_logsoftmax", "cross_entropy", "kldiv_relu", "kldiv_logsoftmax")
STAGE_IMPORTS = {  # what each stage's process imports: its floor
    "fetch titanic": ["pipeline.data.fetch"],
    "preprocess titanic": ["pipeline.data.preprocess", "pandas", "sklearn.model_selection"],
    "train titanic l1": ["pipeline.study.train", "tqdm"],
    "plot titanic": ["pipeline.study.plots", "matplotlib.pyplot"],
    "fetch-iris": ["pipeline.iris.fetch", "sklearn.datasets"],
    "preprocess-iris": ["pipeline.iris.preprocess", "sklearn.model_selection"],
    "sweep-alpha": ["pipeline.iris.sweep", "sklearn.neural_network", "matplotlib.pyplot", "PIL.Image"],
    "report titanic": ["pipeline.reports.dataset", "matplotlib.pyplot"],
    "publish": ["pipeline.tracking.publish", "mlflow", "mlflow.pytorch", "pipeline.tracking.variant_runs", "torch"],
}


def env(**extra) -> dict:
    out = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT), **extra}
    out.pop("MLFLOW_TRACKING_URI", None)
    out.update(extra)
    return out


def timed(command: list[str], cwd: Path, **extra) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env(**extra), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"benchmark: {' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def median(fn, n: int) -> float:
    return statistics.median(fn() for _ in range(n))


TITANIC_CSV = ROOT / "data" / "shipped" / "titanic.csv"  # the notebook's file, as the pipeline reads it offline


def project_copy(where: Path, variants=SEED_VARIANTS, seeds: int = 1, splits: int = 1, name: str = "repo",
                 tuning: bool = False) -> Path:
    """A git + DVC copy of the project (by default the seed's seven variants, one replica each), offline."""
    repo = where / name
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    for code in ("pipeline", "losses"):
        shutil.copytree(ROOT / code, repo / code, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data" / "shipped", repo / "data" / "shipped")
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, repo / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if variants is not None:
        params["variants"] = {k: v for k, v in params["variants"].items() if k in variants}
        params["report"]["compare"] = [v for v in params["report"]["compare"] if v in variants]
    params["study"].update(seeds=seeds, splits=splits)
    params["tuning"]["enabled"] = tuning  # the tuned study only where a row measures it
    # Refused at once, so the shipped copy is used: the address it stands for.
    shipped = json.loads((ROOT / "data" / "shipped" / "titanic.json").read_text())
    params["datasets"]["titanic"]["source"]["url"] = "http://127.0.0.1:9/titanic.csv"
    shipped["url"] = params["datasets"]["titanic"]["source"]["url"]
    (repo / "data" / "shipped" / "titanic.json").write_text(json.dumps(shipped))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                    ["git", "add", "-A"], ["git", "-c", "user.email=b@localhost", "-c", "user.name=b", "commit",
                                           "-qm", "bench"]):
        subprocess.run(command, cwd=repo, env=env(), check=True, capture_output=True)
    return repo


def seed_tracked(tmp: Path) -> float:
    """The seed's script with MLflow as its documentation shows, into a fresh store."""
    work = tmp / "tracked"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    return timed([PY, "-m", "benchmarks.seed_style", str(TITANIC_CSV), "--track", f"sqlite:///{work / 'mlflow.db'}"],
                 work)


def cold_pipeline(tmp: Path, n: int) -> tuple[float, float, float]:
    def ours():
        repo = project_copy(tmp)
        return timed(["dvc", "repro"], repo)

    def untracked():
        work = tmp / "untracked"
        work.mkdir(exist_ok=True)
        return timed([PY, "-m", "benchmarks.seed_style", str(TITANIC_CSV)], work)

    return median(ours, n), median(lambda: seed_tracked(tmp), n), median(untracked, n)


def whole_study(tmp: Path, n: int, seeds: int, splits: int) -> list[str]:
    """The default study from cold (every dataset and variant, the sweep, the reports, publishing
    into a fresh store), without and with the tuned study, against the seed's script doing its
    seven trainings with MLflow as its documentation shows: the issue's two ratios, in one run."""
    def cold(tuning: bool) -> float:
        repo = project_copy(tmp, variants=None, seeds=seeds, splits=splits, name="whole", tuning=tuning)
        return timed(["dvc", "repro"], repo, MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'mlflow.db'}")

    seed = median(lambda: seed_tracked(tmp), n)
    fixed = median(lambda: cold(False), n)
    tuned = median(lambda: cold(True), n)
    return [row(f"cold `dvc repro`, the whole default study ({seeds} x {splits} replicas, tuning off) vs the seed "
                f"script's 7 trainings with MLflow as documented", fixed, seed, 3),
            row("cold `dvc repro`, the default study with its tuned study vs without (tuning on vs off)",
                tuned, fixed, 3)]


def stages(repo: Path, n: int) -> list[tuple[str, float, float]]:
    store = repo / "bench-publish.db"

    def run(stage: str) -> float:
        store.unlink(missing_ok=True)  # publish logs every run, as in a cold pipeline
        shutil.rmtree(repo / "mlartifacts", ignore_errors=True)
        return timed([PY, "-m", "pipeline", *stage.split()], repo, MLFLOW_TRACKING_URI=f"sqlite:///{store}")

    rows = []
    for stage, modules in STAGE_IMPORTS.items():
        wall = median(lambda: run(stage), n)
        floor = median(lambda: timed([PY, "-c", "; ".join(f"import {m}" for m in modules)], repo), n)
        rows.append((stage, wall, floor))
    return rows


LOOP = r'''
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
from pipeline.core import config
from pipeline.core.catalog import DatasetFiles
from pipeline.study import train
from pipeline.data.preprocess import load_prepared
from pipeline.data.splits import replicas, split_arrays
from benchmarks.seed_style import SimpleMLP, SimpleMLPTrainer
from torch.utils.data import DataLoader, TensorDataset
dataset = sys.argv[4]
params = config.load(); prepared = load_prepared(dataset); data = split_arrays(prepared, 0)
classes = len(json.loads(DatasetFiles(dataset).meta.read_text())["classes"])
variant = params.variant("cross_entropy")
count = int(sys.argv[3])  # replicas trained together
steps = variant.training.epochs * -(-len(data["y_train"]) // 32)
layout = replicas(params.seed, count, 1)
torch.set_num_threads(1)
train.train(variant, layout, prepared, progress=False, classes=classes)  # warm-up: one-time costs are not steps
start = time.perf_counter(); train.train(variant, layout, prepared, progress=False, classes=classes)
ours = count * steps / (time.perf_counter() - start)
torch.set_num_threads(int(sys.argv[2]))  # torch's default, as the seed ran
x, y = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
torch.manual_seed(params.seed)
model = SimpleMLP(x.shape[1], 64, classes, 2, last_layer_activation_fn=None)
trainer = SimpleMLPTrainer(model, torch.nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=0.001))
loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    trainer.train(loader, 2)  # warm-up, likewise
    start = time.perf_counter()
    trainer.train(loader, variant.training.epochs)
seed = steps / (time.perf_counter() - start)
print(json.dumps({"ours": ours, "seed": seed}))
'''


def loop(repo: Path, n: int, busy: bool, count: int = 1, dataset: str = "titanic") -> tuple[float, float]:
    """Steps per second on `dataset`: ours with `count` replicas at once (replica-steps), the seed's one model."""
    import torch

    hog = subprocess.Popen([PY, "-c", "while True: pass"]) if busy else None
    try:
        results = []
        for _ in range(n):
            out = subprocess.run([PY, "-c", LOOP, str(ROOT), str(torch.get_num_threads()), str(count), dataset],
                                 cwd=repo, env=env(), capture_output=True, text=True, check=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
        return statistics.median(r["ours"] for r in results), statistics.median(r["seed"] for r in results)
    finally:
        if hog:
            hog.kill()


SCALE = r'''
import json, resource, sys, time, numpy as np, torch
sys.path.insert(0, sys.argv[1])
from pipeline.core import config
from pipeline.study import train
from pipeline.data.preprocess import load_prepared
from pipeline.data.splits import replicas
torch.set_num_threads(1)
params = config.load(); data = load_prepared("titanic"); k = int(sys.argv[2])
# k times the rows: the split indices point into k copies of the data.
rows = len(data["y"])
data["train_index"] = np.concatenate([data["train_index"] + i * rows for i in range(k)], axis=1)
data["val_index"] = np.concatenate([data["val_index"] + i * rows for i in range(k)], axis=1)
data["x"] = np.tile(data["x"], (k, 1)); data["y"] = np.tile(data["y"], k)
variant = params.variant("cross_entropy")
from dataclasses import replace
variant = replace(variant, training=replace(variant.training, epochs=3))
layout = replicas(params.seed, 1, 1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
train.train(replace(variant, training=replace(variant.training, epochs=1)), layout, data, progress=False)  # warm-up
start = time.perf_counter(); train.train(variant, layout, data, progress=False)
per_epoch = (time.perf_counter() - start) / 3
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": data["train_index"].shape[1], "per_epoch": per_epoch, "before_mib": before / 1024,
                  "peak_mib": peak / 1024, "data_mib": (data["x"].nbytes + data["y"].nbytes) / 2**20}))
'''


def scaling(repo: Path) -> list[dict]:
    return [json.loads(subprocess.run([PY, "-c", SCALE, str(ROOT), str(k)], cwd=repo, env=env(), capture_output=True,
                                      text=True, check=True).stdout.strip().splitlines()[-1]) for k in (1, 10, 100)]


def publishing(repo: Path, n: int) -> tuple[float, int, str]:
    def once():
        store = repo / "bench-publish.db"
        store.unlink(missing_ok=True)
        shutil.rmtree(repo / "mlartifacts", ignore_errors=True)
        return timed([PY, "-m", "pipeline", "publish"], repo, MLFLOW_TRACKING_URI=f"sqlite:///{store}")
    total = median(once, n)
    runs = len(SEED_VARIANTS) + 2  # the variants, the report, the sweep parent (its children are light)
    profile = repo / "publish.prof"
    (repo / "bench-publish.db").unlink(missing_ok=True)
    timed([PY, "-m", "cProfile", "-o", str(profile), "-m", "pipeline", "publish"], repo,
          MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'bench-publish.db'}")
    import pstats

    stats = pstats.Stats(str(profile)).stats
    def cumulative(name):
        return sum(v[3] for (file, _, func), v in stats.items() if func == name and "mlflow" in file)
    parts = {"log_model": cumulative("log_model"), "log_artifacts": cumulative("log_artifacts"),
             "log_batch": cumulative("log_batch"), "search_runs": cumulative("search_runs"),
             "create_run": cumulative("create_run")}
    importing = sum(v[3] for (file, _, func), v in stats.items() if func == "<module>" and file.endswith(
        "mlflow/__init__.py"))
    parts["import mlflow"] = importing
    split = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
    return total, runs, split


STUDY = r'''
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
from pipeline.core import config
from pipeline.study import train
from pipeline.data.preprocess import load_prepared
from pipeline.data.splits import replicas
params = config.load(); data = load_prepared("titanic"); study = params.study
layout = replicas(params.seed, study.seeds, study.splits)
torch.set_num_threads(1)
train.train(params.variant("cross_entropy"), layout, data, progress=False)  # warm-up
start = time.perf_counter()
for variant in params.variants.values():
    train.train(variant, layout, data, progress=False)
print(json.dumps({"seconds": time.perf_counter() - start, "trainings": len(params.variants) * len(layout)}))
'''

# The seed notebook's way, for the same trainings: its SimpleMLP and trainer (DataLoader, torch's
# default threads, .item() each step, a print per epoch), one replica after the other.
SEED_STUDY = r'''
import contextlib, io, json, sys, time, torch
sys.path.insert(0, sys.argv[1])
from torch.utils.data import DataLoader, TensorDataset
from benchmarks.seed_style import SimpleMLP, SimpleMLPTrainer
from pipeline.core import config
from pipeline.study.losses import encode_targets, make_activation, make_loss
from pipeline.study.model import weight_penalty
from pipeline.data.preprocess import load_prepared
from pipeline.data.splits import replicas, split_arrays
params = config.load(); data = load_prepared("titanic"); study = params.study
start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    for variant in params.variants.values():
        t, reg = variant.training, variant.training.regularization
        for seed, k in replicas(params.seed, study.seeds, study.splits):
            split = split_arrays(data, k, t.standardize)
            def loader(part, shuffle):
                y = encode_targets(torch.from_numpy(split[f"y_{part}"]), variant.target_encoding)
                return DataLoader(TensorDataset(torch.from_numpy(split[f"x_{part}"]), y), batch_size=32, shuffle=shuffle)
            torch.manual_seed(seed)
            activation = None if variant.last_activation == "none" else (lambda: make_activation(variant.last_activation))
            model = SimpleMLP(4, t.hidden_size, variant.outputs, t.hidden_layers, last_layer_activation_fn=activation)
            loss = make_loss(variant.loss)
            def criterion(outputs, targets):
                value = loss(outputs, targets)
                if reg.penalty != "none":
                    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
                    value = value + weight_penalty(weights, reg.penalty, reg.strength, reg.l1_ratio)
                return value
            trainer = SimpleMLPTrainer(model, criterion, torch.optim.Adam(model.parameters(), lr=t.lr))
            trainer.train(loader("train", True), t.epochs)
            trainer.evaluate(loader("val", False))
print(json.dumps({"seconds": time.perf_counter() - start}))
'''

# What every replica would cost as an MLflow child run (the layout not chosen): one child per
# replica under its variant's run, tagged variant, seed and split, its per-epoch history as metrics.
CHILDREN = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from pipeline.core import config
from pipeline.core.record import read_replicas
client = MlflowClient(sys.argv[2])
experiment = client.get_experiment_by_name("titanic-loss-functions").experiment_id
parents = {r.data.tags["variant"]: r.info.run_id
           for r in client.search_runs([experiment], "tags.`pipeline.stage` LIKE 'train@%'")}
start = time.perf_counter(); count = 0
for name in config.load().variants:
    runs = read_replicas(name, "titanic")
    for r, (seed, split) in enumerate(zip(runs["seed"], runs["split"])):
        child = client.create_run(experiment, run_name=f"{name} seed {seed} split {split}", tags={
            "mlflow.parentRunId": parents[name], "variant": name, "seed": str(seed), "split": str(split)})
        metrics = [Metric(key.replace("_", "/", 1), float(value), 0, epoch + 1)
                   for key in ("train_loss", "val_loss", "val_accuracy") for epoch, value in enumerate(runs[key][r])]
        client.log_batch(child.info.run_id, metrics=metrics, params=[Param("seed", str(seed)), Param("split", str(split))])
        client.set_terminated(child.info.run_id, "FINISHED")
        count += 1
print(json.dumps({"seconds": time.perf_counter() - start, "runs": count}))
'''

MEMORY = r'''
import resource, subprocess, sys
subprocess.run([sys.executable, "-m", "pipeline", "train", sys.argv[1], "cross_entropy"], check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
'''


def peak_rss(repo: Path, n: int, dataset: str = "titanic") -> float:
    """MiB: the largest resident set of a `train <dataset> cross_entropy` process (its parent's getrusage)."""
    return median(lambda: float(subprocess.run([PY, "-c", MEMORY, dataset], cwd=repo, env=env(), capture_output=True,
                                               text=True, check=True).stdout), n)


def script(code: str, cwd: Path, *args: str) -> dict:
    out = subprocess.run([PY, "-c", code, str(ROOT), *args], cwd=cwd, env=env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"benchmark script failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def study_rows(tmp: Path, n: int, seeds: int, splits: int) -> list[str]:
    """The replicated study: what its replicas a variant cost against one, and against the seed's way."""
    lines = []
    full = {"variants": None, "seeds": seeds, "splits": splits}  # every variant, the study measured
    single = {**full, "seeds": 1, "splits": 1}
    count = seeds * splits

    def cold(settings, name):
        def once():
            return timed(["dvc", "repro"], project_copy(tmp, **settings, name=name))
        return median(once, n)

    replicated, alone = cold(full, "study"), cold(single, "single")
    variants = len(yaml.safe_load((ROOT / "params.yaml").read_text())["variants"])
    lines.append(row(f"cold `dvc repro`, {variants} variants x {count} replicas vs x 1 (sweep, report, publish "
                     f"included)", replicated, alone, 2))
    study, lone = tmp / "study", tmp / "single"
    mine, seed = loop(study, n, busy=False, count=count)
    lines.append(row(f"training, replica-steps/s: {count} replicas batched vs the seed's one-model loop", mine, seed,
                     10, unit="steps/s", better="higher"))
    ours = median(lambda: script(STUDY, study)["seconds"], n)
    theirs = median(lambda: script(SEED_STUDY, study)["seconds"], n)
    trainings = variants * count
    lines.append(row(f"the whole study's training ({trainings} trainings) in one process vs the seed's loop "
                     f"doing them one by one", ours, theirs, 0.1))
    stages = median(lambda: sum(timed([PY, "-m", "pipeline", "train", "titanic", name], study)
                                for name in yaml.safe_load((study / "params.yaml").read_text())["variants"]), n)
    lines.append(row(f"the {variants} `train@` stages as DVC runs them (a process each) vs the seed's loop",
                     stages, theirs))
    lines.append(row(f"peak RSS of `train cross_entropy`, {count} replicas vs 1", peak_rss(study, n),
                     peak_rss(lone, n), 1.5, unit="MiB"))

    def publish_fresh(repo):
        store = repo / "bench-publish.db"
        store.unlink(missing_ok=True)
        shutil.rmtree(repo / "mlartifacts", ignore_errors=True)
        return timed([PY, "-m", "pipeline", "publish"], repo, MLFLOW_TRACKING_URI=f"sqlite:///{store}")

    table = median(lambda: publish_fresh(study), n)
    one = median(lambda: publish_fresh(lone), n)
    lines.append(row(f"publish into a fresh SQLite store, {count} replicas (as a table artifact) vs 1", table, one))
    children = []
    for _ in range(n):
        publish_fresh(study)
        children.append(script(CHILDREN, study, f"sqlite:///{study / 'bench-publish.db'}"))
    extra = statistics.median(c["seconds"] for c in children)
    lines.append(f"| the replicas as MLflow child runs instead ({children[0]['runs']} runs), on top of that publish "
                 f"| {extra:.2f} s | {table:.2f} s | {(table + extra) / table:.2f}x | (not chosen) |")
    return lines


# Every dataset x every variant (a train@<dataset> stage each). The repro's target, report, brings in
# every dataset's fetch, preprocess and train, and, as it reads all of results/, the Iris sweep's
# stages too: every stage but publish (it logs to MLflow, measured in the seed's rows).
DATASET_TARGETS = ("report",)
EDIT = ("mse", "lr", 0.002)  # one variant's edit: twice the shared lr, so its trainings take as long as before

# Trainings in this one process through the train stage's own function (training, record, outputs):
# the stages' work without a process and DVC around each. The datasets named, else every one.
IN_PROCESS = r'''
import json, sys, time
from pipeline.core import config
from pipeline.study import train
params = config.load()
start = time.perf_counter()
for dataset in sys.argv[2:] or params.datasets:
    for variant in params.variants:
        train.main(dataset, variant)
print(json.dumps({"seconds": time.perf_counter() - start}))
'''


def repro_stages(repo: Path) -> tuple[float, dict[str, float]]:
    """`dvc repro` of DATASET_TARGETS: its wall time, and the seconds of each stage that ran, from
    DVC's "Running stage" line to the next one's (its process and DVC's bookkeeping around it)."""
    command = ["dvc", "repro", *DATASET_TARGETS]
    marks, tail = [], collections.deque(maxlen=40)
    start = time.perf_counter()
    # Unbuffered, so each line arrives when DVC writes it and its moment is the stage's start.
    with subprocess.Popen(command, cwd=repo, env=env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            tail.append(line)
            running = re.match(r"Running stage '([^']+)'", line)
            if running:
                marks.append((running.group(1), time.perf_counter()))
    end = time.perf_counter()
    if process.returncode != 0:
        raise SystemExit(f"benchmark: {' '.join(command)} failed:\n{''.join(tail)}")
    ends = [at for _, at in marks[1:]] + [end]
    return end - start, {name: stop - at for (name, at), stop in zip(marks, ends)}


def edited_repro(repo: Path) -> tuple[float, dict[str, float]]:
    """repro_stages after EDIT in the copy's params.yaml, which is then put back as it was."""
    path = repo / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    variant, key, value = EDIT
    params["variants"][variant][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        return repro_stages(repo)
    finally:
        path.write_text(original)


def by_kind(stages: dict[str, float]) -> dict[str, list[float]]:
    """Stage seconds by what the stage is: train@titanic-l1 -> train@, across -> across."""
    out: dict[str, list[float]] = {}
    for stage, seconds in stages.items():
        out.setdefault(stage.split("@")[0] + "@" if "@" in stage else stage, []).append(seconds)
    return out


def kind_median(runs: list[tuple[float, dict[str, float]]], kind: str) -> float:
    """The median over runs of the seconds that stages of `kind` took in each."""
    return statistics.median(sum(by_kind(stages).get(kind, [])) for _, stages in runs)


def repro_rows(cold: list, edited: list, floor: float, cells: int) -> list[str]:
    """The cold repro against its floor, where its time goes, and what one variant's edit re-runs."""
    wall = statistics.median(w for w, _ in cold)
    targets = " ".join(DATASET_TARGETS)
    lines = [row(f"cold `dvc repro {targets}` (every stage but publish) vs its {cells} trainings in one process",
                 wall, floor, 1.5)]
    kinds = by_kind(cold[0][1])
    split = ", ".join(f"{k} x{len(v)} {kind_median(cold, k):.0f} s"
                      for k, v in sorted(kinds.items(), key=lambda kv: -kind_median(cold, kv[0])))
    lines.append(f"| the cold repro's wall time | {wall:.0f} s ({wall / 60:.1f} min) | - | - | time goes to: {split} |")
    variant, key, value = EDIT
    ran = by_kind(edited[0][1])
    lines.append(row(f"`variants.{variant}.{key}: {value}`, then `dvc repro {targets}` vs the cold run: "
                     f"{len(edited[0][1])} stages re-ran ({', '.join(f'{len(v)} {k}' for k, v in ran.items())})",
                     statistics.median(w for w, _ in edited), wall, 0.25))
    return lines


def layout_rows(cold: list, edited: list, floor: float, datasets: int, variants: int) -> list[str]:
    """The train@<dataset> stages, cold against the same trainings in one process, and after one
    variant's edit (each stage re-trains that variant alone) against cold."""
    cold_train = kind_median(cold, "train@")
    return [row(f"stage layout, cold training: the {datasets} train@ stages ({datasets * variants} trainings) vs "
                f"the same in one process", cold_train, floor),
            row(f"stage layout, what one variant's edit re-runs: the {datasets} train@ stages ({datasets} trainings, "
                f"{datasets * (variants - 1)} kept) vs cold", kind_median(edited, "train@"), cold_train)]


def datasets_rows(tmp: Path, n: int, seeds: int, splits: int) -> list[str]:
    """Every dataset x every variant: the cold repro against its in-process floor, one variant's edit,
    the batched loop and the memory on each dataset, and what the stage layout trades."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    datasets, variants, count = list(params["datasets"]), list(params["variants"]), seeds * splits
    lines = [f"| *every dataset x every variant ({len(datasets)} x {len(variants)}), {seeds} x {splits} "
             f"replicas:* | | | | |"]
    cold, edited = [], []
    for _ in range(n):  # each edit on the copy its cold run has just reproduced
        repo = project_copy(tmp, variants=None, seeds=seeds, splits=splits, name="datasets")
        cold.append(repro_stages(repo))
        edited.append(edited_repro(repo))
    floor = median(lambda: script(IN_PROCESS, repo)["seconds"], n)
    lines += repro_rows(cold, edited, floor, len(datasets) * len(variants))
    for dataset in datasets:
        mine, seed = loop(repo, n, busy=False, count=count, dataset=dataset)
        lines.append(row(f"{dataset}: replica-steps/s, {count} replicas of cross_entropy batched vs the seed's "
                         f"one-model loop", mine, seed, 10, unit="steps/s", better="higher"))
    lone = project_copy(tmp, variants=None, seeds=1, splits=1, name="datasets-single")
    timed(["dvc", "repro", "preprocess"], lone)
    for dataset in datasets:
        lines.append(row(f"{dataset}: peak RSS of `train {dataset} cross_entropy`, {count} replicas vs 1",
                         peak_rss(repo, n, dataset), peak_rss(lone, n, dataset), 1.5, unit="MiB"))
    return lines + layout_rows(cold, edited, floor, len(datasets), len(variants))


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {cpu}, load average {load} at start; Python {platform.python_version()}"


def row(name, ours, base, target=None, unit="s", better="lower"):
    ratio = ours / base if base else float("nan")
    met = ""
    if target is not None:
        ok = ratio <= target if better == "lower" else ratio >= target
        met = f"{'met' if ok else 'MISSED'} ({'<=' if better == 'lower' else '>='} {target}x)"
    return f"| {name} | {ours:.2f} {unit} | {base:.2f} {unit} | {ratio:.2f}x | {met} |"


def study_size(text: str) -> tuple[int, int]:
    """'5x20' -> (5, 20): seeds on each of so many splits."""
    seeds, _, splits = text.partition("x")
    return int(seeds), int(splits)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one run each instead of medians (a smoke test)")
    parser.add_argument("--only", choices=("study", "datasets", "whole"),
                        help="only the replicated study's rows, only every dataset x every variant's, or only "
                             "the whole default study's against the seed script (tuning off and on)")
    parser.add_argument("--study", type=study_size, metavar="SEEDSxSPLITS",
                        help="the study measured, e.g. 1x1 to try the rows out (default: params.yaml's)")
    args = parser.parse_args(argv)
    n = 1 if args.quick else 3
    default = yaml.safe_load((ROOT / "params.yaml").read_text())["study"]
    seeds, splits = args.study or (default["seeds"], default["splits"])
    started = machine()
    lines = ["| measure | ours | baseline | ratio | target |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.only in (None, "whole"):
            lines += whole_study(tmp, n, seeds, splits)
        if args.only in (None, "study"):
            lines += study_rows(tmp, n, seeds, splits)
        if args.only in (None, "datasets"):
            lines += datasets_rows(tmp, n, seeds, splits)
        if args.only:
            print("\n".join(lines))
            return
        lines.append("| *the seed's seven variants, one replica each (the seed's own work):* | | | | |")
        ours, tracked, untracked = cold_pipeline(tmp, n)
        lines.append(row("cold `dvc repro` (7 seed variants + sweep + report + publish) vs seed script with "
                         "MLflow as documented", ours, tracked, 0.75))
        lines.append(row("cold `dvc repro` vs the seed script without tracking", ours, untracked))
        repo = project_copy(tmp)
        timed(["dvc", "repro"], repo)
        noop = median(lambda: timed(["dvc", "repro"], repo), 5)
        lines.append(f"| no-op `dvc repro` | {noop:.2f} s | - | - | {'met' if noop <= 2 else 'MISSED'} (<= 2 s) |")
        for stage, wall, floor in stages(repo, n):
            lines.append(row(f"stage `{stage}`: wall vs its imports' floor", wall, floor, 1.3))
        sweep = median(lambda: timed([PY, "-m", "pipeline", "sweep-alpha"], repo), n)
        seed_sweep = median(lambda: timed([PY, "-m", "benchmarks.seed_style", str(TITANIC_CSV), "--only", "iris"],
                                          tmp), n)
        lines.append(row("alpha sweep process vs the seed's sequential loop", sweep, seed_sweep, 0.5))
        for busy in (False, True):
            mine, seed = loop(repo, n, busy)
            lines.append(row(f"training loop, steps/s ({'other core busy' if busy else 'idle'})", mine, seed,
                             5 if busy else 2, unit="steps/s", better="higher"))
        total, runs, split = publishing(repo, n)
        lines.append(f"| publish into a fresh SQLite store | {total:.2f} s ({total / runs:.2f} s a run, {runs} runs) "
                     f"| - | - | time goes to: {split} |")
        for factor, s in zip((1, 10, 100), scaling(repo)):
            lines.append(f"| one variant, training set x{factor} ({s['rows']} rows) | {s['per_epoch']:.3f} s"
                         f" an epoch | - | - | peak RSS {s['peak_mib']:.0f} MiB (before training "
                         f"{s['before_mib']:.0f} MiB, data {s['data_mib']:.1f} MiB) |")
    table = "\n".join(lines)
    stamp = f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {started}; medians of {n} runs."
    print(stamp)
    print(table)
    readme = ROOT / "benchmarks" / "README.md"
    text = readme.read_text()
    begin, end = "<!-- table:begin -->", "<!-- table:end -->"
    if begin in text and end in text and not args.quick and not args.only and not args.study:
        readme.write_text(text[:text.index(begin) + len(begin)] + f"\n{stamp}\n\n{table}\n" + text[text.index(end):])


if __name__ == "__main__":
    main()
