import json

import numpy as np
import pytest
import yaml

from pipeline import config, train
from pipeline.errors import PipelineError
from pipeline.paths import HISTORY, METRICS, RESULTS
from pipeline.preprocess_titanic import load_prepared


def test_a_variant_writes_weights_record_metrics_and_history(prepared, capsys):
    train.main("nll_logsoftmax")
    record = json.loads((RESULTS / "nll_logsoftmax" / "record.json").read_text())
    assert (RESULTS / "nll_logsoftmax" / "model.pt").stat().st_size > 1000
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    assert all(0 <= h["val_accuracy"] <= 1 for h in record["history"])
    assert record["layer_sizes"] == [4, 64, 64, 2]
    assert record["data"]["source"] == "url" and record["data"]["train_rows"] > 0
    assert record["diagnosis"]["status"] == "ok" and record["warning"] is None
    assert sum(map(sum, record["confusion_matrix"])) == record["data"]["val_rows"]
    metrics = json.loads((METRICS / "nll_logsoftmax.json").read_text())
    assert metrics["final_val_accuracy"] == record["history"][-1]["val_accuracy"]
    lines = (HISTORY / "nll_logsoftmax.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,val_loss,val_accuracy" and len(lines) == 3
    # Accuracy is a fraction, printed as a true percentage.
    out = capsys.readouterr().out
    assert f"{record['history'][-1]['val_accuracy']:.2%}" in out


def test_a_mismatched_pairing_is_warned_about_before_training(prepared, capsys):
    train.main("nll_relu")
    assert "warning: variant nll_relu: NLLLoss expects log-probabilities" in capsys.readouterr().err
    record = json.loads((RESULTS / "nll_relu" / "record.json").read_text())
    assert "unbounded below" in record["warning"]
    assert record["diagnosis"]["status"] in ("stalled", "below_lower_bound", "diverging")


def test_same_params_give_the_same_numbers_to_the_last_digit(prepared):
    params = config.load()
    data = load_prepared()
    variant = params.variant("mse")
    _, first, _ = train.train(variant, params.seed, data, progress=False)
    _, second, _ = train.train(variant, params.seed, data, progress=False)
    strip = lambda history: [{k: v for k, v in h.items() if k != "timestamp_ms"} for h in history]  # noqa: E731
    assert strip(first) == strip(second)
    _, other_seed, _ = train.train(variant, params.seed + 1, data, progress=False)
    assert strip(other_seed) != strip(first)


def test_nll_on_relu_runs_below_its_bound_where_the_outputs_live(prepared):
    """The seed's failure: with live ReLU outputs the NLL loss falls without limit."""
    params = config.load()
    data = load_prepared()
    variant = params.variant("nll_relu")
    diverged = []
    for seed in range(1, 6):
        _, history, _ = train.train(variant, seed, data, progress=False)
        diverged.append(min(h["train_loss"] for h in history) < 0)
    assert any(diverged)


def test_a_non_finite_loss_stops_the_variant_with_a_clear_error(prepared):
    params = config.load()
    data = load_prepared()
    data["x_train"] = data["x_train"].copy()
    data["x_train"][3, 2] = np.inf
    with pytest.raises(PipelineError, match="variant mse: the loss became non-finite at epoch 1"):
        train.train(params.variant("mse"), params.seed, data, progress=False)


def test_regularized_variant_records_its_penalty(prepared):
    raw = yaml.safe_load(open("params.yaml"))
    raw["variants"] = {"ce_l2": {"loss": "CrossEntropyLoss", "target_encoding": "index",
                                 "regularization": {"penalty": "l2", "strength": 0.01}}}
    raw["report"] = {"compare": ["ce_l2"]}
    params = config.parse(raw)
    _, history, _ = train.train(params.variant("ce_l2"), params.seed, load_prepared(), progress=False)
    assert all(h["train_penalty"] > 0 for h in history)


def test_a_training_process_does_not_import_dynamo(prepared):
    """torch._dynamo costs 1.4 s a process; training never compiles, so it must not load."""
    import subprocess
    import sys

    from .conftest import ROOT

    code = ("import sys; from pipeline import train; train.main('mse'); "
            "print('torch._dynamo' in sys.modules, 'mlflow' in sys.modules, 'matplotlib' in sys.modules, "
            "'pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False False False False"


def test_the_plain_step_gives_the_same_numbers_as_optimizer_step(prepared):
    import torch

    params = config.load()
    data = load_prepared()
    variant = params.variant("nll_logsoftmax")
    _, plain, _ = train.train(variant, params.seed, data, progress=False)
    original = train._plain_step
    train._plain_step = lambda optimizer: optimizer.step
    try:
        _, wrapped, _ = train.train(variant, params.seed, data, progress=False)
    finally:
        train._plain_step = original
    strip = lambda history: [{k: v for k, v in h.items() if k != "timestamp_ms"} for h in history]  # noqa: E731
    assert strip(plain) == strip(wrapped)
    assert torch.is_grad_enabled()
