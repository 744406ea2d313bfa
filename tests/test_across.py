"""The statistics across datasets on made-up data whose answers are known: normalised accuracy by
hand, Demšar's (2006) worked example of Friedman's test and the Nemenyi critical difference, the
bootstrap on studies with no noise, an exact shift, a plain-loop reference and simulated studies
with a known truth, verdicts counted from a made-up table."""
import math
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from pipeline.core.figures import variant_colours
from pipeline.core.errors import PipelineError
from pipeline.reports import overview
from pipeline.statistics import across

from .conftest import ROOT

# Demšar (2006), Table 6: AUC of C4.5 with and without tuning m (minimal examples in a leaf) and
# cf (confidence interval for pruning) on 14 UCI data sets, rows adult (sample) ... wine. The paper
# ranks voting's C4.5+cf and C4.5+m+cf 2 and 3 although both print as 0.975 (rounded), and its
# average ranks 2.893 and 1.964 need that order: 0.9751 and 0.9749 keep it.
DEMSAR_NAMES = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
DEMSAR_AUC = [
    [0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967],
    [0.628, 0.661, 0.654, 0.657], [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931],
    [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625], [0.775, 0.838, 0.866, 0.875],
    [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
    [0.972, 0.981, 0.9751, 0.9749], [0.957, 0.978, 0.946, 0.970],
]
SHARES = {"titanic": 0.616, "penguins": 0.442, "breast_cancer": 0.627, "wine": 0.399, "digits": 0.102}


def demsar() -> pd.DataFrame:
    return pd.DataFrame(DEMSAR_AUC, columns=DEMSAR_NAMES)


def table(values: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """{dataset: {variant: split accuracies}} as the long table `aggregate` takes."""
    rows = [(dataset, variant, split, accuracy) for dataset, per_variant in values.items()
            for variant, accuracies in per_variant.items() for split, accuracy in enumerate(accuracies)]
    return pd.DataFrame(rows, columns=list(across.COLUMNS))


def accuracy(dataset: str, normalised) -> np.ndarray:
    """The accuracy whose normalised value on `dataset` is `normalised`."""
    m = SHARES[dataset]
    return m + (1 - m) * np.asarray(normalised, dtype=float)


def test_normalised_accuracy_by_hand():
    assert across.normalised(0.8, 0.6) == pytest.approx(0.5)  # (0.8 - 0.6) / 0.4
    assert across.normalised(0.6, 0.6) == 0.0  # the majority guess
    assert across.normalised(1.0, 0.6) == pytest.approx(1.0)
    assert across.normalised(0.5, 0.6) == pytest.approx(-0.25)  # worse than guessing
    assert across.normalised(0.7, 0.0) == pytest.approx(0.7)
    assert across.normalised([0.55, 0.7], 0.4) == pytest.approx([0.25, 0.5])


def test_friedman_and_the_critical_difference_reproduce_demsar_2006():
    result = across.ranks(demsar())
    # Section 3.2.2: average ranks 3.143, 2.000, 2.893, 1.964; N = 14, k = 4.
    assert {name: round(rank, 3) for name, rank in result.mean_ranks.items()} == {
        "C4.5": 3.143, "C4.5+m": 2.000, "C4.5+cf": 2.893, "C4.5+m+cf": 1.964}
    assert list(result.mean_ranks) == ["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]  # best first
    assert (result.datasets, result.variants, result.excluded) == (14, 4, ())
    # chi2_F = 9.28 is Friedman's statistic without a correction for ties; scipy's corrects for
    # them, dividing by 1 - sum(t^3 - t) / (N k (k^2 - 1)): ties of 2 on iris, lung cancer and
    # primary tumor (6 each), of 4 on mushroom (60), 78 over 14 * 4 * 15 = 840.
    assert round(result.chi2 * (1 - 78 / 840), 2) == 9.28
    demsar_chi2 = 12 * 14 / (4 * 5) * (sum(r * r for r in result.mean_ranks.values()) - 4 * 5 ** 2 / 4)
    assert round(demsar_chi2, 2) == 9.28
    f, p = across.iman_davenport(demsar_chi2, 14, 4)
    assert round(f, 2) == 3.69  # F_F, above F(3, 39)'s 0.05 critical value 2.85: rejected
    assert round(float(scipy_stats.f.ppf(0.95, 3, 39)), 2) == 2.85 and p < 0.05
    # Nemenyi: q_0.05 = 2.569, CD = 1.25; no pair differs by that much. At 0.10, q = 2.291,
    # CD = 1.12, and C4.5 is worse than C4.5+m and C4.5+m+cf (their differences 1.143, 1.179).
    assert round(result.q_alpha, 3) == 2.569 and round(result.cd, 2) == 1.25
    assert result.separated() == []
    loose = across.ranks(demsar(), alpha=0.10)
    assert round(loose.q_alpha, 3) == 2.291 and round(loose.cd, 2) == 1.12
    assert loose.separated() == [("C4.5+m+cf", "C4.5"), ("C4.5+m", "C4.5")]
    assert "no pair here does" in result.sentence()
    assert "2 pairs here do: C4.5+m+cf (1.96) over C4.5 (3.14), C4.5+m (2.00) over C4.5 (3.14)" in loose.sentence()


def test_nemenyi_p_values_agree_with_the_critical_difference():
    for alpha in (0.05, 0.10):
        result = across.ranks(demsar(), alpha=alpha)
        separated = set(result.separated())
        for a in DEMSAR_NAMES:
            for b in DEMSAR_NAMES:
                if a != b:
                    apart = (a, b) in separated or (b, a) in separated
                    assert (result.pvalues.loc[a, b] < alpha) == apart, (alpha, a, b)


def test_critical_differences_from_the_studentized_range():
    # Demšar's Table 5(a) q_0.05: 1.960 for k = 2 (the normal quantile), 3.164 for k = 10.
    assert round(across.nemenyi_cd(2, 10)[0], 3) == 1.960
    assert round(across.nemenyi_cd(10, 5)[0], 3) == 3.164
    # The study: 14 variants on 5 datasets, q = 3.354, CD = 3.354 * sqrt(14 * 15 / 30) = 8.87.
    q, cd = across.nemenyi_cd(14, 5)
    assert round(q, 3) == 3.354 and cd == pytest.approx(q * math.sqrt(7)) and round(cd, 2) == 8.87


def test_ranks_on_made_up_tables():
    # Five datasets that order a > b > c > d every time: ranks 1..4, Friedman's chi2 at its
    # maximum N (k - 1) = 15, F infinite. CD = 2.569 sqrt(20 / 30) = 2.10: only a and d are apart.
    ordered = pd.DataFrame([[0.9, 0.8, 0.7, 0.6]] * 5, columns=list("abcd"))
    ordered["partial"] = [0.5, 0.5, np.nan, 0.5, 0.5]  # absent on one dataset: left out
    result = across.ranks(ordered)
    assert result.mean_ranks == {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    assert result.chi2 == pytest.approx(15.0) and result.f == math.inf and result.p == 0.0
    assert result.excluded == ("partial",) and round(result.cd, 2) == 2.10
    assert result.separated() == [("a", "d")]
    assert result.sentence().startswith("With 5 datasets and 4 variants two mean ranks must differ by more than 2.10")
    assert "1 pair here does: a (1.00) over d (4.00)" in result.sentence()
    assert "take no part: partial" in result.sentence()
    # A variant identical to another ties with it everywhere: both get the average rank, 1.5 where
    # they lead (datasets 1 and 3), 2.5 where y does: (1.5 + 2.5 + 1.5) / 3; y (3 + 1 + 3) / 3.
    twins = pd.DataFrame([[0.9, 0.9, 0.7], [0.8, 0.8, 0.9], [0.6, 0.6, 0.5]], columns=["x", "twin", "y"])
    assert across.ranks(twins).mean_ranks == pytest.approx({"x": 11 / 6, "twin": 11 / 6, "y": 7 / 3})
    # Two datasets, 14 variants: CD 14.0 exceeds the widest possible gap, 13.
    two = across.ranks(pd.DataFrame([np.arange(14.0)] * 2, columns=[f"v{i}" for i in range(14)]))
    assert two.cd > 13 and "these ranks separate nothing" in two.sentence()


def test_equal_splits_give_an_interval_of_zero_width_at_the_value():
    # Each dataset's splits all equal: every resample reproduces them. Normalised 0.5, 0.2, 0.8:
    # mean 0.5, IQM of 3 values trims none (int(0.25 * 3) = 0), also 0.5.
    values = {dataset: {"a": list(accuracy(dataset, [level] * j)), "b": list(accuracy(dataset, [0.3] * j))}
              for dataset, level, j in (("titanic", 0.5, 20), ("penguins", 0.2, 12), ("wine", 0.8, 7))}
    out = across.aggregate(table(values), SHARES, resamples=999)
    for column in ("mean", "mean_low", "mean_high", "iqm", "iqm_low", "iqm_high"):
        assert out.loc["a", column] == pytest.approx(0.5, abs=1e-12)
        assert out.loc["b", column] == pytest.approx(0.3, abs=1e-12)
    assert out.loc["a", "datasets"] == 3 and out.loc["a", "absent"] == ""


def test_a_variant_shifted_on_every_split_is_shifted_exactly_and_paired():
    # Noisy splits; "shifted" is "base" + 0.1 normalised on every split of every dataset, which
    # have 20, 12 and 7 splits. Resampled with the same split indices, its every resample is
    # base's + 0.1: point and interval shift by exactly 0.1, and the paired difference has an
    # interval of zero width (independent draws per variant would widen it to about +-0.04).
    rng = np.random.default_rng(3)
    values = {}
    for dataset, j in (("titanic", 20), ("penguins", 12), ("wine", 7)):
        base = rng.normal(0.5, 0.08, j)
        values[dataset] = {"base": list(accuracy(dataset, base)), "shifted": list(accuracy(dataset, base + 0.1)),
                           "other": list(accuracy(dataset, rng.normal(0.5, 0.08, j)))}
    out = across.aggregate(table(values), SHARES, resamples=2000, seed=7, reference="base")
    for column in ("mean", "mean_low", "mean_high", "iqm", "iqm_low", "iqm_high"):
        assert out.loc["shifted", column] - out.loc["base", column] == pytest.approx(0.1, abs=1e-12)
    assert out.loc["base", "mean_high"] - out.loc["base", "mean_low"] > 0.02  # the noise is there
    assert out.loc["shifted", ["diff", "diff_low", "diff_high"]].tolist() == pytest.approx([0.1] * 3, abs=1e-12)
    assert out.loc["base", ["diff", "diff_low", "diff_high"]].tolist() == [0.0, 0.0, 0.0]
    assert out.loc["other", "diff_high"] - out.loc["other", "diff_low"] > 0.02  # not paired by value


def test_the_bootstrap_resamples_splits_as_a_plain_loop_does():
    # The input has no replica axis: one row per (dataset, variant, split), the split's mean over
    # its seeds; a dataset of J splits draws J split indices per resample. A plain loop with the
    # same generator (datasets in sorted order) is the oracle.
    rng = np.random.default_rng(11)
    normalised = {"penguins": rng.uniform(0, 1, 9), "titanic": rng.uniform(0, 1, 15)}
    values = {dataset: {"a": list(accuracy(dataset, x))} for dataset, x in normalised.items()}
    out = across.aggregate(table(values), SHARES, resamples=500, seed=5, confidence=0.9)
    draws = np.random.default_rng(5)
    per_dataset = []
    for dataset in sorted(normalised):
        x = normalised[dataset]
        per_dataset.append([x[draws.integers(0, len(x), size=len(x))].mean() for _ in range(500)])
    means = np.mean(per_dataset, axis=0)
    low, high = np.quantile(means, [0.05, 0.95])
    assert out.loc["a", "mean"] == pytest.approx(np.mean([x.mean() for x in normalised.values()]), abs=1e-12)
    assert (out.loc["a", "mean_low"], out.loc["a", "mean_high"]) == pytest.approx((low, high), abs=1e-12)
    # Replicas (several rows for one split) are refused, not resampled as if they were splits.
    seeds = pd.concat([table(values), table(values)])
    with pytest.raises(PipelineError, match="several rows for split 0: give one split mean .* not replicas"):
        across.aggregate(seeds, SHARES)


def test_the_interval_covers_a_known_truth_about_95_percent_of_the_time():
    # 200 simulated studies of 5 datasets, 20 splits each, true normalised means 0.1, 0.25, 0.4,
    # 0.55, 0.7 and noise 0.05: over these datasets the true mean is 0.4, and so is the true IQM
    # (the mean of the middle three). Percentile intervals from 20 splits run a little narrow
    # (189 and 186 of 200 here); 0.88 is well below that, 0.99 above.
    rng = np.random.default_rng(2024)
    truth = {"titanic": 0.1, "penguins": 0.25, "breast_cancer": 0.4, "wine": 0.55, "digits": 0.7}
    covered = {"mean": 0, "iqm": 0}
    studies = 200
    for study in range(studies):
        values = {dataset: {"a": list(accuracy(dataset, rng.normal(mu, 0.05, 20)))} for dataset, mu in truth.items()}
        row = across.aggregate(table(values), SHARES, resamples=999, seed=study).loc["a"]
        for statistic in covered:
            covered[statistic] += row[f"{statistic}_low"] <= 0.4 <= row[f"{statistic}_high"]
    for statistic, count in covered.items():
        assert 0.88 <= count / studies <= 0.99, (statistic, count)


def test_a_variant_missing_on_a_dataset_is_aggregated_over_the_others_and_says_so():
    values = {dataset: {"a": list(accuracy(dataset, [level] * 5)), "b": list(accuracy(dataset, [0.4] * 5))}
              for dataset, level in (("titanic", 0.3), ("penguins", 0.6), ("wine", 0.9))}
    del values["penguins"]["b"]
    out = across.aggregate(table(values), SHARES, resamples=200, reference="a")
    assert out.loc["a", "datasets"] == 3 and out.loc["b", "datasets"] == 2
    assert out.loc["b", "absent"] == "penguins"
    assert out.loc["b", "mean"] == pytest.approx(0.4)
    assert out.loc["b", "diff"] == pytest.approx(0.4 - (0.3 + 0.9) / 2)  # on its own two datasets
    means = across.dataset_means(table(values), SHARES)
    assert math.isnan(means.loc["penguins", "b"]) and means.loc["wine", "a"] == pytest.approx(0.9)


def test_verdict_counts_on_a_made_up_table():
    verdicts = {
        "titanic": {"mse": "worse", "focal": "equivalent", "twin": "identical to mse", "hinge": "better"},
        "penguins": {"mse": "worse", "focal": "equivalent", "twin": "identical to mse", "hinge": "better"},
        "breast_cancer": {"mse": "worse", "focal": "inconclusive", "twin": "inconclusive", "hinge": "n/a"},
        "wine": {"mse": "worse", "focal": "equivalent", "twin": "worse"},
        "digits": {"mse": "worse", "focal": "inconclusive", "twin": "worse", "hinge": "untested"},
    }
    assert across.verdict_counts(verdicts) == {
        "mse": "worse 5/5",
        "focal": "equivalent 3/5, inconclusive 2/5",
        "twin": "worse 2/5, identical to mse 2/5, inconclusive 1/5",  # identical to what, said
        "hinge": "better 2/5, n/a 2/5, untested 1/5",  # n/a on breast_cancer, and on wine, which omits it
    }


def test_a_critical_difference_diagram_of_14_variants(tmp_path):
    from matplotlib import image

    rng = np.random.default_rng(0)
    names = [f"variant_{i:02d}_long_name" for i in range(14)]
    means = pd.DataFrame(np.arange(14)[::-1] / 20 + rng.normal(0, 0.15, (5, 14)), columns=names)
    result = across.ranks(means)
    path = tmp_path / "diagram.png"
    path.write_bytes(overview.diagram_png(result, variant_colours(names)))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = image.imread(path).shape[:2]
    assert width > 1000 and height > 400  # room for 7 label lines a side


@pytest.mark.parametrize("call, message", [
    (lambda: across.normalised(0.9, 1.0), r"majority share 1.0 is not in \[0, 1\)"),
    (lambda: across.aggregate(table({"titanic": {"a": [0.8]}}), {"titanic": 1.0}),
     r"majority share 1.0 of dataset 'titanic' is not in \[0, 1\)"),
    (lambda: across.aggregate(table({"titanic": {"a": [0.8]}, "iris": {"a": [0.9]}}), SHARES),
     "no majority share for dataset 'iris'"),
    (lambda: across.aggregate(pd.DataFrame(columns=list(across.COLUMNS)), SHARES),
     "the table of split accuracies is empty"),
    (lambda: across.aggregate(table({"titanic": {"a": [0.8, 0.7], "b": [0.8]}}), SHARES),
     r"b on titanic lacks split\(s\) \[1\]"),
    (lambda: across.aggregate(table({"titanic": {"a": [0.8, 80.0]}}), SHARES),
     r"accuracy 80.0 of a on titanic, split 1, is not a number in \[0, 1\]"),
    (lambda: across.aggregate(table({"titanic": {"a": [0.8]}}), SHARES, reference="z"),
     "reference 'z' is missing"),
    (lambda: across.ranks(pd.DataFrame([[0.1, 0.2]] * 3, columns=["a", "b"])), "3 or more variants"),
    (lambda: across.verdict_counts({}), "no verdicts to count"),
])
def test_bad_input_is_one_line_naming_it(call, message):
    with pytest.raises(PipelineError, match=message) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_inflation_widens_every_interval_by_its_factor_about_the_same_mean():
    """Stretching a dataset's split values by f about their mean stretches the resampled means by
    f too (same draws): on one dataset every interval is f times as wide, the estimates unchanged."""
    rng = np.random.default_rng(3)
    rows = [{"dataset": "d", "variant": v, "split": k, "accuracy": float(a)}
            for v, base in (("a", 0.7), ("b", 0.72), ("c", 0.6))
            for k, a in enumerate(base + rng.normal(0, 0.02, 12))]
    table = pd.DataFrame(rows)
    plain = across.aggregate(table, {"d": 0.5}, resamples=999, seed=1, reference="a")
    twice = {"d": dict.fromkeys("abc", 2.0)}
    wide = across.aggregate(table, {"d": 0.5}, resamples=999, seed=1, reference="a", inflation=twice,
                            diff_inflation=twice)
    for stat in ("mean", "iqm", "diff"):
        np.testing.assert_allclose(wide[stat], plain[stat], atol=1e-12)
        np.testing.assert_allclose(wide[f"{stat}_high"] - wide[f"{stat}_low"],
                                   2 * (plain[f"{stat}_high"] - plain[f"{stat}_low"]), atol=1e-12)
    # Each variant and each difference by its own factor: only b's difference widens here.
    own = across.aggregate(table, {"d": 0.5}, resamples=999, seed=1, reference="a", diff_inflation={"d": {"b": 3.0}})
    widths = (own["diff_high"] - own["diff_low"]) / (plain["diff_high"] - plain["diff_low"])
    assert widths["b"] == pytest.approx(3.0) and widths["c"] == pytest.approx(1.0)
    np.testing.assert_allclose(own["mean_high"], plain["mean_high"], atol=1e-12)
    with pytest.raises(PipelineError, match="below 1"):
        across.aggregate(table, {"d": 0.5}, resamples=9, inflation={"d": {"a": 0.5}})


def test_the_diagram_is_the_same_bytes_whatever_the_hash_seed(tmp_path):
    """A DVC output must be a function of its inputs: the library iterates sets of variant names,
    whose order changes with PYTHONHASHSEED from one process to the next."""
    import subprocess
    import sys

    code = ("import sys; import pandas as pd; from pathlib import Path; from pipeline.statistics import across\n"
            "from pipeline.core.figures import variant_colours; from pipeline.reports import overview\n"
            "means = pd.DataFrame({v: [0.9 - 0.01 * i * (d + 1) % 0.07 for d in range(5)] for i, v in "
            "enumerate(['square_loss', 'bce_with_logits', 'cross_entropy', 'mse', 'l1', 'nll_relu', 'kldiv_relu'])})\n"
            "Path(sys.argv[1]).write_bytes(overview.diagram_png(across.ranks(means), variant_colours(means)))\n")
    shots = []
    for seed in ("1", "2", "3"):
        target = tmp_path / f"cd{seed}.png"
        subprocess.run([sys.executable, "-c", code, str(target)], check=True, cwd=ROOT,
                       env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)})
        shots.append(target.read_bytes())
    assert shots[0] == shots[1] == shots[2]


def test_wilcoxon_needs_six_datasets_for_one_variant_and_nine_for_nine_under_holm():
    assert across.smallest_wilcoxon_p(5) == 0.0625 and across.smallest_wilcoxon_p(6) == 0.03125
    # scipy's exact test agrees: five differences all of one sign give 2/2^5.
    assert scipy_stats.wilcoxon([0.01, 0.02, 0.03, 0.04, 0.05], method="exact").pvalue == pytest.approx(0.0625)
    assert across.datasets_for_wilcoxon(0.05, 1) == 6 and across.datasets_for_wilcoxon(0.05, 9) == 9
    assert across.datasets_for_wilcoxon(0.05, 2) == 7  # 2 * 2/2^6 = 0.0625: not yet


def _accuracy(differences: dict[str, list[float]], reference: str = "ce") -> pd.DataFrame:
    base = np.linspace(0.7, 0.95, len(next(iter(differences.values()))))
    return pd.DataFrame({reference: base, **{name: base + np.array(d) for name, d in differences.items()}})


def test_against_the_reference_on_five_datasets_bayes_only_and_wilcoxon_says_why_not():
    accuracy = _accuracy({"same": [0.001, -0.002, 0.0, 0.002, -0.001], "up": [0.04, 0.05, 0.03, 0.06, 0.045]})
    rows, sentence = across.against_reference(accuracy, "ce", ["ce", "same", "up"], rope=0.01, alpha=0.05, seed=0)
    by = {r.variant: r for r in rows}
    assert set(by) == {"same", "up"}  # the reference is not compared with itself
    assert by["same"].p_equivalent > 0.95 and by["up"].p_better > 0.95
    assert by["up"].mean_diff == pytest.approx(0.045)
    assert all(r.wilcoxon_p is None for r in rows)
    assert "not run" in sentence and "2/2^5 = 0.0625" in sentence and "before 7 datasets" in sentence
    # The same seed, the same posterior: a DVC output.
    again, _ = across.against_reference(accuracy, "ce", ["same", "up"], rope=0.01, alpha=0.05, seed=0)
    assert again == rows


def test_from_the_datasets_holm_can_use_wilcoxon_runs_on_the_non_zero_differences():
    up = [0.04, 0.05, 0.03, 0.06, 0.045, 0.05, 0.02]
    accuracy = _accuracy({"up": up, "mixed": [0.01, -0.02, 0.0, 0.02, -0.01, 0.005, 0.003]})
    rows, sentence = across.against_reference(accuracy, "ce", ["up", "mixed"], rope=0.01, alpha=0.05, seed=0)
    by = {r.variant: r for r in rows}
    assert by["up"].wilcoxon_p == pytest.approx(2 / 2 ** 7)
    assert by["up"].wilcoxon_p_holm == pytest.approx(2 * 2 / 2 ** 7)  # the smaller of two p-values, times 2
    assert "up (p 0.0312)" in sentence and "mixed" not in sentence
    # mixed has a zero difference: its test is on its six others, as scipy's zero_method "wilcox" has it.
    nonzero = np.array([0.01, -0.02, 0.02, -0.01, 0.005, 0.003])
    assert by["mixed"].wilcoxon_p == pytest.approx(scipy_stats.wilcoxon(nonzero, method="exact").pvalue)


def test_the_bayesian_posterior_finds_a_known_truth_on_this_design():
    """Five datasets' mean differences drawn about a known true difference with the spread the
    study's per-dataset means have (sd 0.004, Titanic's sound differences): a truth of 0 is
    practically equivalent within +-0.01, a truth of +0.04 better, each with posterior >= 0.95 in
    most simulated studies; a truth on the margin's edge (+0.01) is seldom called either way."""
    rng = np.random.default_rng(11)
    calls = {0.0: [], 0.04: [], 0.01: []}
    for truth in calls:
        for study in range(15):
            accuracy = _accuracy({"v": truth + rng.normal(0, 0.004, 5)})
            (row,), _ = across.against_reference(accuracy, "ce", ["v"], rope=0.01, alpha=0.05, seed=study)
            calls[truth].append(row)
    assert np.mean([r.p_equivalent >= 0.95 for r in calls[0.0]]) >= 0.8
    assert np.mean([r.p_better >= 0.95 for r in calls[0.04]]) >= 0.8
    assert np.mean([max(r.p_better, r.p_equivalent) >= 0.95 for r in calls[0.01]]) <= 0.5


def test_copies_and_unsound_pairings_are_set_apart_before_ranking():
    """A variant identical to the same twin on every dataset is a copy; one identical on only some
    is its own variant; a pairing warned of before training is unsound (overview.set_apart)."""
    from types import SimpleNamespace as Made

    def record(warning=None):
        return Made(warning=warning)

    records = {d: {"ce": record(), "nll_logsoftmax": record(), "nll_relu": record("NLLLoss expects log-probabilities"),
                   "kldiv_relu": record("KLDivLoss expects log-probabilities"), "sometimes": record()}
               for d in ("a", "b")}
    per_dataset = {"a": Made(identical={"nll_logsoftmax": "ce", "kldiv_relu": "nll_relu", "sometimes": "ce"}),
                   "b": Made(identical={"nll_logsoftmax": "ce", "kldiv_relu": "nll_relu"})}
    apart = overview.set_apart(records, per_dataset)
    assert apart == {"nll_logsoftmax": "identical to ce on every dataset",
                     "nll_relu": "unsound pairing: NLLLoss expects log-probabilities",
                     "kldiv_relu": "identical to nll_relu on every dataset"}


def test_the_stretched_bootstrap_has_the_t_interval_of_the_seed_aware_variance():
    """per_dataset.stretch: split means stretched by it and resampled give a percentile interval
    as wide as the t interval of estimate()'s V (the per-dataset tests'), on a grid with both split
    and seed noise."""
    from pipeline.statistics import per_dataset

    rng = np.random.default_rng(5)
    grid = 0.8 + rng.normal(0, 0.02, 20)[None, :] + rng.normal(0, 0.03, (5, 20))
    share = 0.25
    factor = per_dataset.stretch(grid, share, 0.95)
    found = per_dataset.estimate(grid, share)
    means = per_dataset.split_means(grid)
    stretched = means.mean() + (means - means.mean()) * factor
    boot = stretched[rng.integers(0, 20, (40_000, 20))].mean(axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    t_low, t_high = found.interval(0.05)
    assert high - low == pytest.approx(t_high - t_low, rel=0.03)
    assert factor > 1 and per_dataset.stretch(np.full((3, 4), 0.7), share, 0.95) == 1.0


@pytest.mark.parametrize("tables, said", [
    (3, "Here, per dataset against cross-entropy: t0 equivalent; t1 equivalent; t2 worse, size unresolved."),
    (12, "Here, against cross-entropy on its 12 datasets: equivalent 8/12, worse, size unresolved 4/12."),
])
def test_the_square_loss_answer_names_each_datasets_verdict_or_counts_them_over_many(tables, said):
    from pipeline.core import config

    from .conftest import small_params

    params = config.parse(small_params(variants=["cross_entropy", "mse", "square_loss"]))
    verdicts = {f"t{i}": {"square_loss": "worse, size unresolved" if i % 3 == 2 else "equivalent"}
                for i in range(tables)}
    aggregated = pd.DataFrame({"diff": [-0.004], "diff_low": [-0.009], "diff_high": [0.001],
                               "datasets": [tables]}, index=["square_loss"])
    from pipeline.core.summaries import AgainstReference

    tested = AgainstReference(variant="square_loss", datasets=tables, mean_diff=-0.0031, p_worse=0.01,
                              p_equivalent=0.98, p_better=0.01, wilcoxon_p=0.2, wilcoxon_p_holm=0.6)
    answer = overview.square_loss_answer(params, {}, verdicts, aggregated, [tested])
    assert said in answer
    assert f"averaged over the {tables} datasets, differs by -0.004 [-0.009, +0.001]: not told apart" in answer
    assert answer.endswith("In accuracy, over the datasets, its mean difference is -0.0031; the Bayesian signed-rank "
                           "test gives posterior probabilities 0.01 that worse by more than +-0.01 is the likeliest "
                           "region, 0.98 within it, 0.01 better by more; Wilcoxon's p (Holm) 0.6.")
