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

with J - 1 degrees of freedom (tests/test_coverage.py simulates this very design with the
project's own trainer: these intervals cover the truth, Nadeau-Bengio on the whole of s_b^2 covers
every time). Every interval and test here uses that variance:

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
  than it; among several, the best mean. A best-mean pick would follow noise (winner's curse).

The correction is applied once, in `corrected`: the split means' deviations from their mean are
stretched by the factor that turns s_b^2 / J into V, so statsmodels' own one-sample t machinery
(`DescrStatsW`: interval, test, TOST) runs unchanged on it.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..core.vocabulary import (BETTER, BETTER_BELOW, EQUIVALENT, INCONCLUSIVE, REFERENCE, UNTESTED, WORSE,
                               WORSE_BELOW, identical_to)

METHOD = ("corrected resampled t (Nadeau-Bengio on the split effects, the seeds' variance apart), "
          "J - 1 degrees of freedom")
CHAMPION_RULE = ("the reference stays the champion unless a variant is verdict better than it; "
                 "among several better ones, the best mean")


def split_means(grid: np.ndarray) -> np.ndarray:
    """(seeds, splits) values, NaN for replicas left out, -> one mean per split that has any."""
    grid = np.asarray(grid, dtype=float)
    kept = np.isfinite(grid).any(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(grid[:, kept], axis=0)


def within_split(grid: np.ndarray) -> tuple[float, float]:
    """(s_w^2, S): the replicas' variance within a split, pooled over the splits that have two or
    more (ddof 1 each), and the seeds per split (their harmonic mean where replicas are missing).
    (0, 1) when no split has two: one seed a split, whose variance is all between splits."""
    grid = np.asarray(grid, dtype=float)
    counts = np.isfinite(grid).sum(axis=0)
    several = counts >= 2
    if not several.any():
        return 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        squares = np.nansum((grid[:, several] - np.nanmean(grid[:, several], axis=0)) ** 2, axis=0)
    kept = counts[counts > 0]
    return float(squares.sum() / (counts[several] - 1).sum()), float(len(kept) / (1 / kept).sum())


def variance_of_mean(means: np.ndarray, within: float, seeds: float, test_share: float) -> float:
    """V of the module's docstring, from the J split means, s_w^2 and S."""
    j = len(means)
    between = float(np.var(means, ddof=1))
    return (1 / j + test_share) * max(between - within / seeds, 0.0) + within / (seeds * j)


def corrected(grid: np.ndarray, test_share: float):
    """The (seeds, splits) grid's split means as statsmodels' DescrStatsW whose standard error is
    sqrt(V) (the module's docstring): its mean and J - 1 degrees of freedom stay.
    test_share = n_validation / n_train."""
    from statsmodels.stats.weightstats import DescrStatsW

    means = split_means(grid)
    mean = means.mean()
    naive = np.var(means, ddof=1) / len(means)
    within, seeds = within_split(grid)
    stretch = math.sqrt(variance_of_mean(means, within, seeds, test_share) / naive)  # >= 1: V >= s_b^2 / J
    return DescrStatsW(mean + (means - mean) * stretch)


def mean_interval(grid: np.ndarray, test_share: float, confidence: float) -> dict:
    """A variant's mean over its replicas with the corrected t interval over its split means;
    sd is the replicas' spread (ddof 1)."""
    values = np.asarray(grid, dtype=float)
    finite = values[np.isfinite(values)]
    means = split_means(values)
    mean = float(means.mean()) if len(means) else math.nan
    out = {"n": int(finite.size), "splits": int(len(means)), "mean": mean,
           "sd": float(finite.std(ddof=1)) if finite.size > 1 else 0.0, "ci_low": mean, "ci_high": mean}
    if len(means) > 1 and np.ptp(means) > 0:
        low, high = corrected(values, test_share).tconfint_mean(1 - confidence)
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
    if np.ptp(means) == 0:  # the same difference on every split: no spread to weigh it against
        out["p"] = 1.0 if mean == 0 else 0.0
        out["p_equivalence"] = 0.0 if abs(mean) < margin else 1.0
        return out
    stats = corrected(differences, test_share)
    low, high = stats.tconfint_mean(1 - confidence)
    out.update(diff_low=float(low), diff_high=float(high), p=float(stats.ttest_mean(0.0)[1]),
               p_equivalence=float(stats.ttost_mean(-margin, margin)[0]))
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
    within, seeds = within_split(differences)
    effects = max(float(np.var(means, ddof=1)) - within / seeds, 0.0)
    j = np.arange(len(means), MOST_SPLITS + 1)
    se = np.sqrt((1 / j + test_share) * effects + within / (seeds * j))
    decided = (diff > stats.t.ppf(1 - alpha / 2, j - 1) * se) | \
        (diff + stats.t.ppf(1 - alpha_equivalence, j - 1) * se < margin)
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
    alpha / (k - i + 1). An interval at that level is the one the verdict is compatible with."""
    tested = sorted((p, name) for name, p in pvalues.items() if math.isfinite(p))
    return {name: alpha / (len(tested) - i) for i, (_, name) in enumerate(tested)}


def verdict(diff: float, p_holm: float, p_equivalence_holm: float, alpha: float, margin: float) -> str:
    """Better or worse: a difference shown at Holm's level, its estimate beyond the margin; below
    the margin when the estimate lies within it (shown, yet practically nothing); equivalent when
    TOST puts it within the margin; inconclusive when neither test rejects."""
    if not math.isfinite(p_holm):
        return UNTESTED
    if p_holm < alpha:
        if abs(diff) < margin:
            return BETTER_BELOW if diff > 0 else WORSE_BELOW
        return BETTER if diff > 0 else WORSE
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
        row["verdict"] = verdict(row["diff"], row["p_holm"], row["p_equivalence_holm"], alpha, margin)
        row["diff_holm_low"], row["diff_holm_high"] = row["diff_low"], row["diff_high"]
        if name in levels and row["diff_low"] != row["diff_high"]:
            low, high = corrected(grids[name] - base, test_share).tconfint_mean(levels[name])
            row["diff_holm_low"], row["diff_holm_high"] = float(low), float(high)
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
