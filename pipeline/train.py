"""Stage train@<variant>: one loss variant, trained from params, written to disk.

Knows nothing of MLflow or plotting (the publish and plot stages read what it writes), so
a training process imports only torch, numpy and tqdm.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import sys
import time

import numpy as np
import torch

from . import atomic, config
from .diagnosis import diagnose
from .errors import PipelineError
from .losses import LOSSES, encode_targets, make_loss, mismatch, predict
from .model import build_mlp, layer_sizes, weight_penalty
from .paths import HISTORY, METRICS, RESULTS, TITANIC_META as META
from .preprocess_titanic import load_prepared


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


def train(variant: config.Variant, seed: int, data: dict[str, np.ndarray], progress: bool | None = None):
    """Train one variant; return (model, history, confusion). Raises on a non-finite loss."""
    from tqdm import tqdm

    t = variant.training
    torch.manual_seed(seed)
    model = build_mlp(data["x_train"].shape[1], t.hidden_size, t.hidden_layers, variant.outputs,
                      variant.last_activation)
    loss_fn = make_loss(variant.loss)
    _skip_dynamo_import()
    optimizer = _optimizer(t.optimizer, model.parameters(), t.lr)
    step = _plain_step(optimizer)
    reg = t.regularization
    x_train = torch.from_numpy(data["x_train"])
    y_train = encode_targets(torch.from_numpy(data["y_train"]), variant.target_encoding)
    x_val = torch.from_numpy(data["x_val"])
    labels_val = torch.from_numpy(data["y_val"])
    y_val = encode_targets(labels_val, variant.target_encoding)
    shuffler = torch.Generator().manual_seed(seed)
    n = len(x_train)
    starts = range(0, n, t.batch_size)
    history = []
    for epoch in range(1, t.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=shuffler) if t.shuffle else torch.arange(n)
        # One gather an epoch; each batch is then a view, not a copy.
        xs, ys = x_train[order], y_train[order]
        # Summed as tensors: no .item() sync per step.
        total = torch.zeros(())
        penalty_total = torch.zeros(())
        # disable=None: a bar on a terminal, silent in logs and under DVC's captured output.
        for start in tqdm(starts, desc=f"{variant.name} epoch {epoch}/{t.epochs}", disable=None if progress is None else not progress, leave=False):
            end = start + t.batch_size
            loss = loss_fn(model(xs[start:end]), ys[start:end])
            objective = loss
            if reg.penalty != "none" and reg.strength > 0:
                penalty = weight_penalty(model, reg.penalty, reg.strength, reg.l1_ratio)
                objective = loss + penalty
                penalty_total += penalty.detach()
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            step()
            total += loss.detach()
        train_loss = (total / len(starts)).item()
        model.eval()
        with torch.no_grad():
            outputs = model(x_val)
            val_loss = loss_fn(outputs, y_val).item()
            predicted = predict(outputs, variant.last_activation)
            val_accuracy = (predicted == labels_val).double().mean().item()
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise PipelineError(f"variant {variant.name}: the loss became non-finite at epoch {epoch} "
                                f"(train {train_loss}, validation {val_loss}); lower "
                                f"variants.{variant.name}.lr or check the loss/activation pairing")
        history.append({"epoch": epoch, "train_loss": train_loss,
                        "train_penalty": (penalty_total / len(starts)).item(),
                        "val_loss": val_loss, "val_accuracy": val_accuracy,
                        "timestamp_ms": int(time.time() * 1000)})
    confusion = [[int(((labels_val == a) & (predicted == p)).sum()) for p in (0, 1)] for a in (0, 1)]
    return model, history, confusion


def summarize(history: list[dict]) -> dict:
    best = max(history, key=lambda h: (h["val_accuracy"], -h["epoch"]))
    last = history[-1]
    return {"final_train_loss": last["train_loss"], "final_val_loss": last["val_loss"],
            "final_val_accuracy": last["val_accuracy"], "best_val_accuracy": best["val_accuracy"],
            "best_epoch": best["epoch"]}


def digest(record: dict, weights: bytes) -> str:
    """Identity of a run: its configuration and results, not when it ran."""
    stable = {k: v for k, v in record.items() if k not in ("started_ms", "ended_ms", "history")}
    stable["history"] = [{k: v for k, v in h.items() if k != "timestamp_ms"} for h in record["history"]]
    blob = json.dumps(stable, sort_keys=True).encode() + hashlib.sha256(weights).digest()
    return hashlib.sha256(blob).hexdigest()


def main(name: str, params_path: str = config.PARAMS_FILE) -> None:
    params = config.load(params_path)
    variant = params.variant(name)
    torch.set_num_threads(1)  # tiny batches: a second thread only adds contention (10x slower under load)
    warning = mismatch(variant.loss, variant.last_activation)
    if warning:
        print(f"warning: variant {name}: {warning}", file=sys.stderr)
    data = load_prepared()
    meta = json.loads(META.read_text())
    started = int(time.time() * 1000)
    model, history, confusion = train(variant, params.seed, data)
    spec = LOSSES[variant.loss]
    record = {
        "variant": name,
        "config": config.as_dict(variant),
        "seed": params.seed,
        "loss_family": spec.family,
        "layer_sizes": layer_sizes(data["x_train"].shape[1], variant.training.hidden_size,
                                   variant.training.hidden_layers, variant.outputs),
        "data": {"features": meta["features"], "train_rows": meta["train_rows"],
                 "val_rows": meta["val_rows"], **meta["source"]},
        "history": history,
        "summary": summarize(history),
        "confusion_matrix": confusion,
        "warning": warning,
        "diagnosis": diagnose([h["train_loss"] for h in history], [h["val_loss"] for h in history],
                              spec.lower_bound, variant.loss, confusion),
        "started_ms": started,
        "ended_ms": int(time.time() * 1000),
    }
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    weights = buffer.getvalue()
    record["digest"] = digest(record, weights)
    rows = ["epoch,train_loss,val_loss,val_accuracy"] + [
        f"{h['epoch']},{h['train_loss']!r},{h['val_loss']!r},{h['val_accuracy']!r}" for h in history]
    with atomic.Outputs() as out:
        out.folder(RESULTS / name, {"model.pt": weights,
                                    "record.json": json.dumps(record, indent=2, sort_keys=True) + "\n"})
        out.json(METRICS / f"{name}.json", {**record["summary"], "diagnosis": record["diagnosis"]["status"]})
        out.file(HISTORY / f"{name}.csv", "\n".join(rows) + "\n")
    s = record["summary"]
    print(f"train {name}: val loss {s['final_val_loss']:.4f}, val accuracy {s['final_val_accuracy']:.2%} "
          f"(best {s['best_val_accuracy']:.2%} at epoch {s['best_epoch']}); "
          f"diagnosis: {record['diagnosis']['status']}")
