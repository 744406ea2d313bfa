"""The study's statistics on made-up data whose answers are known: closed-form t values, a
textbook Holm family, TOST on constructed differences, and simulated studies with a known truth."""
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from pipeline.statistics import per_dataset as statistics

T4_975 = 2.7764451051977987  # t table, 4 degrees of freedom


def t4_cdf(t: float) -> float:
    """Student's t with 4 degrees of freedom, in closed form."""
    return 0.5 + 3 / 8 * t / math.sqrt(1 + t * t / 4) * (1 - t * t / (12 * (1 + t * t / 4)))


def study(split_means, seeds=5, noise=0.0, rng=None):
    """(seeds, splits) values whose per-split means are exactly `split_means`."""
    columns = []
    for mean in split_means:
        offsets = np.zeros(seeds) if rng is None else rng.normal(0, noise, seeds)
        columns.append(mean + offsets - offsets.mean())
    return np.column_stack(columns)


def test_corrected_resampled_t_test_matches_its_closed_form():
    # Split means 0.01..0.05 and no seed noise: mean 0.03, s_b^2 = 0.00025; J = 5 splits,
    # n_val/n_train = 0.25. Nadeau-Bengio: se = sqrt((1/5 + 0.25) * 0.00025), t = 0.03 / se = 2 * sqrt(2),
    # 4 degrees of freedom.
    d = study([0.01, 0.02, 0.03, 0.04, 0.05])
    result = statistics.paired_test(d, test_share=0.25, confidence=0.95, margin=0.01)
    assert result["splits"] == 5 and result["diff"] == pytest.approx(0.03)
    assert result["p"] == pytest.approx(2 * (1 - t4_cdf(2 * math.sqrt(2))), rel=1e-9)  # 0.04742
    se = math.sqrt(0.45 * 0.00025)
    assert result["diff_low"] == pytest.approx(0.03 - T4_975 * se, rel=1e-9)
    assert result["diff_high"] == pytest.approx(0.03 + T4_975 * se, rel=1e-9)


def test_the_seeds_variance_is_not_stretched_by_the_overlap_correction():
    """Seeds are nested in splits, each replica its own: their noise is independent across
    splits. Only the split effects' part of s_b^2 (s_b^2 - s_w^2 / S) takes Nadeau-Bengio's
    factor; s_w^2 / (S J) is added as it is."""
    d = study([0.01, 0.02, 0.03, 0.04, 0.05], rng=np.random.default_rng(1), noise=0.02)
    within = float(np.mean(np.var(d, axis=0, ddof=1)))  # 5 seeds on every split: the pooled variance
    found = statistics.within_split(d)
    assert (found.variance, found.seeds, found.df) == (pytest.approx(within), 5.0, 20)
    variance = (1 / 5 + 0.25) * (0.00025 - within / 5) + within / 25
    assert 0 < within / 5 < 0.00025 and variance < 0.45 * 0.00025  # narrower than Nadeau-Bengio's
    assert statistics.variance_of_mean(0.00025, found, 5, 0.25) == (pytest.approx(variance), 4.0)
    result = statistics.paired_test(d, test_share=0.25, confidence=0.95, margin=0.01)
    t = 0.03 / math.sqrt(variance)
    assert result["p"] == pytest.approx(2 * (1 - t4_cdf(t)), rel=1e-9)
    assert result["diff_high"] == pytest.approx(0.03 + T4_975 * math.sqrt(variance), rel=1e-9)
    # Seed noise larger than the split means' spread: the split effects' part is taken as 0.
    noisy = study([0.03, 0.031, 0.029, 0.03, 0.03], rng=np.random.default_rng(2), noise=0.05)
    found = statistics.within_split(noisy)
    between = float(np.var(statistics.split_means(noisy), ddof=1))
    assert statistics.variance_of_mean(between, found, 5, 0.25) == (pytest.approx(found.variance / 25), 4.0)


def test_the_interval_of_a_mean_is_the_corrected_t_interval_of_its_split_means():
    grid = study([0.78, 0.80, 0.82, 0.79, 0.81], rng=np.random.default_rng(2), noise=0.03)
    result = statistics.mean_interval(grid, test_share=0.25, confidence=0.95)
    within = float(np.mean(np.var(grid, axis=0, ddof=1)))
    half = T4_975 * math.sqrt((1 / 5 + 0.25) * (0.00025 - within / 5) + within / 25)
    assert result["mean"] == pytest.approx(0.80) and result["n"] == 25 and result["splits"] == 5
    assert result["ci_low"] == pytest.approx(0.80 - half, rel=1e-9)
    assert result["ci_high"] == pytest.approx(0.80 + half, rel=1e-9)
    assert result["sd"] == pytest.approx(grid.std(ddof=1))
    same = statistics.mean_interval(np.full((3, 4), 0.6), 0.25, 0.95)
    assert (same["mean"], same["ci_low"], same["ci_high"]) == (0.6, 0.6, 0.6)


