"""Pinned numerics (pipeline/core/numerics.py): a process that imports the pipeline computes with the
pinned code paths whatever its environment asked for, and says so when it was pinned too late.
The byte-for-byte study under another CPU's dispatch is test_pipeline_e2e.py's."""
import json
import os
import subprocess
import sys

from pipeline.core import numerics

from .conftest import ROOT

# What another machine's dispatch would choose, each unlike the pinned value and unlike what any
# AVX2 or AVX-512 CPU picks by itself: torch's scalar kernels, MKL's SSE4.2 branch, OpenBLAS's
# oldest x86-64 kernels, numpy's AVX-512 loops, two threads.
OTHER_CPU = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "SSE4_2", "OPENBLAS_CORETYPE": "Prescott",
             "NPY_ENABLE_CPU_FEATURES": "X86_V4", "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}

REPORT = """
import json
{first}
import numpy, scipy.linalg, torch
{then}
from pipeline.core import numerics
torch.ones(2).exp()  # torch chooses its kernels at the first op
print(json.dumps({{"unpinned": numerics.unpinned(), "torch": torch.backends.cpu.get_cpu_capability()}}))
"""


def report(first: str, then: str) -> dict:
    done = subprocess.run([sys.executable, "-c", REPORT.format(first=first, then=then)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **OTHER_CPU, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_pipeline_imported_first_overrides_another_cpu_s_dispatch():
    found = report("import pipeline", "")
    assert found == {"unpinned": [], "torch": "AVX2"}


def test_numpy_loaded_before_the_pipeline_is_named_not_silently_computed_with():
    found = report("", "import pipeline")
    assert any("numpy's loops use" in line for line in found["unpinned"]), found
    assert any(line.startswith("OpenBLAS") for line in found["unpinned"]), found


def test_a_stage_pinned_too_late_stops_with_one_line(tmp_path):
    """`python -m pipeline` checks once the stage's libraries are loaded: here a sitecustomize
    loads numpy before the pipeline can pin it."""
    (tmp_path / "sitecustomize.py").write_text("import numpy\n")
    done = subprocess.run([sys.executable, "-m", "pipeline", "experiments"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, **OTHER_CPU, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: numerics not pinned: ") and "numpy's loops use" in line


def test_this_test_process_is_pinned():
    """conftest imports the pipeline before numpy: what a test computes in-process is what a stage computes."""
    assert numerics.unpinned() == []
