"""Stage train@<variant>: one loss variant, every replica of the study, written to disk.

The study's seeds x splits replicas train together as one batched computation (model.py).
Knows nothing of MLflow, plotting or statistics (the publish, plot and report stages read what
it writes), so a training process imports only torch, numpy and tqdm.
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import atomic, config
from ..errors import PipelineError
from ..paths import HISTORY, METRICS, RESULTS, RUN_TIMES
from ..paths import TITANIC_META as META
from .diagnosis import NON_FINITE, describe, diagnose, distribution
from .losses import LOSSES, encode_targets, mismatch, predict, replica_loss
from .model import build_mlp, layer_sizes, stack, stacked_forward, unstack, weight_penalty
from .preprocess import load_prepared
from .splits import Replica, replicas, split_arrays


def _skip_dynamo_import() -> None:
    """torch.optim marks a few Optimizer methods "never compile" through a wrapper whose first
    call imports torch._dynamo: 1.4 s and 800 modules in every training process, more than the
    training itself. Nothing here compiles, so give each wrapper the answer it would cache
    (the plain method) before the first call."""
    import torch._compile

    inner = torch._compile._disable_dynamo(lambda: None).__code__
    for attr in vars(torch.optim.Optimizer).values():
        if getattr(attr, "__code__", None) is inner and hasattr(attr, "__wrapped__"):
            setattr(attr.__wrapped__, "__dynamo_disable", attr.__wrapped__)


def _plain_step(optimizer):
    """optimizer.step without its compile-time wrapper, which imports torch._dynamo for two
    graph breaks; what the wrapper does besides (no grad during the update) is done here."""
    import inspect

    step = inspect.unwrap(type(optimizer).step)  # under the hooks' wrapper and the compile one
    if step is type(optimizer).step:
        return optimizer.step

    def plain():
        with torch.no_grad():
            step(optimizer)

    return plain


def _optimizer(name: str, parameters, lr: float):
    if name == "adam":
        # The fused CPU kernel: the same Adam, one call per step instead of a loop of small
        # tensor ops (about 1.4x the steps per second here, same numbers).
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    return torch.optim.SGD(parameters, lr=lr)


@dataclass
class Trained:
    """Every replica's per-epoch history, shaped (replicas, epochs), and what the stage keeps."""
    replicas: list[Replica]
    train_loss: np.ndarray
    train_penalty: np.ndarray
    val_loss: np.ndarray
    val_accuracy: np.ndarray
    confusion: np.ndarray              # (replicas, actual, predicted) after the last epoch
    non_finite_epoch: np.ndarray       # first epoch with a non-finite loss, 0 for none
    canonical: dict                    # replica 0's state dict: the model that is logged
    epoch_ms: list[int] = field(default_factory=list)  # wall clock at each epoch's end (for MLflow only)

    def history(self, r: int) -> list[dict]:
        return [{"epoch": e + 1, "train_loss": float(self.train_loss[r, e]),
                 "train_penalty": float(self.train_penalty[r, e]), "val_loss": float(self.val_loss[r, e]),
                 "val_accuracy": float(self.val_accuracy[r, e])} for e in range(self.train_loss.shape[1])]


def _stacked_split(prepared: dict, replicas: list[Replica], standardize: bool, encoding: str):
    """Each replica's own split as tensors with a leading replica axis."""
    arrays = {k: split_arrays(prepared, k, standardize) for k in sorted({r.split for r in replicas})}

    def stacked(key):
        return torch.from_numpy(np.stack([arrays[r.split][key] for r in replicas]))

    labels_train, labels_val = stacked("y_train"), stacked("y_val")
    return (stacked("x_train"), encode_targets(labels_train, encoding), stacked("x_val"),
            encode_targets(labels_val, encoding), labels_val)


