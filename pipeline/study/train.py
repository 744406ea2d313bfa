"""Stage train@<dataset>: every loss variant on one dataset, each with every replica of the study,
written to disk, and each variant trained again only when its own inputs changed (inputs.py).

A variant's seeds x splits replicas train together as one batched computation (model.py). Knows
nothing of MLflow or statistics (the publish and report stages read what it writes); it draws
each variant's two figures (plots.py) as it trains it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core import atomic, config, numerics
from ..core.catalog import DatasetFiles, VariantFiles
from ..core.errors import PipelineError
from ..core.vocabulary import LOSSES
from . import backends, scores, torch_patches
from . import tuning as tuning_protocol
from .diagnosis import NON_FINITE, describe, diagnose, distribution
from .inputs import changed, loss_source, stage_files
from .inputs import of as inputs_of
from .inputs import record as inputs_record
from .losses import Head, check, encode_targets, head, mismatch, predict, replica_loss
from .plots import draw
from .model import build_mlp, layer_sizes, stack, stacked_forward, unstack, weight_penalty
from ..data.preprocess import load_prepared
from ..core.record import (HISTORY_KEYS, Curve, Data, Diagnosis, Epoch, ReplicaResult, Scaler, Scores, StudyShape,
                           Summary, TrainingRecord, Tuned, replicas_csv)
from ..core.record import Head as RecordedHead
from ..data.splits import Replica, replicas, scaler, split_arrays


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
    scores: dict                       # record.SCORES -> (replicas,) after the last epoch (scores.py)
    non_finite_epoch: np.ndarray       # first epoch with a non-finite loss, 0 for none
    canonical: dict                    # replica 0's state dict: the model that is logged
    scalers: dict                      # split -> its training part's scaler, None where unscaled
    epoch_ms: list[int] = field(default_factory=list)  # wall clock at each epoch's end (for MLflow only)

    def history(self, r: int) -> list[Epoch]:
        return [Epoch(epoch=e + 1, **{key: float(getattr(self, key)[r, e]) for key in HISTORY_KEYS})
                for e in range(self.train_loss.shape[1])]


def _stacked_split(prepared: dict, replicas: list[Replica], scalers: dict, encoding: str, classes: int):
    """The splits' training parts stacked once each (a replica indexes its own: a split's rows are
    not copied per replica), and each replica's validation part with a leading replica axis."""
    arrays = {k: split_arrays(prepared, k, scalers[k]) for k in scalers}
    splits = sorted(arrays)

    def stacked(key, keys):
        return torch.from_numpy(np.stack([arrays[k][key] for k in keys]))

    of_replica = [r.split for r in replicas]
    labels_val = stacked("y_val", of_replica)
    return (torch.tensor([splits.index(k) for k in of_replica]), stacked("x_train", splits),
            encode_targets(stacked("y_train", splits), encoding, classes), stacked("x_val", of_replica),
            encode_targets(labels_val, encoding, classes), labels_val)


def variant_head(variant: config.Variant, classes: int) -> Head:
    """The variant's last layer and targets on `classes` classes (losses.head), or one line why not."""
    found = head(variant.loss, variant.target_encoding, variant.last_activation, classes, variant.wants)
    if isinstance(found, str):
        raise PipelineError(f"variant {variant.name}: {found}")
    return found


@dataclass
class _Stack:
    """The replicas' models as one: a template module run with each replica's own parameters."""
    template: torch.nn.Module
    params: dict[str, torch.Tensor]    # each parameter with a leading replica axis
    weights: list[torch.Tensor]        # those the penalty acts on (not the biases)


def _stack(variant: config.Variant, replicas: list[Replica], features: int, shape: Head) -> _Stack:
    """Each replica's model as nn.Linear initialises it under the replica's own seed, stacked."""
    t = variant.training
    models = []
    for replica in replicas:
        torch.manual_seed(replica.seed)
        models.append(build_mlp(features, t.hidden_size, t.hidden_layers, shape.outputs, shape.last_activation))
    params = stack(models)
    return _Stack(models[0], params, [value for name, value in params.items() if name.endswith("weight")])


