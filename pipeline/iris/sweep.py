"""Stage sweep_alpha: one fit per alpha, a GIF of the decision boundary, a table and a summary.

The fits are independent, so worker processes fit them and draw their frames, each on a
figure built once and redrawn in place. Workers are forked after scikit-learn and matplotlib
are imported, so they start without paying for the imports again.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
import warnings

import numpy as np

from ..core import atomic, config
from ..core.catalog import IRIS_META, SWEEP_GIF, SWEEP_METRICS, SWEEP_RECORD, SWEEP_SUMMARY, SWEEP_TABLE, SWEEP_TIMES
from ..core.figures import pyplot
from ..core.progress import progress
from .frames import Frames, gif_bytes, grid, summary_png
from .preprocess import load_prepared

_shared: dict = {}


def make_model(name: str, alpha: float, neurons: int, max_iter: int, seed: int):
    if name == "ridge":
        from sklearn.linear_model import RidgeClassifier

        return RidgeClassifier(alpha=alpha)
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(neurons,), alpha=alpha, max_iter=max_iter, random_state=seed)


def weight_norm(model) -> float:
    weights = getattr(model, "coefs_", None) or [model.coef_]
    return float(np.sqrt(sum(float((w ** 2).sum()) for w in weights)))


def fit(alpha: float, data: dict, settings: config.IrisSweep, seed: int, points: np.ndarray):
    """Fit one alpha; return its row and the predicted class over the grid's points."""
    from sklearn.exceptions import ConvergenceWarning

    model = make_model(settings.model, alpha, settings.neurons, settings.max_iter, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded as `converged` instead
        model.fit(data["x_train"], data["y_train"])
    n_iter = getattr(model, "n_iter_", None)
    n_iter = int(np.max(n_iter)) if n_iter is not None else None
    row = {"alpha": float(alpha), "log10_alpha": float(np.log10(alpha)),
           "train_accuracy": float(model.score(data["x_train"], data["y_train"])),
           "test_accuracy": float(model.score(data["x_test"], data["y_test"])),
           "weight_l2_norm": weight_norm(model), "n_iter": n_iter,
           "converged": n_iter is None or n_iter < settings.max_iter}
    return row, model.predict(points).astype(np.uint8)


def _init(data: dict, settings: config.IrisSweep, seed: int, draw: bool) -> None:
    """Set up a worker (or this process): the data, the grid and, to draw frames, one figure."""
    xx, yy = grid(data)
    _shared.update(data=data, settings=settings, seed=seed, shape=xx.shape, points=np.c_[xx.ravel(), yy.ravel()],
                   frames=Frames(data, xx, yy, settings.model) if draw else None)


def _work(alpha: float):
    row, z = fit(alpha, _shared["data"], _shared["settings"], _shared["seed"], _shared["points"])
    frames = _shared["frames"]
    return row, frames.draw(z.reshape(_shared["shape"]), row) if frames else None


def sweep(data: dict, settings: config.IrisSweep, seed: int, draw: bool = False):
    """Fit (and draw) every alpha; return the rows and the frames (None each when not drawn), in alpha order.

    Fitting and drawing both happen in the workers: they are the work, and they are independent.
    """
    import sklearn  # noqa: F401  (imported before forking, so the workers inherit it)

    alphas = settings.alphas()
    workers = min(settings.workers or os.cpu_count() or 1, len(alphas))
    if workers <= 1:
        _init(data, settings, seed, draw)
        results = list(progress(map(_work, alphas), "sweep_alpha: fits", total=len(alphas)))
    else:
        if draw:
            pyplot()  # likewise inherited, on its file backend
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with context.Pool(workers, initializer=_init, initargs=(data, settings, seed, draw)) as pool:
            results = list(progress(pool.imap(_work, alphas, chunksize=1), "sweep_alpha: fits", total=len(alphas)))
    return [row for row, _ in results], [frame for _, frame in results]


def summarize(rows: list[dict]) -> dict:
    best = max(rows, key=lambda r: (r["test_accuracy"], -r["alpha"]))
    return {"frames": len(rows), "best_test_accuracy": best["test_accuracy"], "best_alpha": best["alpha"],
            "test_accuracy_at_min_alpha": rows[0]["test_accuracy"],
            "test_accuracy_at_max_alpha": rows[-1]["test_accuracy"],
            "weight_l2_norm_at_min_alpha": rows[0]["weight_l2_norm"],
            "weight_l2_norm_at_max_alpha": rows[-1]["weight_l2_norm"]}


def main(params_path: str = config.PARAMS_FILE) -> None:
    params = config.load(params_path)
    settings = params.iris
    data = load_prepared()
    started = int(time.time() * 1000)
    rows, frames = sweep(data, settings, params.seed, draw=True)
    meta = json.loads(IRIS_META.read_text())
    record = {"settings": config.as_dict(settings), "seed": params.seed, "alphas": [r["alpha"] for r in rows],
              "rows": rows, "summary": summarize(rows), "data": {**meta["source"],
              "train_rows": meta["train_rows"], "test_rows": meta["test_rows"], "features": meta["features"]}}
    stable = {**record, "settings": {k: v for k, v in record["settings"].items() if k != "workers"}}
    record["digest"] = hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()
    columns = ("alpha", "log10_alpha", "train_accuracy", "test_accuracy", "weight_l2_norm", "n_iter")
    table = "\n".join([",".join(columns)] + [
        ",".join("" if r[c] is None else repr(r[c]) for c in columns) for r in rows]) + "\n"
    with atomic.Outputs() as out:
        out.file(SWEEP_GIF, gif_bytes(frames, settings.frame_ms))
        out.file(SWEEP_SUMMARY, summary_png(rows, settings.model))
        out.file(SWEEP_TABLE, table)
        out.json(SWEEP_METRICS, record["summary"])
        out.json(SWEEP_RECORD, record)
    # When it ran, for MLflow: kept out of every DVC output so a re-run writes the same bytes.
    atomic.write_json(SWEEP_TIMES, {"started_ms": started, "ended_ms": int(time.time() * 1000)})
    s = record["summary"]
    print(f"sweep_alpha: {len(rows)} alphas with {settings.model}; test accuracy "
          f"{s['test_accuracy_at_min_alpha']:.2f} at alpha {rows[0]['alpha']:.3g}, "
          f"{s['test_accuracy_at_max_alpha']:.2f} at alpha {rows[-1]['alpha']:.3g}")