def train(variant: config.Variant, replicas: list[Replica], prepared: dict, progress: bool | None = None) -> Trained:
    """Train every replica of one variant as one batched computation.

    Each replica starts from what nn.Linear gives under its own seed, shuffles with its own
    generator (seeded alike) and trains on its own split. Their losses are summed, not averaged:
    the gradient of a sum reaches each replica's parameters as that replica's own gradient, and
    Adam works elementwise, so each replica takes the steps it would take alone.
    """
    from tqdm import tqdm

    t = variant.training
    count = len(replicas)
    x_train, y_train, x_val, y_val, labels_val = _stacked_split(prepared, replicas, t.standardize,
                                                                variant.target_encoding)
    seeds = list(dict.fromkeys(r.seed for r in replicas))
    models = {}
    for seed in seeds:
        torch.manual_seed(seed)
        models[seed] = build_mlp(x_train.shape[2], t.hidden_size, t.hidden_layers, variant.outputs,
                                 variant.last_activation)
    template = models[replicas[0].seed]
    params = stack([models[r.seed] for r in replicas])
    weights = [value for name, value in params.items() if name.endswith("weight")]
    loss_fn = replica_loss(variant.loss)
    _skip_dynamo_import()
    optimizer = _optimizer(t.optimizer, list(params.values()), t.lr)
    step = _plain_step(optimizer)
    reg = t.regularization
    penalized = reg.penalty != "none" and reg.strength > 0
    shufflers = [torch.Generator().manual_seed(seed) for seed in seeds]
    seed_row = torch.tensor([seeds.index(r.seed) for r in replicas])
    rows = torch.arange(count).unsqueeze(1)
    n = x_train.shape[1]
    starts = range(0, n, t.batch_size)
    shape = (count, t.epochs)
    history = {key: np.full(shape, np.nan) for key in ("train_loss", "train_penalty", "val_loss", "val_accuracy")}
    non_finite = np.zeros(count, dtype=np.int64)
    epoch_ms = []
    # disable=None: a bar on a terminal, silent in logs and under DVC's captured output.
    for epoch in tqdm(range(1, t.epochs + 1), desc=f"{variant.name} ({count} replicas)", leave=False,
                      disable=None if progress is None else not progress):
        if t.shuffle:  # one permutation per seed, as each replica would draw alone
            order = torch.stack([torch.randperm(n, generator=g) for g in shufflers])[seed_row]
        else:
            order = torch.arange(n).expand(count, n)
        # One gather an epoch; each batch is then a view, not a copy.
        xs, ys = x_train[rows, order], y_train[rows, order]
        total = torch.zeros(count)
        penalty_total = torch.zeros(count)
        for start in starts:
            end = start + t.batch_size
            losses = loss_fn(stacked_forward(template, params, xs[:, start:end]), ys[:, start:end])
            objective = losses.sum()
            if penalized:
                penalty = weight_penalty(weights, reg.penalty, reg.strength, reg.l1_ratio)
                objective = objective + penalty.sum()
                penalty_total += penalty.detach()
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            step()
            total += losses.detach()
        with torch.no_grad():
            outputs = stacked_forward(template, params, x_val)
            val_loss = loss_fn(outputs, y_val)
            predicted = predict(outputs, variant.last_activation)
            accuracy = (predicted == labels_val).double().mean(dim=1)
        e = epoch - 1
        history["train_loss"][:, e] = (total / len(starts)).numpy()
        history["train_penalty"][:, e] = (penalty_total / len(starts)).numpy()
        history["val_loss"][:, e] = val_loss.numpy()
        history["val_accuracy"][:, e] = accuracy.numpy()
        epoch_ms.append(int(time.time() * 1000))
        broken = ~(np.isfinite(history["train_loss"][:, e]) & np.isfinite(history["val_loss"][:, e]))
        non_finite[broken & (non_finite == 0)] = epoch
        if broken.all():
            first = int(np.argmin(np.where(non_finite > 0, non_finite, epoch + 1)))
            raise PipelineError(
                f"variant {variant.name}: the loss became non-finite in every replica ({count} of {count}, "
                f"the last at epoch {epoch}; seed {replicas[first].seed} split {replicas[first].split} first, "
                f"at epoch {non_finite[first]}: train {history['train_loss'][first, non_finite[first] - 1]}, "
                f"validation {history['val_loss'][first, non_finite[first] - 1]}); lower "
                f"variants.{variant.name}.lr or check the loss/activation pairing")
    for r in np.flatnonzero(non_finite):  # what a replica recorded after it broke means nothing
        for values in history.values():
            values[r, non_finite[r] - 1:] = np.nan
    confusion = np.stack([np.stack([((labels_val == a) & (predicted == p)).sum(dim=1).numpy() for p in (0, 1)], -1)
                          for a in (0, 1)], 1)
    return Trained(replicas=replicas, confusion=confusion, non_finite_epoch=non_finite,
                   canonical=unstack(params, 0), epoch_ms=epoch_ms, **history)


