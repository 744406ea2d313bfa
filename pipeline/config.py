"""params.yaml, read and validated once into typed objects.

Every stage calls `load()`; all problems in the file are reported together, each naming
its key, so a user fixes them in one pass. Nothing downstream touches the YAML.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PipelineError
from .losses import LAST_ACTIVATIONS, LOSSES, TARGET_ENCODINGS

PARAMS_FILE = "params.yaml"
PENALTIES = ("none", "l1", "l2", "elasticnet")
OPTIMIZERS = ("adam", "sgd")
SWEEP_MODELS = ("mlp", "ridge")


@dataclass(frozen=True)
class Regularization:
    penalty: str = "none"
    strength: float = 0.0
    l1_ratio: float = 0.5  # elasticnet only: the share of the L1 term


@dataclass(frozen=True)
class Training:
    hidden_size: int = 64
    hidden_layers: int = 2
    optimizer: str = "adam"
    lr: float = 0.001
    batch_size: int = 32
    epochs: int = 20
    shuffle: bool = True
    standardize: bool = True  # the notebook's StandardScaler, fitted on each split's training part
    regularization: Regularization = field(default_factory=Regularization)


@dataclass(frozen=True)
class Variant:
    name: str
    loss: str
    last_activation: str
    target_encoding: str
    outputs: int
    training: Training
    contrast: str | None = None  # variants sharing it are compared side by side


@dataclass(frozen=True)
class TitanicData:
    url: str
    sha256: str
    timeout: float = 10.0
    test_size: float = 0.2


@dataclass(frozen=True)
class Study:
    """Each variant trains seeds x splits replicas; the report compares them with `reference`."""
    seeds: int = 5            # replica seeds: seed, seed + 1, ...
    splits: int = 5           # train/validation splits; split k uses random_state seed + k
    reference: str = "cross_entropy"
    confidence: float = 0.95  # of every interval; 1 - confidence is the tests' level

    @property
    def replicas(self) -> int:
        return self.seeds * self.splits


@dataclass(frozen=True)
class IrisSweep:
    alpha_min: float = 1e-3
    alpha_max: float = 1e3
    alpha_count: int = 20     # alphas spaced evenly on a log scale, ends included
    model: str = "mlp"        # mlp (what the seed ran) | ridge (what its homework text asks for)
    neurons: int = 10
    max_iter: int = 1000
    frame_ms: int = 500
    workers: int = 0          # processes for the fits; 0: one per core
    test_size: float = 0.3

    def alphas(self) -> list[float]:
        import numpy as np

        return np.logspace(np.log10(self.alpha_min), np.log10(self.alpha_max), self.alpha_count).tolist()


@dataclass(frozen=True)
class Params:
    seed: int
    titanic: TitanicData
    training: Training
    variants: dict[str, Variant]
    study: Study = field(default_factory=Study)
    iris: IrisSweep = field(default_factory=IrisSweep)
    # Variants drawn together in the report's third figure (the contrast pairs come from `contrast`).
    report_compare: tuple[str, ...] = ()

    def variant(self, name: str) -> Variant:
        if name not in self.variants:
            raise PipelineError(f"{PARAMS_FILE}: variants: no variant named {name!r} "
                                f"(known: {', '.join(self.variants)})")
        return self.variants[name]


class _Checker:
    """Collects every problem instead of stopping at the first."""

    def __init__(self):
        self.errors: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.errors.append(f"{key}: {message}")

    def section(self, raw, key: str, allowed: set[str]) -> dict:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.fail(key, f"must be a mapping, got {raw!r}")
            return {}
        for unknown in sorted(set(raw) - allowed):
            self.fail(f"{key}.{unknown}" if key else unknown, f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return raw

    def number(self, raw: dict, key: str, name: str, default, kind, low=None, low_open=False, high=None, high_open=False):
        value = raw.get(name, default)
        path = f"{key}.{name}" if key else name
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            self.fail(path, f"must be {'an integer' if kind is int else 'a number'}, got {value!r}")
            return default
        if low is not None and (value <= low if low_open else value < low):
            self.fail(path, f"must be {'>' if low_open else '>='} {low}, got {value!r}")
        if high is not None and (value >= high if high_open else value > high):
            self.fail(path, f"must be {'<' if high_open else '<='} {high}, got {value!r}")
        return kind(value)

    def choice(self, raw: dict, key: str, name: str, default, choices):
        value = raw.get(name, default)
        if value not in choices:
            self.fail(f"{key}.{name}", f"unknown value {value!r} (choose from {', '.join(map(str, choices))})")
        return value

    def flag(self, raw: dict, key: str, name: str):
        value = raw.get(name)
        if not isinstance(value, bool):
            self.fail(f"{key}.{name}", f"must be true or false, got {value!r}")
        return bool(value)

    def text(self, raw: dict, key: str, name: str, default):
        value = raw.get(name, default)
        if not isinstance(value, str) or not value:
            self.fail(f"{key}.{name}", f"must be a non-empty string, got {value!r}")
        return value


def _regularization(c: _Checker, raw, key: str, base: Regularization) -> Regularization:
    raw = c.section(raw, key, {f.name for f in dataclasses.fields(Regularization)})
    return Regularization(
        penalty=c.choice(raw, key, "penalty", base.penalty, PENALTIES),
        strength=c.number(raw, key, "strength", base.strength, float, low=0),
        l1_ratio=c.number(raw, key, "l1_ratio", base.l1_ratio, float, low=0, high=1),
    )


_TRAINING_KEYS = {f.name for f in dataclasses.fields(Training)}


def _training(c: _Checker, raw: dict, key: str, base: Training) -> Training:
    """Settings under `key`; a setting it does not name is inherited from `base`, already checked."""
    def own(name, check):
        return check() if name in raw else getattr(base, name)

    return Training(
        hidden_size=own("hidden_size", lambda: c.number(raw, key, "hidden_size", None, int, low=1)),
        hidden_layers=own("hidden_layers", lambda: c.number(raw, key, "hidden_layers", None, int, low=1)),
        optimizer=own("optimizer", lambda: c.choice(raw, key, "optimizer", None, OPTIMIZERS)),
        lr=own("lr", lambda: c.number(raw, key, "lr", None, float, low=0, low_open=True)),
        batch_size=own("batch_size", lambda: c.number(raw, key, "batch_size", None, int, low=1)),
        epochs=own("epochs", lambda: c.number(raw, key, "epochs", None, int, low=1)),
        shuffle=own("shuffle", lambda: c.flag(raw, key, "shuffle")),
        standardize=own("standardize", lambda: c.flag(raw, key, "standardize")),
        regularization=own("regularization", lambda: _regularization(c, raw["regularization"],
                                                                    f"{key}.regularization", base.regularization)),
    )


# A variant's name becomes the stage train@<name> and a command-line argument: DVC and the shell
# must carry it whole.
VARIANT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def _variant(c: _Checker, name: str, raw, shared: Training) -> Variant:
    key = f"variants.{name}"
    if not VARIANT_NAME.fullmatch(name):
        c.fail(f"variants.{name!r}", "a variant's name must start with a letter and hold only letters, digits, "
                                     "'_' and '-' (it becomes the stage train@<name>)")
    own = {"loss", "last_activation", "target_encoding", "outputs", "contrast"}
    raw = c.section(raw, key, own | _TRAINING_KEYS)
    loss = c.choice(raw, key, "loss", None, tuple(LOSSES))
    activation = c.choice(raw, key, "last_activation", "none", LAST_ACTIVATIONS)
    encoding = c.choice(raw, key, "target_encoding", None, tuple(TARGET_ENCODINGS))
    outputs = c.number(raw, key, "outputs", TARGET_ENCODINGS.get(encoding, 1), int, low=1)
    if loss in LOSSES and encoding in TARGET_ENCODINGS:
        if encoding not in LOSSES[loss].encodings:
            c.fail(f"{key}.target_encoding", f"{loss} cannot take {encoding!r} targets "
                                             f"(it takes {', '.join(LOSSES[loss].encodings)})")
        elif outputs != TARGET_ENCODINGS[encoding]:
            c.fail(f"{key}.outputs", f"{encoding!r} targets need {TARGET_ENCODINGS[encoding]} "
                                     f"output(s) for this two-class problem, got {outputs}")
    contrast = raw.get("contrast")
    if contrast is not None and not isinstance(contrast, str):
        c.fail(f"{key}.contrast", f"must be a string, got {contrast!r}")
    return Variant(name=name, loss=loss, last_activation=activation, target_encoding=encoding,
                   outputs=outputs, training=_training(c, raw, key, shared), contrast=contrast)


def _iris(c: _Checker, raw) -> IrisSweep:
    key, base = "iris", IrisSweep()
    raw = c.section(raw, key, {f.name for f in dataclasses.fields(IrisSweep)})
    sweep = IrisSweep(
        alpha_min=c.number(raw, key, "alpha_min", base.alpha_min, float, low=0, low_open=True),
        alpha_max=c.number(raw, key, "alpha_max", base.alpha_max, float, low=0, low_open=True),
        alpha_count=c.number(raw, key, "alpha_count", base.alpha_count, int, low=1),
        model=c.choice(raw, key, "model", base.model, SWEEP_MODELS),
        neurons=c.number(raw, key, "neurons", base.neurons, int, low=1),
        max_iter=c.number(raw, key, "max_iter", base.max_iter, int, low=1),
        frame_ms=c.number(raw, key, "frame_ms", base.frame_ms, int, low=1),
        workers=c.number(raw, key, "workers", base.workers, int, low=0),
        test_size=c.number(raw, key, "test_size", base.test_size, float, low=0, low_open=True, high=1,
                           high_open=True),
    )
    if sweep.alpha_max < sweep.alpha_min:
        c.fail("iris.alpha_max", f"{sweep.alpha_max:g} is below iris.alpha_min {sweep.alpha_min:g}: "
                                 f"the alpha range is reversed")
    return sweep


def _study(c: _Checker, raw, variants: dict) -> Study:
    key, base = "study", Study()
    raw = c.section(raw, key, {f.name for f in dataclasses.fields(Study)})
    study = Study(
        seeds=c.number(raw, key, "seeds", base.seeds, int, low=1),
        splits=c.number(raw, key, "splits", base.splits, int, low=1),
        reference=c.text(raw, key, "reference", base.reference),
        confidence=c.number(raw, key, "confidence", base.confidence, float, low=0, low_open=True, high=1,
                            high_open=True),
    )
    if variants and isinstance(study.reference, str) and study.reference not in variants:
        c.fail("study.reference", f"no variant named {study.reference!r} (known: {', '.join(variants)})")
    return study


def parse(raw) -> Params:
    """Validate a params mapping; raise one PipelineError listing every problem."""
    c = _Checker()
    raw = c.section(raw, "", {"seed", "titanic", "train", "variants", "study", "iris", "report"})
    seed = c.number(raw, "", "seed", 42, int, low=0)
    t = c.section(raw.get("titanic"), "titanic", {f.name for f in dataclasses.fields(TitanicData)})
    titanic = TitanicData(
        url=c.text(t, "titanic", "url", None),
        sha256=c.text(t, "titanic", "sha256", None),
        timeout=c.number(t, "titanic", "timeout", 10.0, float, low=0, low_open=True),
        test_size=c.number(t, "titanic", "test_size", 0.2, float, low=0, low_open=True, high=1, high_open=True),
    )
    shared = _training(c, c.section(raw.get("train"), "train", _TRAINING_KEYS), "train", Training())
    variants_raw = raw.get("variants")
    if not isinstance(variants_raw, dict) or not variants_raw:
        c.fail("variants", "must be a non-empty mapping of variant name to settings")
        variants_raw = {}
    variants = {str(name): _variant(c, str(name), spec, shared) for name, spec in variants_raw.items()}
    study = _study(c, raw.get("study"), variants)
    iris = _iris(c, raw.get("iris"))
    report = c.section(raw.get("report"), "report", {"compare"})
    compare = report.get("compare", [])
    if not isinstance(compare, list):
        c.fail("report.compare", f"must be a list of variant names, got {compare!r}")
        compare = []
    for name in compare:
        if name not in variants:
            c.fail("report.compare", f"no variant named {name!r}")
    if c.errors:
        raise PipelineError(f"{PARAMS_FILE}: " + "; ".join(c.errors))
    return Params(seed=seed, titanic=titanic, training=shared, variants=variants, study=study, iris=iris,
                  report_compare=tuple(compare))


def load(path: str | os.PathLike = PARAMS_FILE) -> Params:
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found (run from the project's root)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise PipelineError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse(raw)


def as_dict(obj) -> dict:
    return dataclasses.asdict(obj)
