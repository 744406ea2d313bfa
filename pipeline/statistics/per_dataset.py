"""Statistics of a replicated study: how sure we are of each variant, and of each difference.

A study trains every variant on J train/validation splits of one dataset, S seeds on each
(seeds nested in splits: every replica has its own). A replica's accuracy is the split's effect
(which rows trained it, which judge it) plus its seed's (initial weights, shuffling). Splits
overlap (their training sets share most rows), so their effects are correlated and the split
means' variance s_b^2 / J understates the variance of the study's mean; Nadeau and Bengio
("Inference for the Generalization Error", Machine Learning 52, 2003) correct it to
(1/J + n_validation/n_train) s_b^2. The seed's part is not shared: each replica draws its own, so
it is independent across splits and the correction must not stretch it (Bouthillier et al.,
"Accounting for Variance in Machine Learning Benchmarks", MLSys 2021, separate these sources of
variance; Bouckaert and Frank, PAKDD 2004, on the replicability of such corrected tests). With
s_w^2 the replicas' pooled variance within a split, s_b^2 - s_w^2 / S estimates the split effects'
part of s_b^2, and the variance of the study's mean is

    V = (1/J + n_validation/n_train) * max(s_b^2 - s_w^2 / S, 0) + s_w^2 / (S J)

with J - 1 degrees of freedom (statistics/coverage.py simulates this very design with the
project's own trainer: the differences' intervals cover the truth as promised where Nadeau-Bengio
on the whole of s_b^2 covers nearly every time; at 714 rows a variant's own interval covers about
90% at 95%, docs/study.md). Every interval and test here uses that variance:

- per variant, its mean final validation accuracy with the corrected t interval;
- against the reference, paired by replica (same seed, same split): the mean difference, its
  corrected t interval and two-sided test, and the two one-sided tests (TOST; Schuirmann 1987)
  that the difference lies within +-margin, a margin fixed before the study (`study.margin`);
- p-values corrected with Holm's method (Holm 1979) over the family of distinct hypotheses: a
  variant whose replicas are byte-identical to another's is the same hypothesis, not a new one;
- verdicts: better or worse when the difference test rejects and the estimate lies beyond the
  margin; "better, below the margin" (or worse) when it rejects with the estimate within it (a
  difference shown, practically nothing by the study's own margin); equivalent when TOST rejects;
  inconclusive otherwise (no evidence either way: not the same as equivalent), with the splits
  that would resolve it at this many rows, or that none would (`resolving_splits`);
- the probability of improvement, the share of replica pairs the variant wins, ties half
  (Bouthillier et al., "Accounting for Variance in Machine Learning Benchmarks", MLSys 2021),
  with a bootstrap interval that resamples whole splits;
- the champion by a rule fixed in advance: the reference, unless a variant is verdict better
  than it (its interval at Holm's level beyond the margin); among several, the best mean. A best-mean pick would follow noise (winner's curse).

V is computed once, in `estimate`; intervals, the test and TOST are Student's t on its standard
error with J - 1 degrees of freedom (scipy).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from ..core.vocabulary import (BETTER, BETTER_BELOW, BETTER_UNSIZED, EQUIVALENT, INCONCLUSIVE, REFERENCE, UNTESTED,
                               WORSE, WORSE_BELOW, WORSE_UNSIZED, identical_to)

METHOD = ("corrected resampled t (Nadeau-Bengio on the split effects, the seeds' variance apart), "
          "J - 1 degrees of freedom")
CHAMPION_RULE = ("the reference stays the champion unless a variant is verdict better than it (by more than "
                 "the margin); among several better ones, the best mean")


def split_means(grid: np.ndarray) -> np.ndarray:
    """(seeds, splits) values, NaN for replicas left out, -> one mean per split that has any."""
    grid = np.asarray(grid, dtype=float)
    kept = np.isfinite(grid).any(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(grid[:, kept], axis=0)


@dataclass(frozen=True)
class Within:
    """The replicas' spread within a split: s_w^2 pooled over the splits with two or more (ddof 1
    each), the seeds per split S (their harmonic mean where replicas are missing) and the
    pooled variance's degrees of freedom (0 with one seed a split: all its variance is between)."""
    variance: float
    seeds: float
    df: int


