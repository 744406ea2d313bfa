"""Two departures from torch's own code, for the pinned torch only: a training process must not
import torch._dynamo, which nothing here uses.

torch.optim wraps Optimizer.step and a few other methods in "never compile" decorators whose
first call imports torch._dynamo: from `import torch` to the first optimizer step, 1.73 s and
1,961 modules in a process without these patches, 0.85 s and 1,133 with them (median of 5 on
this 2-core machine, 2026-12-01): 0.9 s of every one of the 13 training processes, about a
sixth of a variant's training at 100 replicas. Both patches lean on torch internals
(`torch._compile._disable_dynamo`'s wrapper and its cache attribute), so they apply only to the
version they were written against (PINNED, as requirements.txt pins it); on any other, training
runs torch's own way, slower to start, and tests/test_torch_patches.py fails loudly so that
someone looks again.
"""
from __future__ import annotations

import inspect

import torch

PINNED = "2.13.0"


def applies() -> bool:
    return torch.__version__.split("+")[0] == PINNED


def skip_dynamo_import() -> None:
    """Give each "never compile" wrapper of torch.optim.Optimizer the answer it would cache on
    its first call (the plain method) before that call, so that it never imports dynamo."""
    if not applies():
        return
    import torch._compile

    inner = torch._compile._disable_dynamo(lambda: None).__code__
    for attr in vars(torch.optim.Optimizer).values():
        if getattr(attr, "__code__", None) is inner and hasattr(attr, "__wrapped__"):
            setattr(attr.__wrapped__, "__dynamo_disable", attr.__wrapped__)


def plain_step(optimizer):
    """optimizer.step without its compile-time wrapper (which imports dynamo for two graph
    breaks); what the wrapper does besides, no grad during the update, is done here."""
    step = inspect.unwrap(type(optimizer).step)  # under the hooks' wrapper and the compile one
    if not applies() or step is type(optimizer).step:
        return optimizer.step

    def plain():
        with torch.no_grad():
            step(optimizer)

    return plain
