"""What every stage shares, and a stage depends on as one folder (dvc.yaml): params, the catalog of
files and their typed contents, the vocabulary, atomic writes, errors and pinned numerics. Imports
nothing else of the pipeline, and no numerical library at import time.

Every module of it is imported here, so that each stage imports the whole folder it depends on
(tests/test_stage_deps.py holds a folder dep to be imported whole).
"""
# First, before numpy or torch can load: the same arithmetic on every CPU.
from . import numerics

numerics.pin()

from . import atomic, catalog, config, errors, figures, progress, record, summaries, text, vocabulary  # noqa: E402,F401
