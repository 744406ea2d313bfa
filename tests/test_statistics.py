"""The study's statistics on made-up replicas whose answers are known in closed form."""
import math

import numpy as np
import pytest

from pipeline.titanic import statistics


def study(split_means, seeds=5, noise=0.0, rng=None):
    """(seeds, splits) differences whose per-split means are exactly `split_means`."""
    columns = []
    for mean in split_means:
        offsets = np.zeros(seeds) if rng is None else rng.normal(0, noise, seeds)
        columns.append(mean + offsets - offsets.mean())
    return np.column_stack(columns)


def test_corrected_resampled_t_test_matches_its_closed_form():
    # Split means 0.01..0.05: mean 0.03, s^2 = 0.00025; J = 5 splits, n_val/n_train = 0.25.
    # Nadeau-Bengio: se = sqrt((1/5 + 0.25) * 0.00025), t = 0.03 / se = 2 * sqrt(2), 4 degrees
    # of freedom, whose CDF is closed: F(t) = 1/2 + 3/8 * t/sqrt(1 + t^2/4) * (1 - t^2 / (12 (1 + t^2/4))).
    d = study([0.01, 0.02, 0.03, 0.04, 0.05], rng=np.random.default_rng(1), noise=0.02)
    result = statistics.paired_test(d, test_share=0.25, confidence=0.95)
    t = 2 * math.sqrt(2)
    cdf = 0.5 + 3 / 8 * t / math.sqrt(1 + t * t / 4) * (1 - t * t / (12 * (1 + t * t / 4)))
    assert result["method"] == "corrected resampled t" and result["resamples"] == 5
    assert result["diff"] == pytest.approx(0.03)
    assert result["p"] == pytest.approx(2 * (1 - cdf), rel=1e-9)  # 0.04742
    se = math.sqrt(0.45 * 0.00025)
    t_975 = 2.7764451051977987  # t table, 4 degrees of freedom
    assert result["diff_low"] == pytest.approx(0.03 - t_975 * se, rel=1e-9)
    assert result["diff_high"] == pytest.approx(0.03 + t_975 * se, rel=1e-9)


def test_the_correction_widens_what_a_naive_t_test_would_claim():
    d = study([0.01, 0.02, 0.03, 0.04, 0.05])
    corrected = statistics.paired_test(d, test_share=0.25, confidence=0.95)
    naive = statistics.paired_test(d, test_share=0.0, confidence=0.95)  # no overlap: plain t over splits
    assert naive["p"] < 0.05 and naive["p"] < corrected["p"]
    assert corrected["diff_high"] - corrected["diff_low"] == pytest.approx(
        (naive["diff_high"] - naive["diff_low"]) * math.sqrt(1 + 5 * 0.25))


def test_with_one_split_only_the_seeds_vary():
    # Differences 0.01..0.05 over five seeds: t = 0.03 / (s / sqrt(5)) = sqrt(18), 4 degrees of freedom.
    d = np.array([[0.01], [0.02], [0.03], [0.04], [0.05]])
    result = statistics.paired_test(d, test_share=0.25, confidence=0.95)
    t = math.sqrt(18)
    cdf = 0.5 + 3 / 8 * t / math.sqrt(1 + t * t / 4) * (1 - t * t / (12 * (1 + t * t / 4)))
    assert result["method"] == "paired t over seeds (one split)"
    assert result["p"] == pytest.approx(2 * (1 - cdf), rel=1e-9)  # 0.01323


def test_no_spread_and_a_single_replica():
    assert statistics.paired_test(np.zeros((3, 3)), 0.25, 0.95)["p"] == 1.0
    assert statistics.paired_test(np.full((3, 3), 0.1), 0.25, 0.95)["p"] == 0.0
    alone = statistics.paired_test(np.array([[0.1]]), 0.25, 0.95)
    assert math.isnan(alone["p"]) and alone["method"] == "none (one replica)"


def test_non_finite_replicas_are_left_out():
    d = study([0.01, 0.02, 0.03, 0.04, 0.05])
    d[2, 1] = np.nan
    result = statistics.paired_test(d, 0.25, 0.95)
    assert result["resamples"] == 5 and math.isfinite(result["p"])


def test_holm_on_a_textbook_family():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, kept monotone: 0.02, 0.03, 0.06, 0.06.
    adjusted = statistics.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "e": math.nan}, alpha=0.05)
    assert adjusted["a"] == pytest.approx(0.03) and adjusted["b"] == pytest.approx(0.06)
    assert adjusted["c"] == pytest.approx(0.06) and adjusted["d"] == pytest.approx(0.02)
    assert math.isnan(adjusted["e"])


def test_probability_of_improvement_counts_ties_half():
    assert statistics.probability_of_improvement(np.array([0.8, 0.7, 0.9, np.nan]),
                                                 np.array([0.7, 0.7, 0.95, 0.5])) == pytest.approx(0.5)


def test_the_bootstrap_interval_of_a_mean():
    rng = np.random.default_rng(7)
    values = rng.normal(0.8, 0.04, 400)
    result = statistics.interval(values, confidence=0.95, seed=42)
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values))  # large n: the normal interval
    assert result["mean"] == pytest.approx(values.mean()) and result["n"] == 400
    assert result["ci_low"] == pytest.approx(values.mean() - half, abs=0.1 * half)
    assert result["ci_high"] == pytest.approx(values.mean() + half, abs=0.1 * half)
    assert statistics.interval(values, 0.95, seed=42) == result  # seeded: the same interval every time
    wider = statistics.interval(values, 0.99, seed=42)
    assert wider["ci_low"] < result["ci_low"] and wider["ci_high"] > result["ci_high"]


def test_an_interval_of_identical_values_or_with_gaps():
    assert statistics.interval([0.6] * 5, 0.95, 0) == {"n": 5, "mean": 0.6, "sd": 0.0, "ci_low": 0.6, "ci_high": 0.6}
    assert statistics.interval([0.5, None, math.nan, 0.7], 0.95, 0)["n"] == 2


def test_verdicts_on_a_made_up_study_with_known_effects():
    """Reference at 0.80; one variant truly 5 points better, one 20 points worse, one the same
    (noise only); every split shifts every variant alike, as real splits do."""
    rng = np.random.default_rng(3)
    seeds, splits = 5, 5
    split_effect = rng.normal(0, 0.03, splits)
    def variant(shift):
        return 0.8 + shift + split_effect + rng.normal(0, 0.01, (seeds, splits))
    grids = {"reference": variant(0), "better": variant(0.05), "worse": variant(-0.2), "same": variant(0)}
    result = statistics.compare(grids, "reference", test_share=0.25, confidence=0.95)
    assert [result[n]["verdict"] for n in grids] == ["reference", "better", "worse", "indistinguishable"]
    assert result["better"]["diff_low"] < 0.05 < result["better"]["diff_high"]
    assert result["worse"]["p_improvement"] == 0.0 and result["better"]["p_improvement"] > 0.9
    # Three comparisons: Holm multiplies the smallest p-value by 3.
    smallest = min(result[n]["p"] for n in ("better", "worse", "same"))
    assert min(result[n]["p_holm"] for n in ("better", "worse", "same")) == pytest.approx(3 * smallest)