def summarize(history: list[dict]) -> dict:
    best = max(history, key=lambda h: (h["val_accuracy"], -h["epoch"]))
    last = history[-1]
    return {"final_train_loss": last["train_loss"], "final_val_loss": last["val_loss"],
            "final_val_accuracy": last["val_accuracy"], "best_val_accuracy": best["val_accuracy"],
            "best_epoch": best["epoch"]}


def replica_rows(variant: config.Variant, trained: Trained) -> tuple[list[dict], list[dict]]:
    """One summary per replica with its diagnosis, and the non-finite ones named."""
    spec = LOSSES[variant.loss]
    rows, broken = [], []
    for r, replica in enumerate(trained.replicas):
        row = {"replica": r, "seed": replica.seed, "split": replica.split}
        if trained.non_finite_epoch[r]:
            broken.append({"seed": replica.seed, "split": replica.split, "epoch": int(trained.non_finite_epoch[r])})
            row.update({key: None for key in ("final_train_loss", "final_val_loss", "final_val_accuracy",
                                              "best_val_accuracy", "best_epoch")}, diagnosis=NON_FINITE)
        else:
            history = trained.history(r)
            confusion = trained.confusion[r].tolist()
            row.update(summarize(history), diagnosis=diagnose(
                [h["train_loss"] for h in history], [h["val_loss"] for h in history], spec.lower_bound,
                variant.loss, confusion)["status"])
        rows.append(row)
    return rows, broken


def curves(trained: Trained) -> dict:
    """Per epoch over the replicas that stayed finite: their number, mean, standard deviation,
    min and max (the band MLflow's grouped charts draw)."""
    out = {}
    for key in ("train_loss", "val_loss", "val_accuracy"):
        values = getattr(trained, key)
        finite = np.isfinite(values).sum(axis=0)
        sd = np.nanstd(values, axis=0, ddof=1) if values.shape[0] > 1 else np.zeros(values.shape[1])
        out[key] = {"n": finite.tolist(), "mean": np.nanmean(values, axis=0).tolist(), "sd": sd.tolist(),
                    "min": np.nanmin(values, axis=0).tolist(), "max": np.nanmax(values, axis=0).tolist()}
    return out


def replicas_csv(trained: Trained) -> str:
    """Every replica's per-epoch history, one row per replica and epoch (repr: exact floats)."""
    keys = ("train_loss", "train_penalty", "val_loss", "val_accuracy")
    lines = ["replica,seed,split,epoch," + ",".join(keys)]
    for r, replica in enumerate(trained.replicas):
        for e in range(trained.train_loss.shape[1]):
            values = ",".join(repr(float(getattr(trained, key)[r, e])) for key in keys)
            lines.append(f"{r},{replica.seed},{replica.split},{e + 1},{values}")
    return "\n".join(lines) + "\n"


def digest(record: dict, weights: bytes) -> str:
    """Identity of a run: its configuration and results (the record holds no wall-clock time)."""
    blob = json.dumps(record, sort_keys=True).encode() + hashlib.sha256(weights).digest()
    return hashlib.sha256(blob).hexdigest()