def test_tost_on_constructed_differences():
    # Split means 0.001..0.005: mean 0.003, se = sqrt(0.45 * 2.5e-6); with the margin 0.006 the
    # upper one-sided test has t = (0.003 - 0.006) / se = -2 sqrt(2): p = F(-2 sqrt(2)) = 0.02371.
    d = study([0.001, 0.002, 0.003, 0.004, 0.005])
    result = statistics.paired_test(d, test_share=0.25, confidence=0.95, margin=0.006)
    assert result["p_equivalence"] == pytest.approx(1 - t4_cdf(2 * math.sqrt(2)), rel=1e-9)
    # A margin the interval does not fit in: no equivalence; far inside it: certain.
    assert statistics.paired_test(d, 0.25, 0.95, margin=0.004)["p_equivalence"] > 0.05
    assert statistics.paired_test(d, 0.25, 0.95, margin=0.05)["p_equivalence"] < 1e-4
    # Symmetric: the mirrored differences give the same TOST p-value.
    mirrored = statistics.paired_test(-d, 0.25, 0.95, margin=0.006)
    assert mirrored["p_equivalence"] == pytest.approx(result["p_equivalence"], rel=1e-9)


def test_the_correction_widens_what_a_naive_t_test_would_claim():
    d = study([0.01, 0.02, 0.03, 0.04, 0.05])
    corrected = statistics.paired_test(d, test_share=0.25, confidence=0.95, margin=0.01)
    naive = statistics.paired_test(d, test_share=0.0, confidence=0.95, margin=0.01)  # plain t over splits
    assert naive["p"] == pytest.approx(scipy_stats.ttest_1samp([0.01, 0.02, 0.03, 0.04, 0.05], 0).pvalue)
    assert naive["p"] < 0.05 < corrected["p"] or corrected["p"] > naive["p"]
    assert corrected["diff_high"] - corrected["diff_low"] == pytest.approx(
        (naive["diff_high"] - naive["diff_low"]) * math.sqrt(1 + 5 * 0.25))


def test_no_spread_non_finite_replicas_and_a_single_split():
    assert statistics.paired_test(np.zeros((3, 3)), 0.25, 0.95, 0.01)["p"] == 1.0
    constant = statistics.paired_test(np.full((3, 3), 0.1), 0.25, 0.95, 0.01)
    assert constant["p"] == 0.0 and constant["p_equivalence"] == 1.0
    alone = statistics.paired_test(np.array([[0.1]]), 0.25, 0.95, 0.01)
    assert math.isnan(alone["p"]) and math.isnan(alone["p_equivalence"])
    d = study([0.01, 0.02, 0.03, 0.04, 0.05])
    d[2, 1] = np.nan
    d[:, 4] = np.nan  # a split whose every replica broke is left out
    result = statistics.paired_test(d, 0.25, 0.95, 0.01)
    assert result["splits"] == 4 and math.isfinite(result["p"])


def test_holm_on_a_textbook_family():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, kept monotone: 0.02, 0.03, 0.06, 0.06.
    adjusted = statistics.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "e": math.nan}, alpha=0.05)
    assert adjusted["a"] == pytest.approx(0.03) and adjusted["b"] == pytest.approx(0.06)
    assert adjusted["c"] == pytest.approx(0.06) and adjusted["d"] == pytest.approx(0.02)
    assert math.isnan(adjusted["e"])


def test_probability_of_improvement_counts_ties_half_and_resamples_splits():
    variant = np.array([[0.8, 0.7], [0.9, np.nan]])
    reference = np.array([[0.7, 0.7], [0.95, 0.5]])
    result = statistics.probability_of_improvement(variant, reference, 0.95, seed=0)
    # Split 0: a win and a loss (0.5); split 1: a tie (0.5): 0.5, no spread between splits.
    assert result == {"p": 0.5, "low": 0.5, "high": 0.5}
    rng = np.random.default_rng(4)
    reference = 0.8 + rng.normal(0, 0.02, (5, 20))
    better = statistics.probability_of_improvement(reference + 0.01 + rng.normal(0, 0.02, (5, 20)), reference,
                                                   0.95, seed=0)
    assert 0.5 < better["p"] < 1 and better["low"] < better["p"] < better["high"] <= 1
    again = statistics.probability_of_improvement(reference + 0.01 + np.random.default_rng(4).normal(0, 0.02, (5, 20))
                                                  * 0, reference, 0.95, seed=0)
    assert again["p"] > better["p"]  # a sure 1-point gain on every pair: every pair a win
    assert again == {"p": 1.0, "low": 1.0, "high": 1.0}
    # Seeded: the same interval every time.
    assert statistics.probability_of_improvement(reference + 0.005, reference, 0.95, 0) == \
        statistics.probability_of_improvement(reference + 0.005, reference, 0.95, 0)


