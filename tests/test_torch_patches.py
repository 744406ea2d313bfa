"""The two patches of torch internals (pipeline/study/torch_patches.py): written against the
pinned torch, and only worth their place while a training process then skips torch._dynamo."""
import os
import subprocess
import sys

import numpy as np
import torch

from pipeline.core import config
from pipeline.study import torch_patches, train
from pipeline.data.preprocess import load_prepared
from pipeline.data.splits import replicas

from .conftest import ROOT


def test_the_patches_were_written_for_this_torch():
    """On another torch the patches stand aside (training still runs, slower to start): this
    fails so that someone checks them against the new version and moves PINNED, or drops them."""
    pinned = next(line.split("==")[1].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("torch=="))
    assert torch_patches.PINNED == pinned.split("+")[0]
    assert torch_patches.applies(), (f"torch {torch.__version__} is not the pinned {torch_patches.PINNED}: "
                                     f"check pipeline/study/torch_patches.py against it")


def test_a_training_process_does_not_import_dynamo(prepared):
    """torch._dynamo costs 1.4 s a process; training never compiles, so it must not load."""
    code = ("import sys; from pipeline.study import train; train.main('titanic', 'mse'); "
            "print('torch._dynamo' in sys.modules, 'mlflow' in sys.modules, 'matplotlib' in sys.modules, "
            "'pandas' in sys.modules, 'scipy.stats' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    # matplotlib: the stage draws each variant's two figures as it trains it (study/plots.py).
    assert done.stdout.strip().splitlines()[-1] == "False False True False False"


def test_the_plain_step_gives_the_same_numbers_as_optimizer_step(prepared, monkeypatch):
    variant = config.load().variant("nll_logsoftmax")
    data = load_prepared("titanic")
    plain = train.train(variant, replicas(42, 2, 2), data, progress=False)
    monkeypatch.setattr(torch_patches, "plain_step", lambda optimizer: optimizer.step)
    wrapped = train.train(variant, replicas(42, 2, 2), data, progress=False)
    assert np.array_equal(plain.train_loss, wrapped.train_loss)
    assert torch.is_grad_enabled()
