"""The catalog: every file a stage reads or writes, named once, relative to the project root
(dvc.yaml says the same). A variant's files carry the names its MLflow run gives them as
artifacts, so publishing logs them as they are.

Kept apart from the stage modules so a stage can name another's files without importing
its libraries (the plot stage must not pay for torch).
"""
from dataclasses import dataclass
from pathlib import Path

SHIPPED = Path("data/shipped")   # each file dataset's copy, for machines that cannot reach its address
# The class column of the raw.csv fetch@ writes itself (a scikit-learn loader's table, whose frames
# name it so, or a KEEL table's); a file dataset's is the column params.yaml names.
RAW_TARGET = "target"


@dataclass(frozen=True)
class DatasetFiles:
    """What fetch@<name> and preprocess@<name> write for one dataset."""
    name: str

    @property
    def shipped(self) -> Path:             # the copy in the repository (a file dataset's)
        return SHIPPED / f"{self.name}.csv"

    @property
    def shipped_source(self) -> Path:      # what it is a copy of: its sha256, origin, address
        return SHIPPED / f"{self.name}.json"

    @property
    def raw(self) -> Path:                 # the table as fetched (a loader's, written as CSV)
        return Path("data") / self.name / "raw.csv"

    @property
    def source(self) -> Path:              # its provenance
        return Path("data") / self.name / "source.json"

    @property
    def prepared(self) -> Path:            # features, labels and each split's rows (npz)
        return Path("data") / self.name / "prepared.npz"

    @property
    def meta(self) -> Path:                # what preprocessing kept, and how
        return Path("data") / self.name / "prepared.json"


RESULTS = Path("results")                  # <dataset>/<variant>/ (VariantFiles)
METRICS = Path("metrics")
PLOTS = Path("plots")
# When each stage ran, for MLflow: not a DVC output, so wall-clock times never change what DVC hashes.
RUN_TIMES = Path("logs/run-times")         # <dataset>/<variant>.json, sweep.json

IRIS_RAW = Path("data/iris/raw.csv")
IRIS_SOURCE = Path("data/iris/source.json")
IRIS_PREPARED = Path("data/iris/prepared.npz")
IRIS_META = Path("data/iris/prepared.json")

SWEEP_RECORD = Path("results/iris/sweep.json")       # per-alpha results, for publishing
SWEEP_METRICS = Path("metrics/iris/sweep.json")      # summary for `dvc metrics show`
SWEEP_TABLE = Path("plots/iris/alpha_sweep.csv")     # per-alpha table, a DVC plot
SWEEP_GIF = Path("plots/iris/alpha_sweep.gif")       # the decision boundary, frame by frame
SWEEP_SUMMARY = Path("plots/iris/alpha_summary.png")  # accuracies and weight norm against alpha
SWEEP_TIMES = RUN_TIMES / "sweep.json"



@dataclass(frozen=True)
class VariantFiles:
    """What train@<dataset> writes for one variant."""
    name: str
    dataset: str

    @property
    def stage(self) -> str:
        return f"train@{self.dataset}"

    @property
    def results(self) -> Path:             # a DVC output (cached) of the train stage
        return RESULTS / self.dataset / self.name

    @property
    def model(self) -> Path:               # the canonical replica's state dict
        return self.results / "model.pt"

    @property
    def record(self) -> Path:              # the typed training record (core/record.py)
        return self.results / "record.json"

    @property
    def replicas(self) -> Path:            # every replica's per-epoch history
        return self.results / "replicas.csv"

    @property
    def tuned_record(self) -> Path:        # the tuned study's record (study/tuning.py), when it runs
        return self.results / "tuned.json"

    @property
    def inputs(self) -> Path:              # what it was trained from (study/inputs.py)
        return self.results / "inputs.json"

    @property
    def metrics(self) -> Path:             # `dvc metrics show`
        return METRICS / self.dataset / f"{self.name}.json"

    @property
    def history(self) -> Path:             # the canonical run per epoch, a DVC plot
        return PLOTS / self.dataset / "history" / self.name / "history.csv"

    @property
    def figures(self) -> Path:             # its figures, in train@<dataset>'s folder of them
        return figures(self.dataset) / self.name

    @property
    def loss_curve(self) -> Path:
        return self.figures / "loss_curve.png"

    @property
    def confusion_matrix(self) -> Path:
        return self.figures / "confusion_matrix.png"

    @property
    def run_times(self) -> Path:
        return RUN_TIMES / self.dataset / f"{self.name}.json"

    def outputs(self, tuned: bool = False) -> tuple[Path, ...]:
        """Everything train@<dataset> writes for it (inputs.json last, once the rest is in place),
        the tuned study's record too when it runs."""
        return (self.model, self.record, self.replicas, *((self.tuned_record,) if tuned else ()), self.metrics,
                self.history, self.loss_curve, self.confusion_matrix, self.inputs)

    def artifacts(self) -> tuple[Path, ...]:
        """The files its MLflow run holds, under these names."""
        return (self.record, self.replicas, self.history, self.loss_curve, self.confusion_matrix)


def figures(dataset: str) -> Path:
    """train@<dataset>'s figures: a folder per variant."""
    return PLOTS / dataset / "figures"


@dataclass(frozen=True)
class ReportFiles:
    """What the report stage writes for one dataset."""
    dataset: str

    @property
    def folder(self) -> Path:
        return Path("reports") / self.dataset

    @property
    def comparison_md(self) -> Path:
        return self.folder / "comparison.md"

    @property
    def comparison_csv(self) -> Path:
        return self.folder / "comparison.csv"

    @property
    def summary(self) -> Path:             # what publishing reads
        return self.folder / "summary.json"

    @property
    def tuned_summary(self) -> Path:       # the tuned study's (study/tuning.py), when it runs
        return self.folder / "tuned_summary.json"

    @property
    def intervals(self) -> Path:
        return self.folder / "intervals.png"

    @property
    def compare(self) -> Path:             # the variants of report.compare together
        return self.folder / "compare.png"

    def contrast(self, contrast: str) -> Path:
        return self.folder / f"contrast_{contrast}.png"



# The study across datasets (stage across).
ACROSS = Path("reports/across")
ACROSS_MD = ACROSS / "comparison.md"
ACROSS_CSV = ACROSS / "comparison.csv"
ACROSS_SUMMARY = ACROSS / "summary.json"
ACROSS_TUNED_SUMMARY = ACROSS / "tuned_summary.json"  # the tuned study's, when it runs
ACROSS_CHOSEN = ACROSS / "chosen_lr.png"            # the rates its splits chose, per dataset and variant
ACROSS_NORMALISED = ACROSS / "normalised.png"      # normalised accuracy per dataset and across them
ACROSS_RANKS = ACROSS / "critical_difference.png"  # mean ranks with the Nemenyi critical difference