def test_identical_variants_are_grouped_with_the_reference_first():
    fingerprints = {"nll_relu": "a", "nll_logsoftmax": "b", "cross_entropy": "b", "kldiv_relu": "a",
                    "kldiv_logsoftmax": "b", "mse": "c"}
    assert statistics.identical_groups(fingerprints, "cross_entropy") == {
        "nll_logsoftmax": "cross_entropy", "kldiv_relu": "nll_relu", "kldiv_logsoftmax": "cross_entropy"}


def simulated(rng, shifts: dict[str, float], seeds=5, splits=20, split_sd=0.03, seed_sd=0.01):
    """Accuracies (seeds, splits) per variant: every split shifts every variant alike (an easy
    split is easy for all), each replica adds its own seed noise."""
    split_effect = rng.normal(0, split_sd, splits)
    return {name: 0.8 + shift + split_effect + rng.normal(0, seed_sd, (seeds, splits)) for name, shift in shifts.items()}


def test_verdicts_on_a_made_up_study_with_known_effects():
    """Reference at 0.80; one variant truly 5 points better, one 20 points worse, one the same
    (noise only, so within the 1-point margin), one half a point worse (a split effect every
    variant shares cancels in the paired difference, and 100 replicas' seed noise resolves half a
    point: a difference shown, below the margin), and one identical to the reference by
    construction."""
    rng = np.random.default_rng(3)
    grids = simulated(rng, {"reference": 0, "better": 0.05, "worse": -0.2, "same": 0, "edge": -0.005})
    grids["twin"] = grids["reference"].copy()
    result = statistics.compare(grids, "reference", test_share=0.25, confidence=0.95, margin=0.01,
                                identical={"twin": "reference"})
    assert [result[n]["verdict"] for n in grids] == ["reference", "better", "worse", "equivalent",
                                                     "worse, below the margin", "identical to reference"]
    assert result["better"]["diff_low"] < 0.05 < result["better"]["diff_high"]
    assert result["worse"]["p_improvement"] == 0.0 and result["better"]["p_improvement"] > 0.9
    # Four distinct hypotheses: Holm multiplies the smallest p-value by 4; the twin is not one.
    assert statistics.hypotheses(result) == 4
    smallest = min(result[n]["p"] for n in ("better", "worse", "same", "edge"))
    assert min(result[n]["p_holm"] for n in ("better", "worse", "same", "edge")) == pytest.approx(4 * smallest)
    assert math.isnan(result["twin"]["p_holm"])


def test_the_champion_rule_keeps_the_reference_unless_a_variant_is_better():
    rows = {"reference": {"verdict": "reference"}, "a": {"verdict": "equivalent"}, "b": {"verdict": "inconclusive"}}
    means = {"reference": 0.80, "a": 0.81, "b": 0.83}
    assert statistics.champion(rows, means, "reference") == "reference"  # best mean, not better: no flip
    rows.update(c={"verdict": "better"}, d={"verdict": "better"})
    assert statistics.champion(rows, {**means, "c": 0.84, "d": 0.85}, "reference") == "d"


def test_the_intervals_cover_the_true_mean_in_clustered_studies_and_the_replica_bootstrap_does_not():
    """1,000 simulated studies of 5 seeds x 20 splits with a known mean. Splits of one dataset
    overlap, so their effects are correlated: rho = n_val / n (Nadeau and Bengio's model, here
    143 of 714) through a part shared by the whole study, plus each split's own; each replica adds
    its own seed noise. The corrected interval must cover the truth in 92% to 98% of the studies;
    the replica bootstrap the report used before (BCa over the 100 replicas as if independent)
    covers far less."""
    rng = np.random.default_rng(2026)
    truth, splits, seeds, n_val, n_train = 0.80, 20, 5, 143, 571
    rho = n_val / (n_val + n_train)
    split_sd, seed_sd = 0.035, 0.012
    covered, old_covered, old_studies = 0, 0, 200
    for i in range(1000):
        shared = rng.normal(0, split_sd) * math.sqrt(rho)
        own = rng.normal(0, split_sd, splits) * math.sqrt(1 - rho)
        grid = truth + shared + own + rng.normal(0, seed_sd, (seeds, splits))
        result = statistics.mean_interval(grid, n_val / n_train, 0.95)
        covered += result["ci_low"] <= truth <= result["ci_high"]
        if i < old_studies:  # the old interval costs a bootstrap each: 200 studies tell enough
            old = scipy_stats.bootstrap((grid.ravel(),), np.mean, confidence_level=0.95, method="BCa",
                                        n_resamples=999, rng=rng).confidence_interval
            old_covered += old.low <= truth <= old.high
    print(f"coverage: corrected {covered / 1000:.3f} of 1000 studies; replica bootstrap "
          f"{old_covered / old_studies:.3f} of {old_studies}")
    assert 0.92 <= covered / 1000 <= 0.98
    assert old_covered / old_studies < 0.6


