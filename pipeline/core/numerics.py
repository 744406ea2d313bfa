"""Pinned numerics: every process that computes a number the pipeline writes runs the same
arithmetic on any x86-64 CPU with AVX2, so a fresh clone's `make repro` writes the committed
bytes whichever CPU it gets (docs/pipeline.md, "Same bytes on every CPU").

Unpinned, each library picks its code path from the CPU it finds: torch's vectorised kernels
(AVX2 or AVX-512), MKL, torch's BLAS (per ISA, and per vendor: it takes other paths on AMD than on
Intel), numpy's own SIMD loops (its AVX-512 exp and log differ from the AVX2 ones in the last
bit) and OpenBLAS, numpy's and scipy's BLAS (a kernel per core type). Sums are then taken in
another order and the last bits move. Every one of them reads an environment variable when it
loads or first computes, so the pin is a set of variables, set here before any of them loads:
`pipeline/core/__init__.py` calls `pin()` first thing, so every `python -m pipeline` stage gets it, its
child processes inherit it, and the Ray backend passes it to every worker (backends.py).
"""
from __future__ import annotations

import os
import sys

# What each library is told, and why this value.
PINNED = {
    # torch's own kernels (elementwise, reductions, softmax, fused Adam): the AVX2 build of each,
    # which every AVX2 CPU runs alike (torch.backends.cpu.get_cpu_capability() reads "AVX2").
    "ATEN_CPU_CAPABILITY": "avx2",
    # MKL's conditional numerical reproducibility: the one branch MKL documents as giving the same
    # results on every Intel and Intel-compatible CPU (its AVX2 branch is only so on Intel's: on
    # AMD MKL falls back to its automatic dispatch). torch's matmuls run through it; the training's
    # own are numpy's (OpenBLAS, below: study/model.py's StackedLinear), 2 to 3x faster than this.
    # Not MKL's vector math, which torch's float sqrt runs on: its bits stay the CPU's whatever
    # this says (measured: one AMD gave the same under every value), so the study takes no
    # torch.sqrt (study/losses.py's cosine_to_one).
    "MKL_CBWR": "COMPATIBLE",
    # oneDNN, torch's other kernel library (nothing here is known to reach it; pinned all the same).
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    # numpy's SIMD loops: AVX2 (numpy's X86_V3 group) and nothing newer.
    "NPY_ENABLE_CPU_FEATURES": "X86_V3",
    # OpenBLAS, in numpy's and scipy's wheels (the Iris sweep's MLP, the statistics): the Haswell
    # (AVX2) kernels on every CPU.
    "OPENBLAS_CORETYPE": "Haswell",
    # One thread each: a reduction split over threads sums in another order with another count
    # (and on 2 busy cores a second thread is ~10x slower for these small matrices).
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}

def pin() -> None:
    """Set PINNED in this process's environment (and so every child's). A library loaded before
    this call keeps what it chose: `unpinned()` says so."""
    os.environ.update(PINNED)


def unpinned() -> list[str]:
    """What in this process computes otherwise than PINNED says, one phrase each (empty: pinned)."""
    found = [f"{key}={os.environ.get(key)!r} (pinned: {value!r})" for key, value in PINNED.items()
             if os.environ.get(key) != value]
    if "torch" in sys.modules:
        capability = sys.modules["torch"].backends.cpu.get_cpu_capability()
        if capability != "AVX2":
            found.append(f"torch's kernels run {capability} (pinned: AVX2)")
    if "numpy" in sys.modules:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

        chosen = [group for group in __cpu_dispatch__ if __cpu_features__.get(group)]
        if chosen != [PINNED["NPY_ENABLE_CPU_FEATURES"]]:
            found.append(f"numpy's loops use {', '.join(chosen) or 'no SIMD group'} "
                         f"(pinned: {PINNED['NPY_ENABLE_CPU_FEATURES']})")
        from threadpoolctl import threadpool_info  # scikit-learn's, so always installed

        for blas in threadpool_info():
            if blas.get("internal_api") == "openblas" and blas.get("architecture") != PINNED["OPENBLAS_CORETYPE"]:
                found.append(f"OpenBLAS ({blas['filepath']}) runs {blas.get('architecture')} kernels "
                             f"(pinned: {PINNED['OPENBLAS_CORETYPE']})")
    return found


def check() -> None:
    """Raise PipelineError naming what is not pinned: numbers computed so would differ in their
    last bits from those written on another CPU."""
    found = unpinned()
    if found:
        from .errors import PipelineError

        raise PipelineError("numerics not pinned: " + "; ".join(found) + " (numpy or torch was imported before "
                            "`pipeline`; run the stage as `python -m pipeline ...`, or import pipeline first)")