@dataclass
class _Rows:
    """The stacked training parts as one table of rows: replica r's row i of its split is row
    split_of[r] * n + i, gathered with index_select (a plain copy, cheaper than fancy indexing)."""
    x: torch.Tensor
    y: torch.Tensor
    offset: torch.Tensor   # (replicas, 1): where each replica's split starts
    n: int                 # training rows per split
    count: int             # replicas

    def batch(self, order: torch.Tensor, start: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each replica's batch gathered from its split's rows: a batch's copy, not an epoch's."""
        rows = (order[:, start:start + size] + self.offset).reshape(-1)
        return (self.x.index_select(0, rows).view(self.count, -1, *self.x.shape[1:]),
                self.y.index_select(0, rows).view(self.count, -1, *self.y.shape[1:]))


def _epoch(model: _Stack, rows: _Rows, order: torch.Tensor, t: config.Training, loss_fn, step, optimizer
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over every replica's training part in batches; (mean loss, mean penalty) per replica."""
    reg = t.regularization
    penalized = reg.penalty != "none" and reg.strength > 0
    total, penalty_total = torch.zeros(rows.count), torch.zeros(rows.count)
    starts = range(0, rows.n, t.batch_size)
    for start in starts:
        xb, yb = rows.batch(order, start, t.batch_size)
        losses = loss_fn(stacked_forward(model.template, model.params, xb), yb)
        objective = losses.sum()
        if penalized:
            penalty = weight_penalty(model.weights, reg.penalty, reg.strength, reg.l1_ratio)
            objective = objective + penalty.sum()
            penalty_total += penalty.detach()
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        step()
        total += losses.detach()
    return total / len(starts), penalty_total / len(starts)


def _stop_if_all_broke(variant: config.Variant, replicas: list[Replica], history: dict, non_finite: np.ndarray,
                       epoch: int, give_up: bool = True) -> None:
    """Record the epoch each replica's loss first turned non-finite; stop with one line once all
    have (unless not `give_up`: a tuning run at a rate too high for the loss is an answer)."""
    e = epoch - 1
    broken = ~(np.isfinite(history["train_loss"][:, e]) & np.isfinite(history["val_loss"][:, e]))
    non_finite[broken & (non_finite == 0)] = epoch
    if broken.all() and give_up:
        count = len(replicas)
        first = int(np.argmin(np.where(non_finite > 0, non_finite, epoch + 1)))
        raise PipelineError(
            f"variant {variant.name}: the loss became non-finite in every replica ({count} of {count}, "
            f"the last at epoch {epoch}; seed {replicas[first].seed} split {replicas[first].split} first, "
            f"at epoch {non_finite[first]}: train {history['train_loss'][first, non_finite[first] - 1]}, "
            f"validation {history['val_loss'][first, non_finite[first] - 1]}); lower "
            f"variants.{variant.name}.lr or check the loss/activation pairing")


def _validate(model: _Stack, x_val, y_val, labels_val, loss_fn, last_activation: str):
    """Every replica on its validation rows: (loss, predicted classes, accuracy), each per replica."""
    with torch.no_grad():
        outputs = stacked_forward(model.template, model.params, x_val)
        predicted = predict(outputs, last_activation)
        return loss_fn(outputs, y_val), predicted, (predicted == labels_val).double().mean(dim=1)


def _confusion(labels_val, predicted, classes: int) -> np.ndarray:
    """(replicas, actual, predicted) counts."""
    return np.stack([np.stack([((labels_val == a) & (predicted == p)).sum(dim=1).numpy()
                               for p in range(classes)], -1) for a in range(classes)], 1)


def train(variant: config.Variant, replicas: list[Replica], prepared: dict, progress: bool | None = None,
          classes: int = 2, give_up: bool = True) -> Trained:
    """Train every replica of one variant as one batched computation, on `classes` classes.

    Each replica starts from what nn.Linear gives under its own seed, shuffles with its own
    generator (seeded alike) and trains on its own split. Their losses are summed, not averaged:
    the gradient of a sum reaches each replica's parameters as that replica's own gradient, and
    Adam works elementwise, so each replica takes the steps it would take alone.
    """
    from tqdm import tqdm

    t = variant.training
    count = len(replicas)
    scalers = {k: scaler(prepared, k) if t.standardize else None for k in sorted({r.split for r in replicas})}
    shape = variant_head(variant, classes)
    split_of, x_train, y_train, x_val, y_val, labels_val = _stacked_split(prepared, replicas, scalers,
                                                                          shape.encoding, classes)
    model = _stack(variant, replicas, x_train.shape[2], shape)
    loss_fn = replica_loss(variant.loss, variant.loss_args)
    torch_patches.skip_dynamo_import()
    optimizer = _optimizer(t.optimizer, list(model.params.values()), t.lr)
    step = torch_patches.plain_step(optimizer)
    shufflers = [torch.Generator().manual_seed(replica.seed) for replica in replicas]
    n = x_train.shape[1]
    rows = _Rows(x_train.reshape(-1, x_train.shape[2]), y_train.reshape(-1, *y_train.shape[2:]),
                 (split_of * n).unsqueeze(1), n, count)
    history = {key: np.full((count, t.epochs), np.nan) for key in HISTORY_KEYS}
    non_finite = np.zeros(count, dtype=np.int64)
    epoch_ms = []
    # disable=None: a bar on a terminal, silent in logs and under DVC's captured output.
    for epoch in tqdm(range(1, t.epochs + 1), desc=f"{variant.name} ({count} replicas)", leave=False,
                      disable=None if progress is None else not progress):
        if t.shuffle:  # each replica draws its own permutation, as it would alone
            order = torch.stack([torch.randperm(n, generator=g) for g in shufflers])
        else:
            order = torch.arange(n).expand(count, n)
        train_loss, train_penalty = _epoch(model, rows, order, t, loss_fn, step, optimizer)
        val_loss, predicted, accuracy = _validate(model, x_val, y_val, labels_val, loss_fn, shape.last_activation)
        for key, values in (("train_loss", train_loss), ("train_penalty", train_penalty), ("val_loss", val_loss),
                            ("val_accuracy", accuracy)):
            history[key][:, epoch - 1] = values.numpy()
        epoch_ms.append(int(time.time() * 1000))
        _stop_if_all_broke(variant, replicas, history, non_finite, epoch, give_up)
    for r in np.flatnonzero(non_finite):  # what a replica recorded after it broke means nothing
        for values in history.values():
            values[r, non_finite[r] - 1:] = np.nan
    return Trained(replicas=replicas, confusion=_confusion(labels_val, predicted, classes), non_finite_epoch=non_finite,
                   scores=_scores(model, x_val, labels_val, variant, shape.last_activation),
                   canonical=unstack(model.params, 0), scalers=scalers, epoch_ms=epoch_ms, **history)


def _scores(model: _Stack, x_val, labels_val, variant: config.Variant, last_activation: str) -> dict:
    """Each replica's class probabilities on its validation rows, scored (scores.py)."""
    with torch.no_grad():
        outputs = stacked_forward(model.template, model.params, x_val).numpy()
    with np.errstate(invalid="ignore"):  # a replica that broke: NaN outputs, NaN scores, left out
        rule = scores.probability_rule(variant.loss, last_activation, variant.wants)
        return scores.scores(scores.probabilities(outputs, rule),
                             labels_val.numpy())


def _at(variant: config.Variant, lr: float) -> config.Variant:
    return dataclasses.replace(variant, training=dataclasses.replace(variant.training, lr=lr))


def _merge(count: int, parts: list[tuple[list[int], Trained]], scalers: dict) -> Trained:
    """One Trained of `count` replicas from parts that each trained some of them (their indices),
    on splits whose training parts `scalers` has."""
    first = parts[0][1]
    replicas_of = [None] * count
    arrays = {key: np.empty((count, *getattr(first, key).shape[1:]), getattr(first, key).dtype)
              for key in (*HISTORY_KEYS, "confusion", "non_finite_epoch")}
    scored = {name: np.empty(count) for name in first.scores}
    canonical = None
    for members, part in parts:
        for i, r in enumerate(members):
            replicas_of[r] = part.replicas[i]
        for key, values in arrays.items():
            values[members] = getattr(part, key)
        for name, values in scored.items():
            values[members] = part.scores[name]
        if 0 in members:  # members ascend: replica 0 is the part's first, whose weights it kept
            canonical = part.canonical
    return Trained(replicas=replicas_of, scores=scored, canonical=canonical, scalers=scalers,
                   epoch_ms=first.epoch_ms, **arrays)


def tuned(variant: config.Variant, replicas: list[Replica], prepared: dict, classes: int, tuning: config.Tuning,
          seed: int, fixed: Trained) -> tuple[Trained, Tuned]:
    """The tuned study's replicas of one variant (study/tuning.py has the protocol): each split's
    rate chosen on its inner parts, then every replica trained at its split's rate, those at the
    variant's own rate taken from `fixed` (the same computation)."""
    splits = sorted({r.split for r in replicas})
    tuners = [next(r for r in replicas if r.split == k) for k in splits]  # each split's first seed
    part = tuning_protocol.inner(prepared, seed, tuning.inner_share)
    accuracy = np.stack([train(_at(variant, lr), tuners, part, classes=classes, give_up=False).val_accuracy[:, -1]
                         for lr in tuning.lr])
    own = variant.training.lr
    chosen = dict(zip(splits, tuning_protocol.choose(accuracy, tuning.lr, own)))
    parts = []
    for lr in sorted(set(chosen.values())):
        members = [i for i, r in enumerate(replicas) if chosen[r.split] == lr]
        if lr == own:
            parts.append((members, _take(fixed, members)))
        else:
            parts.append((members, train(_at(variant, lr), [replicas[i] for i in members], prepared,
                                         classes=classes, give_up=False)))
    info = Tuned(grid=list(tuning.lr), inner_share=tuning.inner_share, inner_rows=part["val_index"].shape[1],
                 chosen=[chosen[k] for k in splits], inner_accuracy=accuracy.tolist())
    return _merge(len(replicas), parts, fixed.scalers), info


def _take(trained: Trained, members: list[int]) -> Trained:
    """The replicas `members` of `trained` (the canonical weights only when replica 0 is among them)."""
    return dataclasses.replace(
        trained, replicas=[trained.replicas[i] for i in members],
        scores={name: values[members] for name, values in trained.scores.items()},
        canonical=trained.canonical if 0 in members else None,
        **{key: getattr(trained, key)[members] for key in (*HISTORY_KEYS, "confusion", "non_finite_epoch")})


def replica_results(variant: config.Variant, trained: Trained) -> list[ReplicaResult]:
    """Each replica's summary and diagnosis; a replica whose loss turned non-finite is named, not diagnosed."""
    spec = variant.spec
    results = []
    for r, replica in enumerate(trained.replicas):
        where = {"replica": r, "seed": replica.seed, "split": replica.split}
        epoch = int(trained.non_finite_epoch[r])
        if epoch:
            results.append(ReplicaResult(**where, summary=None, scores=None, non_finite_epoch=epoch, diagnosis=Diagnosis(
                status=NON_FINITE, reason=f"the loss became non-finite at epoch {epoch}")))
            continue
        history = trained.history(r)
        found = diagnose([h.train_loss for h in history], [h.val_loss for h in history], spec.lower_bound,
                         variant.loss, trained.confusion[r].tolist())
        results.append(ReplicaResult(**where, summary=Summary.of(history), diagnosis=Diagnosis(**found),
                                     scores=Scores(**{name: float(trained.scores[name][r]) for name in trained.scores})))
    return results


def curves(trained: Trained) -> dict[str, Curve]:
    """Per epoch over the replicas that stayed finite: their number, mean, standard deviation,
    min and max (the band MLflow's grouped charts draw)."""
    out = {}
    for key in ("train_loss", "val_loss", "val_accuracy"):
        values = getattr(trained, key)
        finite = np.isfinite(values).sum(axis=0)
        sd = np.nanstd(values, axis=0, ddof=1) if values.shape[0] > 1 else np.zeros(values.shape[1])
        out[key] = Curve(n=finite.tolist(), mean=np.nanmean(values, axis=0).tolist(), sd=sd.tolist(),
                         min=np.nanmin(values, axis=0).tolist(), max=np.nanmax(values, axis=0).tolist())
    return out


# The DVC plot's columns: the replicas' mean under the plain names (what `dvc plots show` draws),
# their range beside it, the canonical replica's under `_canonical` (the names MLflow's runs use).
HISTORY_CURVES = ("val_loss", "train_loss", "val_accuracy")


def history_plot(record: TrainingRecord) -> str:
    """Per epoch, for `dvc plots show`: the replicas' mean, min and max of each curve, then the
    canonical run's (a stalled canonical run's flat 0 never stands for the study)."""
    header = ["epoch"] + [f"{key}{edge}" for key in HISTORY_CURVES for edge in ("", "_min", "_max")] \
        + [f"{key}_canonical" for key in HISTORY_CURVES]
    lines = [",".join(header)]
    for h in record.history:
        e = h.epoch - 1
        spread = [getattr(record.curves[key], edge)[e] for key in HISTORY_CURVES for edge in ("mean", "min", "max")]
        lines.append(",".join(map(repr, (h.epoch, *spread, *(getattr(h, key) for key in HISTORY_CURVES)))))
    return "\n".join(lines) + "\n"


@dataclass
class CellOutputs:
    """What training one cell (a dataset x variant) writes, as bytes, so that it can be computed in
    another process or on another machine (backends.py) and written by the stage itself."""
    folders: dict[str, dict[str, bytes]]  # a folder -> its files' names and bytes
    metrics: dict                         # `dvc metrics show`'s two figures
    run_times: dict                       # when it ran (for MLflow only, never a DVC output)
    line: str                             # what the stage prints of it


def _weights(trained: Trained) -> bytes:
    buffer = io.BytesIO()
    torch.save(trained.canonical, buffer)
    return buffer.getvalue()


def _record(params: config.Params, dataset: str, variant: config.Variant, prepared: dict, meta: dict,
            trained: Trained, results: list[ReplicaResult], tuned: Tuned | None = None) -> TrainingRecord:
    """The training record of one variant's replicas (the fixed study's, or the tuned one's)."""
    study = params.study
    shape = variant_head(variant, len(meta["classes"]))
    canonical_scaler = trained.scalers[0]
    return TrainingRecord(
        variant=variant.name, dataset=dataset, classes=meta["classes"], config=variant,
        head=RecordedHead(**dataclasses.asdict(shape)), seed=params.seed, loss_family=variant.spec.family,
        layer_sizes=layer_sizes(prepared["x"].shape[1], variant.training.hidden_size,
                                variant.training.hidden_layers, shape.outputs),
        data=Data(**{key: meta[key] for key in Data.model_fields}),
        study=StudyShape(seeds=study.seeds, splits=study.splits, replicas=study.replicas),
        scaler=Scaler(**canonical_scaler) if canonical_scaler else None,
        warning=mismatch(variant.loss, variant.last_activation, variant.wants), replicas=results,
        history=trained.history(0), confusion_matrix=trained.confusion[0].tolist(),
        diagnoses=distribution([r.diagnosis.status for r in results]), curves=curves(trained),
        predictions_sha256=hashlib.sha256(np.ascontiguousarray(trained.val_accuracy).tobytes()).hexdigest(),
        tuned=tuned, loss_code=loss_source(variant.loss),
    ).with_digest(_weights(trained))


def train_cell(params: config.Params, dataset: str, name: str, prepared: dict, meta: dict) -> CellOutputs:
    """Train one variant's replicas on the dataset (and, with `tuning` on, its tuned study's): every
    output as bytes, nothing written. Reads no file, so that a Ray worker with its arguments
    computes what this process would."""
    numerics.check()  # also in a Ray worker, whose process Ray started
    torch.set_num_threads(1)  # tiny batches: a second thread only adds contention (10x slower under load)
    variant = params.variant(name)
    files = VariantFiles(name, dataset)
    study = params.study
    classes = len(meta["classes"])
    started = int(time.time() * 1000)
    every = replicas(params.seed, study.seeds, study.splits)
    trained = train(variant, every, prepared, classes=classes)
    results = replica_results(variant, trained)
    table = replicas_csv(trained.replicas, {key: getattr(trained, key) for key in HISTORY_KEYS})
    record = _record(params, dataset, variant, prepared, meta, trained, results)
    finite = np.array([r.summary.final_val_accuracy for r in results if r.summary])
    # Two headline figures per variant: `dvc exp show` stays readable; the rest is the report's.
    metrics = {"val_accuracy_mean": float(finite.mean()), "diagnoses": describe(record.diagnoses)}
    kept = {files.model.name: _weights(trained), files.record.name: record.dumps().encode(),
            files.replicas.name: table.encode()}
    tuned_line = ""
    if params.tuning.enabled:
        at_best, choices = tuned(variant, every, prepared, classes, params.tuning, params.seed, trained)
        best = _record(params, dataset, variant, prepared, meta, at_best, replica_results(variant, at_best), choices)
        kept[files.tuned_record.name] = best.dumps().encode()
        accuracies = [r.summary.final_val_accuracy for r in best.replicas if r.summary]
        tuned_line = (f"; tuned: mean {np.mean(accuracies) if accuracies else math.nan:.2%}, lr chosen "
                      + ", ".join(f"{lr:g} x{n}" for lr, n in sorted(Counter(choices.chosen).items())))
    folders = {str(files.results): kept,
               str(files.history.parent): {files.history.name: history_plot(record).encode()},
               str(files.figures): draw(record)}
    s = record.summary
    canonical = (f"{s.final_val_accuracy:.2%}, val loss {s.final_val_loss:.4f}" if s
                 else record.diagnosis.reason)
    line = (f"train {dataset} {name}: {study.replicas} replica(s), final val accuracy mean "
            f"{metrics['val_accuracy_mean']:.2%} (sd {finite.std(ddof=1) if len(finite) > 1 else 0:.2%}); "
            f"canonical run {canonical}; diagnoses: {describe(record.diagnoses, record.non_finite)}{tuned_line}")
    return CellOutputs(folders=folders, metrics=metrics, line=line, run_times={
        "started_ms": started, "ended_ms": int(time.time() * 1000), "epoch_ms": trained.epoch_ms})


def write_cell(dataset: str, name: str, outputs: CellOutputs, inputs: dict) -> None:
    """Write what train_cell computed, all of it or none, and then the inputs it was trained from."""
    files = VariantFiles(name, dataset)
    with atomic.Outputs() as out:
        for folder, contents in outputs.folders.items():
            out.folder(folder, contents)
        out.json(files.metrics, outputs.metrics)
    # When it ran, for MLflow: kept out of every DVC output so a re-run writes the same bytes.
    atomic.write_json(files.run_times, outputs.run_times)
    # Last, once the rest is in place: a stage killed before this line trains the variant again.
    atomic.write_text(files.inputs, inputs_record(files, inputs))
    print(outputs.line)


def _prune(dataset: str, variants) -> list[str]:
    """Remove what the stage's folders hold of variants params.yaml no longer has (and any
    half-written leftover of a killed run): persisted outputs would keep them otherwise."""
    any_variant = VariantFiles("_", dataset)
    folders = {any_variant.results.parent: "", any_variant.metrics.parent: ".json",
               any_variant.history.parent.parent: "", any_variant.figures.parent: ""}
    removed = set()
    for folder, suffix in folders.items():
        for entry in folder.iterdir() if folder.is_dir() else ():
            if entry.name.removesuffix(suffix) in variants and entry.name.endswith(suffix):
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            removed.add(entry.name.removesuffix(suffix))
    return sorted(removed)


@dataclass
class Plan:
    """One dataset's part of a training: its data, the cells to train (each with the inputs it
    is trained from), and what is kept or was removed."""
    prepared: dict
    meta: dict
    todo: dict = field(default_factory=dict)   # variant -> its inputs (inputs.py)
    kept: list = field(default_factory=list)
    removed: list = field(default_factory=list)


def _plan(params: config.Params, dataset: str, names: tuple[str, ...]) -> Plan:
    """Which of the dataset's variants train: those whose inputs changed, or those named."""
    params.dataset(dataset)
    for name in names:
        params.variant(name)
    data = DatasetFiles(dataset)
    plan = Plan(prepared=load_prepared(dataset), meta=json.loads(data.meta.read_text()))
    if plan.meta.get("splits", 1) < params.study.splits:
        raise PipelineError(f"{data.meta}: holds {plan.meta.get('splits', 1)} split(s), study.splits asks for "
                            f"{params.study.splits}; run `dvc repro preprocess@{dataset}`")
    plan.removed = [] if names else _prune(dataset, params.variants)
    for name in names or params.variants:  # every loss tried before anything trains
        _checked(params.variant(name), len(plan.meta["classes"]))
    files = stage_files(dataset)
    for name in names or params.variants:
        cell = inputs_of(files, params.variant(name), params)
        why = "named" if names else changed(VariantFiles(name, dataset), cell)
        if why is None:
            plan.kept.append(name)
            continue
        print(f"train {dataset} {name}: training ({why})")
        variant = params.variant(name)
        warning = mismatch(variant.loss, variant.last_activation, variant.wants)
        if warning:
            print(f"warning: variant {name}: {warning}", file=sys.stderr)
        plan.todo[name] = cell
    return plan


def _checked(variant: config.Variant, classes: int) -> None:
    """The variant's loss works on a made-up batch (losses.check); a loss of your own says what it
    reads (`wants`), so a last activation that cannot give it that is refused, not studied."""
    if variant.loss not in LOSSES:
        wrong = mismatch(variant.loss, variant.last_activation, variant.wants)
        if wrong:
            raise PipelineError(f"variant {variant.name}: wants {variant.wants}: {wrong}")
    check(variant, variant_head(variant, classes), classes)


def _train(params: config.Params, plans: dict[str, Plan]) -> None:
    """Every planned cell, on the params' backend, each written as it comes back."""
    backend = backends.chosen(params)
    cells = [(dataset, name) for dataset, plan in plans.items() for name in plan.todo]
    data = {dataset: (plan.prepared, plan.meta) for dataset, plan in plans.items()}
    # closing: a write that fails stops the cluster's remaining tasks at once, not when collected.
    with contextlib.closing(backend.run(train_cell, params, cells, data)) as trained:
        for (dataset, name), outputs in trained:
            write_cell(dataset, name, outputs, plans[dataset].todo[name])
    for dataset, plan in plans.items():
        print(f"train@{dataset}: {len(plan.todo)} variant(s) trained, {len(plan.kept)} kept (inputs unchanged)"
              + (f", {len(plan.removed)} removed ({', '.join(plan.removed)})" if plan.removed else "")
              + (f" ({backend.where})" if backend.where else ""))


def main(dataset: str, *names: str, params_path: str = config.PARAMS_FILE) -> None:
    """Stage train@<dataset>: every variant of params.yaml whose inputs changed since it was last
    trained (study/inputs.py), the others kept as they are; or, named, these variants, trained."""
    params = config.load(params_path)
    _train(params, {dataset: _plan(params, dataset, names)})


def main_study(params_path: str = config.PARAMS_FILE) -> None:
    """`python -m pipeline train-study`: what every train@<dataset> stage would train, sent at
    once (on Ray, the whole study's cells in one fan-out) and written as those stages would
    write it; `dvc repro` then finds their inputs unchanged, keeps the cells and records them."""
    params = config.load(params_path)
    _train(params, {dataset: _plan(params, dataset, ()) for dataset in params.datasets})
    print("train-study: done; `dvc repro` keeps these cells (their inputs are unchanged) and records them")