def main(name: str, params_path: str = config.PARAMS_FILE) -> None:
    params = config.load(params_path)
    variant = params.variant(name)
    torch.set_num_threads(1)  # tiny batches: a second thread only adds contention (10x slower under load)
    warning = mismatch(variant.loss, variant.last_activation)
    if warning:
        print(f"warning: variant {name}: {warning}", file=sys.stderr)
    prepared = load_prepared()
    meta = json.loads(META.read_text())
    study = params.study
    if meta.get("splits", 1) < study.splits:
        raise PipelineError(f"{META}: holds {meta.get('splits', 1)} split(s), study.splits asks for "
                            f"{study.splits}; run `dvc repro preprocess_titanic`")
    started = int(time.time() * 1000)
    trained = train(variant, replicas(params.seed, study.seeds, study.splits), prepared)
    history = trained.history(0)
    rows, broken = replica_rows(variant, trained)
    counts = distribution([row["diagnosis"] for row in rows])
    spec = LOSSES[variant.loss]
    canonical = trained.confusion[0].tolist()
    finite = np.array([row["final_val_accuracy"] for row in rows if row["final_val_accuracy"] is not None])
    record = {
        "variant": name,
        "config": config.as_dict(variant),
        "seed": params.seed,
        "loss_family": spec.family,
        "layer_sizes": layer_sizes(prepared["x"].shape[1], variant.training.hidden_size,
                                   variant.training.hidden_layers, variant.outputs),
        "data": {key: meta[key] for key in ("features", "train_rows", "val_rows", "rows_clean", "sha256",
                                            "encoding", "delimiter")},
        "study": {"seeds": study.seeds, "splits": study.splits, "replicas": study.replicas},
        "history": history,
        "summary": summarize(history),
        "confusion_matrix": canonical,
        "warning": warning,
        "diagnosis": (diagnose([h["train_loss"] for h in history], [h["val_loss"] for h in history],
                               spec.lower_bound, variant.loss, canonical) if not trained.non_finite_epoch[0]
                      else {"status": NON_FINITE, "reason": f"the loss became non-finite at epoch "
                                                            f"{trained.non_finite_epoch[0]}"}),
        "replicas": rows,
        "diagnoses": counts,
        "non_finite": broken,
        "curves": curves(trained),
    }
    buffer = io.BytesIO()
    torch.save(trained.canonical, buffer)
    weights = buffer.getvalue()
    record["digest"] = digest(record, weights)
    columns = ("train_loss", "val_loss", "val_accuracy")
    plot_rows = ["epoch," + ",".join(columns) + ",val_accuracy_mean,val_accuracy_min,val_accuracy_max"] + [
        f"{h['epoch']}," + ",".join(repr(h[c]) for c in columns) + "," + ",".join(
            repr(record["curves"]["val_accuracy"][edge][h["epoch"] - 1]) for edge in ("mean", "min", "max"))
        for h in history]
    metrics = {**record["summary"], "diagnosis": record["diagnosis"]["status"], "replicas": study.replicas,
               "val_accuracy_mean": float(finite.mean()),
               "val_accuracy_sd": float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
               "diagnoses": describe(counts)}
    with atomic.Outputs() as out:
        out.folder(RESULTS / name, {"model.pt": weights,
                                    "record.json": json.dumps(record, indent=2, sort_keys=True) + "\n",
                                    "replicas.csv": replicas_csv(trained)})
        out.json(METRICS / f"{name}.json", metrics)
        out.file(HISTORY / f"{name}.csv", "\n".join(plot_rows) + "\n")
    # When it ran, for MLflow: kept out of every DVC output so a re-run writes the same bytes.
    atomic.write_json(RUN_TIMES / f"{name}.json", {"started_ms": started, "ended_ms": int(time.time() * 1000),
                                                   "epoch_ms": trained.epoch_ms})
    s = record["summary"]
    print(f"train {name}: {study.replicas} replica(s), final val accuracy mean {metrics['val_accuracy_mean']:.2%} "
          f"(sd {metrics['val_accuracy_sd']:.2%}); canonical run {s['final_val_accuracy']:.2%}, val loss "
          f"{s['final_val_loss']:.4f}; diagnoses: {describe(counts, broken)}")