def test_the_notebooks_single_run_is_reported_untested():
    """study: {seeds: 1, splits: 1}: one replica a variant, no spread to test against."""
    grids = {"reference": np.array([[0.76]]), "other": np.array([[0.61]])}
    result = statistics.compare(grids, "reference", 0.25, 0.95, 0.01)
    assert result["other"]["verdict"] == "untested" and statistics.hypotheses(result) == 0
    assert statistics.champion(result, {"reference": 0.76, "other": 0.61}, "reference") == "reference"
    single = statistics.mean_interval(grids["other"], 0.25, 0.95)
    assert (single["mean"], single["ci_low"], single["ci_high"]) == (0.61, 0.61, 0.61)


def test_holm_levels_are_the_step_down_s():
    levels = statistics.holm_levels({"a": 0.01, "b": 0.04, "c": 0.03, "untested": math.nan}, 0.05)
    # a rejected at 0.05 / 3; c not at 0.05 / 2: the step-down stops, and b keeps c's level.
    assert levels == {"a": pytest.approx(0.05 / 3), "c": pytest.approx(0.05 / 2), "b": pytest.approx(0.05 / 2)}
    assert statistics.holm_levels({"a": 0.001, "b": 0.04}, 0.05) == {"a": 0.025, "b": 0.05}


def test_the_splits_that_would_decide_an_inconclusive_difference():
    """Seed noise alone shrinks with more splits: some number decides it. A split effect the
    splits' shared rows carry does not: an estimate near the margin stays undecided, said so."""
    rng = np.random.default_rng(7)
    seeds_only = 0.004 + rng.normal(0, 0.08, (5, 20))
    found = statistics.resolving_splits(seeds_only, 0.25, 0.05, 0.05, 0.01)
    assert found is not None and found > 20
    within = statistics.within_split(seeds_only)
    means = statistics.split_means(seeds_only)
    effects = max(float(np.var(means, ddof=1)) - within.variance / within.seeds, 0.0)

    def decided(j):  # as many seeds a split, the variances as estimated: V on j - 1 degrees of freedom
        variance, df = statistics.variance_of_mean(effects + within.variance / within.seeds, within, j, 0.25)
        diff, se = abs(float(means.mean())), math.sqrt(variance)
        return diff > scipy_stats.t.ppf(0.975, df) * se or diff + scipy_stats.t.ppf(0.95, df) * se < 0.01
    assert decided(found) and not decided(found - 1)
    shared_rows = 0.009 + rng.normal(0, 0.04, 20)[None, :] + rng.normal(0, 0.005, (5, 20))
    assert statistics.resolving_splits(shared_rows, 0.25, 0.05, 0.05, 0.01) is None


def test_a_difference_shown_within_the_margin_is_better_below_it_and_never_a_champion():
    """Sized by the interval at Holm's level: inside the margin, beyond it, or across it."""
    assert statistics.verdict(0.004, 0.001, 0.5, 0.05, 0.01, (0.001, 0.007)) == "better, below the margin"
    assert statistics.verdict(-0.004, 0.001, 0.5, 0.05, 0.01, (-0.007, -0.001)) == "worse, below the margin"
    assert statistics.verdict(0.02, 0.001, 0.5, 0.05, 0.01, (0.012, 0.028)) == "better"
    assert statistics.verdict(-0.02, 0.001, 0.5, 0.05, 0.01, (-0.028, -0.012)) == "worse"
    assert statistics.verdict(0.008, 0.001, 0.5, 0.05, 0.01, (0.001, 0.015)) == "better, size unresolved"
    assert statistics.verdict(0.0, 0.5, 0.001, 0.05, 0.01, (-0.004, 0.004)) == "equivalent"
    rows = {"reference": {"verdict": "reference"}, "small": {"verdict": "better, below the margin"}}
    assert statistics.champion(rows, {"reference": 0.80, "small": 0.804}, "reference") == "reference"
