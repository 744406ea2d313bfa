"""Stage report: every dataset's report (dataset.py), then the page across them (overview.py)."""
from __future__ import annotations

from ..core import config
from ..core.record import dataset_records
from . import dataset, overview


def main(params_path: str = config.PARAMS_FILE) -> None:
    """Stage report: every dataset's report, then the page across them (overview.py), in one
    process: its libraries are imported once, each dataset's verdicts computed once."""
    params = config.load(params_path)
    records = {d: dataset_records(params, d) for d in params.datasets}
    tuned = {d: dataset_records(params, d, tuned=True) for d in params.datasets} if params.tuning.enabled else {}
    summaries = {d: dataset.write(d, params, r, tuned.get(d)) for d, r in records.items()}
    overview.write(params, records, {d: fixed for d, (fixed, _) in summaries.items()},
                   tuned, {d: best for d, (_, best) in summaries.items() if best})