def within_split(grid: np.ndarray) -> Within:
    grid = np.asarray(grid, dtype=float)
    counts = np.isfinite(grid).sum(axis=0)
    several = counts >= 2
    if not several.any():
        return Within(0.0, 1.0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        squares = np.nansum((grid[:, several] - np.nanmean(grid[:, several], axis=0)) ** 2, axis=0)
    kept = counts[counts > 0]
    df = int((counts[several] - 1).sum())
    return Within(float(squares.sum() / df), float(len(kept) / (1 / kept).sum()), df)


def variance_of_mean(between: float, within: Within, splits, test_share: float):
    """(V, its degrees of freedom J - 1) of the module's docstring, from s_b^2 (the J split means'
    variance), s_w^2 and S: V = (1/J + r) max(s_b^2 - s_w^2 / S, 0) + s_w^2 / (S J) on J - 1.

    Satterthwaite's (1946) degrees of freedom for V = a s_b^2 - c s_w^2 were tried: where the
    split effects' part is small they fall towards 1, and on this design's simulation
    (statistics/coverage.py, 400 studies) they widened the difference intervals 1.7 times on
    average for the same coverage (96.0% either way); J - 1 keeps the coverage the test asks of it."""
    effects = max(between - within.variance / within.seeds, 0.0)
    # `splits` an int, or an array of them (resolving_splits asks at every J at once).
    return (1 / splits + test_share) * effects + within.variance / (within.seeds * splits), splits - 1


@dataclass(frozen=True)
class Estimate:
    """A study's mean over its split means, with sqrt(V) as its standard error on `df` degrees of
    freedom: intervals, the test of zero and TOST computed from them (Student's t, scipy)."""
    mean: float
    se: float
    df: float

    def interval(self, alpha: float) -> tuple[float, float]:
        from scipy import stats

        half = stats.t.ppf(1 - alpha / 2, self.df) * self.se
        return self.mean - half, self.mean + half

    def p_zero(self) -> float:
        from scipy import stats

        return float(2 * stats.t.sf(abs(self.mean) / self.se, self.df))

    def p_within(self, margin: float) -> float:
        """TOST (Schuirmann 1987): the larger of the one-sided p-values of mean <= -margin and
        mean >= +margin."""
        from scipy import stats

        return float(max(stats.t.sf((self.mean + margin) / self.se, self.df),
                         stats.t.cdf((self.mean - margin) / self.se, self.df)))


def estimate(grid: np.ndarray, test_share: float) -> Estimate | None:
    """The (seeds, splits) grid's mean with the seed-aware corrected variance; None with fewer
    than two splits or no spread at all (V = 0). test_share = n_validation / n_train."""
    means = split_means(grid)
    if len(means) < 2:
        return None
    variance, df = variance_of_mean(float(np.var(means, ddof=1)), within_split(grid), len(means), test_share)
    # Below rounding's reach (a standard error under 1e-12): values equal up to their last bits
    # have no spread to weigh a difference against.
    if not variance > 1e-24:
        return None
    return Estimate(float(means.mean()), math.sqrt(variance), float(df))


def stretch(grid: np.ndarray, test_share: float, confidence: float) -> float:
    """How far to stretch a (seeds, splits) grid's split means about their mean so that a
    percentile bootstrap over them gives the t interval of the seed-aware V (statistics/across.py):
    the resampled mean's variance is the split means' spread (ddof 0) over J, so the factor is
    sqrt(V / (s0^2 / J)), times t_(J-1) / z at `confidence` (the percentile interval's quantiles
    are the normal's). 1 where there is nothing to stretch (no spread, or under two splits)."""
    from scipy import stats

    means = split_means(grid)
    found = estimate(grid, test_share)
    plain = float(np.var(means)) / len(means) if len(means) > 1 else 0.0
    if found is None or not plain > 0:
        return 1.0
    tail = (1 + confidence) / 2
    return max(math.sqrt(found.se ** 2 / plain) * stats.t.ppf(tail, found.df) / stats.norm.ppf(tail), 1.0)


def mean_interval(grid: np.ndarray, test_share: float, confidence: float) -> dict:
    """A variant's mean over its replicas with the corrected t interval over its split means;
    sd is the replicas' spread (ddof 1)."""
    values = np.asarray(grid, dtype=float)
    finite = values[np.isfinite(values)]
    means = split_means(values)
    mean = float(means.mean()) if len(means) else math.nan
    out = {"n": int(finite.size), "splits": int(len(means)), "mean": mean,
           "sd": float(finite.std(ddof=1)) if finite.size > 1 else 0.0, "ci_low": mean, "ci_high": mean}
    found = estimate(values, test_share)
    if found is not None:
        low, high = found.interval(1 - confidence)
        out["ci_low"], out["ci_high"] = float(low), float(high)
    return out


def paired_test(differences: np.ndarray, test_share: float, confidence: float, margin: float) -> dict:
    """Variant minus reference, shaped (seeds, splits), NaN where either replica was left out.

    Returns the mean difference with its corrected interval, the two-sided p-value of "no
    difference" and the TOST p-value of "a difference within +-margin"."""
    means = split_means(differences)
    mean = float(means.mean()) if len(means) else math.nan
    out = {"diff": mean, "diff_low": mean, "diff_high": mean, "p": math.nan, "p_equivalence": math.nan,
           "splits": int(len(means)), "resolving_splits": None}
    if len(means) < 2:
        return out
    found = estimate(differences, test_share)
    if found is None:  # the same difference in every replica: no spread to weigh it against
        out["p"] = 1.0 if mean == 0 else 0.0
        out["p_equivalence"] = 0.0 if abs(mean) < margin else 1.0
        return out
    low, high = found.interval(1 - confidence)
    out.update(diff_low=float(low), diff_high=float(high), p=found.p_zero(), p_equivalence=found.p_within(margin))
    return out


MOST_SPLITS = 10_000  # beyond this a study is not "more splits" but another design


def resolving_splits(differences: np.ndarray, test_share: float, alpha: float, alpha_equivalence: float,
                     margin: float) -> int | None:
    """The fewest splits (as many seeds each) at which this estimate and these variances would
    give a decision at these levels (Holm's for this hypothesis): the interval clear of 0 (a
    difference) or TOST's within +-margin; None when no number of splits would. V's split-effect
    part (n_validation/n_train) s^2 does not shrink with J: the splits share their rows, so with
    this many rows an estimate near the margin stays undecided however many splits are drawn.
    The levels stay as Holm set them now; other hypotheses' p-values would move too, so it is an
    estimate, not a promise."""
    from scipy import stats

    means = split_means(differences)
    diff = abs(float(means.mean()))
    within = within_split(differences)
    j = np.arange(len(means), MOST_SPLITS + 1)
    # V at J = j splits, the variances as estimated now, on j - 1.
    variance, _ = variance_of_mean(float(np.var(means, ddof=1)), within, j, test_share)
    df = j - 1
    se = np.sqrt(variance)
    decided = (diff > stats.t.ppf(1 - alpha / 2, df) * se) | (diff + stats.t.ppf(1 - alpha_equivalence, df) * se < margin)
    return int(j[np.argmax(decided)]) if decided.any() else None


def probability_of_improvement(variant: np.ndarray, reference: np.ndarray, confidence: float,
                               seed: int) -> dict:
    """P(variant > reference) over the replica pairs, ties half: each split's share of wins, their
    mean, and a percentile bootstrap interval that resamples whole splits (scipy.stats.bootstrap)."""
    from scipy import stats

    variant, reference = np.asarray(variant, dtype=float), np.asarray(reference, dtype=float)
    both = np.isfinite(variant) & np.isfinite(reference)
    wins = np.where(both, (variant > reference) + 0.5 * (variant == reference), np.nan)
    shares = split_means(wins)
    p = float(shares.mean()) if len(shares) else math.nan
    out = {"p": p, "low": p, "high": p}
    if len(shares) > 1 and np.ptp(shares) > 0:
        result = stats.bootstrap((shares,), np.mean, confidence_level=confidence, method="percentile",
                                 n_resamples=9999, rng=np.random.default_rng(seed))
        out["low"], out["high"] = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return out


def holm(pvalues: dict[str, float], alpha: float) -> dict[str, float]:
    """Holm-adjusted p-values of one family of hypotheses (untested ones, NaN, stay NaN and do
    not count)."""
    from statsmodels.stats.multitest import multipletests

    tested = {name: p for name, p in pvalues.items() if math.isfinite(p)}
    adjusted = dict.fromkeys(pvalues, math.nan)
    if tested:
        _, corrected_p, _, _ = multipletests(list(tested.values()), alpha=alpha, method="holm")
        adjusted.update(zip(tested, map(float, corrected_p)))
    return adjusted


def holm_levels(pvalues: dict[str, float], alpha: float) -> dict[str, float]:
    """The level Holm's step-down tests each hypothesis at: the i-th smallest p-value of k at
    alpha / (k - i + 1), until the first it does not reject; that one and every later one keep
    its level (the procedure stops there). An interval at that level is the one the verdict is
    compatible with: it excludes 0 exactly when Holm rejects."""
    tested = sorted((p, name) for name, p in pvalues.items() if math.isfinite(p))
    levels, stopped = {}, None
    for i, (p, name) in enumerate(tested):
        level = alpha / (len(tested) - i)
        if stopped is None and p >= level:
            stopped = level
        levels[name] = level if stopped is None else stopped
    return levels


def verdict(diff: float, p_holm: float, p_equivalence_holm: float, alpha: float, margin: float,
            holm_interval: tuple[float, float]) -> str:
    """A difference shown at Holm's level is sized by its interval at that level: beyond the
    margin (better, worse), inside it (below the margin: shown, yet practically nothing), or
    reaching across it (size unresolved). Equivalent when TOST puts it within the margin;
    inconclusive when neither test rejects."""
    if not math.isfinite(p_holm):
        return UNTESTED
    if p_holm < alpha:
        low, high = holm_interval if diff > 0 else (-holm_interval[1], -holm_interval[0])
        if low > margin:
            return BETTER if diff > 0 else WORSE
        if high < margin:
            return BETTER_BELOW if diff > 0 else WORSE_BELOW
        return BETTER_UNSIZED if diff > 0 else WORSE_UNSIZED
    if p_equivalence_holm < alpha:
        return EQUIVALENT
    return INCONCLUSIVE


def identical_groups(fingerprints: dict[str, str], reference: str) -> dict[str, str]:
    """{variant: the variant it is identical to} for variants whose replicas are byte-identical
    (same fingerprint) to an earlier one's, or to the reference's."""
    first: dict[str, str] = {fingerprints[reference]: reference} if reference in fingerprints else {}
    same = {}
    for name, fingerprint in fingerprints.items():
        if name == reference:
            continue
        if fingerprint in first:
            same[name] = first[fingerprint]
        else:
            first[fingerprint] = name
    return same


def compare(grids: dict[str, np.ndarray], reference: str, test_share: float, confidence: float,
            margin: float, identical: dict[str, str] | None = None, seed: int = 0) -> dict:
    """Every variant against `reference`; grids are (seeds, splits) accuracies, paired by position.

    Returns {variant: {diff, diff_low, diff_high, diff_holm_low, diff_holm_high (at the level Holm
    tested it), p, p_holm, p_equivalence, p_equivalence_holm,
    p_improvement, p_improvement_low, p_improvement_high, verdict, identical_to}}."""
    alpha = 1 - confidence
    identical = identical or {}
    base = grids[reference]
    rows = {}
    for name, values in grids.items():
        if name == reference or name in identical:
            continue
        row = paired_test(values - base, test_share, confidence, margin)
        better = probability_of_improvement(values, base, confidence, seed)
        rows[name] = {**row, "p_improvement": better["p"], "p_improvement_low": better["low"],
                      "p_improvement_high": better["high"], "identical_to": None}
    p_holm = holm({name: row["p"] for name, row in rows.items()}, alpha)
    p_equivalence_holm = holm({name: row["p_equivalence"] for name, row in rows.items()}, alpha)
    levels = holm_levels({name: row["p"] for name, row in rows.items()}, alpha)
    equivalence_levels = holm_levels({name: row["p_equivalence"] for name, row in rows.items()}, alpha)
    for name, row in rows.items():
        row["p_holm"], row["p_equivalence_holm"] = p_holm[name], p_equivalence_holm[name]
        found = estimate(grids[name] - base, test_share)
        row["diff_holm_low"], row["diff_holm_high"] = row["diff_low"], row["diff_high"]
        if name in levels and found is not None:
            row["diff_holm_low"], row["diff_holm_high"] = found.interval(levels[name])
        row["verdict"] = verdict(row["diff"], row["p_holm"], row["p_equivalence_holm"], alpha, margin,
                                 (row["diff_holm_low"], row["diff_holm_high"]))
        if row["verdict"] == EQUIVALENT and found is not None:  # TOST's own: the (1 - 2 level) interval
            row["diff_holm_low"], row["diff_holm_high"] = found.interval(2 * equivalence_levels[name])
        if row["verdict"] == INCONCLUSIVE:
            row["resolving_splits"] = resolving_splits(grids[name] - base, test_share, levels[name],
                                                       equivalence_levels[name], margin)
    same_as_reference = {"diff": 0.0, "diff_low": 0.0, "diff_high": 0.0, "diff_holm_low": 0.0, "diff_holm_high": 0.0,
                         "p": math.nan, "p_holm": math.nan,
                         "p_equivalence": math.nan, "p_equivalence_holm": math.nan, "p_improvement": 0.5,
                         "p_improvement_low": 0.5, "p_improvement_high": 0.5, "splits": base.shape[1],
                         "resolving_splits": None}
    rows[reference] = {**same_as_reference, "verdict": REFERENCE, "identical_to": None}
    for name, twin in identical.items():  # the twin's numbers, not a test of its own
        rows[name] = {**rows[twin], "verdict": identical_to(twin), "identical_to": twin}
        if twin == reference:
            rows[name]["p_holm"] = rows[name]["p_equivalence_holm"] = math.nan
    return {name: rows[name] for name in grids}


def hypotheses(rows: dict) -> int:
    """How many distinct comparisons the Holm family counted."""
    return sum(1 for row in rows.values() if math.isfinite(row["p"]) and row["identical_to"] is None)


def champion(rows: dict[str, dict], means: dict[str, float], reference: str) -> str:
    """CHAMPION_RULE: `rows` as `compare` returns them, `means` each variant's mean accuracy."""
    better = [name for name, row in rows.items() if row["verdict"] == BETTER]
    return max(better, key=lambda name: means[name]) if better else reference
