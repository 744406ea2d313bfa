"""Statistics of a replicated study: how sure we are of each variant, and of each difference.

Per variant, the mean final validation accuracy over its replicas with a bootstrap confidence
interval (BCa, scipy.stats.bootstrap; Efron 1987). Against a reference variant, paired by
replica (same seed, same split):

- the mean difference, and the probability of improvement P(variant > reference) over the
  pairs, ties counted half (Bouthillier et al., "Accounting for Variance in Machine Learning
  Benchmarks", MLSys 2021);
- a p-value and an interval from the corrected resampled t-test (Nadeau and Bengio,
  "Inference for the Generalization Error", Machine Learning 52, 2003). Replicas of one split
  share their training and validation rows, so their differences are averaged first; the J
  split means are the resamples, whose training sets overlap: the test's variance is
  (1/J + n_validation/n_train) s^2 instead of s^2 / J. With one split only the seeds vary, and a
  plain paired t-test over them (scipy.stats.ttest_1samp) is all there is;
- p-values corrected for the number of variants compared (Holm 1979,
  statsmodels.stats.multitest.multipletests).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

BETTER, WORSE, SAME, REFERENCE, UNTESTED = "better", "worse", "indistinguishable", "reference", "untested"


def interval(values, confidence: float, seed: int) -> dict:
    """Mean, standard deviation and a BCa bootstrap interval of the mean, over the finite values."""
    from scipy import stats

    values = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    mean = float(values.mean()) if len(values) else math.nan
    out = {"n": len(values), "mean": mean, "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
           "ci_low": mean, "ci_high": mean}
    if len(values) > 1 and np.ptp(values) > 0:  # identical values: every resample gives the same mean
        result = stats.bootstrap((values,), np.mean, confidence_level=confidence, method="BCa",
                                 rng=np.random.default_rng(seed))
        out["ci_low"], out["ci_high"] = (float(result.confidence_interval.low),
                                         float(result.confidence_interval.high))
    return out


def paired_test(differences: np.ndarray, test_share: float, confidence: float) -> dict:
    """Differences shaped (seeds, splits), NaN where a replica turned non-finite.

    Returns the mean difference, its interval, the p-value (two-sided) and the method used."""
    from scipy import stats

    split_means = np.array([np.nanmean(column) for column in differences.T if np.isfinite(column).any()])
    if len(split_means) > 1:
        sample, inflation, method = split_means, math.sqrt(1 + len(split_means) * test_share), "corrected resampled t"
    else:
        sample = differences[np.isfinite(differences)]
        inflation, method = 1.0, "paired t over seeds (one split)"
    mean = float(sample.mean()) if len(sample) else math.nan
    out = {"diff": mean, "diff_low": mean, "diff_high": mean, "p": math.nan, "method": method, "resamples": len(sample)}
    if len(sample) < 2:
        out["method"] = "none (one replica)"
        return out
    if np.ptp(sample) == 0:  # no spread at all: the same difference every time
        out["p"] = 1.0 if mean == 0 else 0.0
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        naive = stats.ttest_1samp(sample, 0.0)
    # Nadeau and Bengio: the same t statistic with the variance inflated for overlapping training sets.
    t = float(naive.statistic) / inflation
    low, high = naive.confidence_interval(confidence)
    out.update(p=float(2 * stats.t.sf(abs(t), naive.df)), diff_low=mean - (mean - float(low)) * inflation,
               diff_high=mean + (float(high) - mean) * inflation)
    return out


def probability_of_improvement(variant: np.ndarray, reference: np.ndarray) -> float:
    """P(variant > reference) over the replica pairs where both stayed finite; ties count half."""
    both = np.isfinite(variant) & np.isfinite(reference)
    a, b = variant[both], reference[both]
    return float(((a > b) + 0.5 * (a == b)).mean()) if both.any() else math.nan


def holm(pvalues: dict[str, float], alpha: float) -> dict[str, float]:
    """Holm-adjusted p-values of one family of comparisons (untested ones stay NaN)."""
    from statsmodels.stats.multitest import multipletests

    tested = {name: p for name, p in pvalues.items() if math.isfinite(p)}
    adjusted = dict.fromkeys(pvalues, math.nan)
    if tested:
        _, corrected, _, _ = multipletests(list(tested.values()), alpha=alpha, method="holm")
        adjusted.update(zip(tested, map(float, corrected)))
    return adjusted


def verdict(diff: float, p_holm: float, alpha: float) -> str:
    if not math.isfinite(p_holm):
        return UNTESTED
    if p_holm < alpha:
        return BETTER if diff > 0 else WORSE
    return SAME


def compare(accuracies: dict[str, np.ndarray], reference: str, test_share: float, confidence: float) -> dict:
    """Every variant against `reference`: accuracies are (seeds, splits) arrays, paired by position.

    Returns {variant: {diff, diff_low, diff_high, p, p_holm, p_improvement, verdict, method}}."""
    alpha = 1 - confidence
    base = accuracies[reference]
    rows = {}
    for name, values in accuracies.items():
        if name == reference:
            continue
        rows[name] = paired_test(values - base, test_share, confidence)
        rows[name]["p_improvement"] = probability_of_improvement(values.ravel(), base.ravel())
    adjusted = holm({name: row["p"] for name, row in rows.items()}, alpha)
    for name, row in rows.items():
        row["p_holm"] = adjusted[name]
        row["verdict"] = verdict(row["diff"], row["p_holm"], alpha)
    rows[reference] = {"diff": 0.0, "diff_low": 0.0, "diff_high": 0.0, "p": math.nan, "p_holm": math.nan,
                       "p_improvement": 0.5, "verdict": REFERENCE, "method": "", "resamples": base.shape[1]}
    return {name: rows[name] for name in accuracies}
