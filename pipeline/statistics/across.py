"""Statistics across datasets: how each variant does over all of them, and what they can tell apart.

Every variant is trained on J train/validation splits of each dataset of params.yaml, and each
split's seeds are averaged first (`per_dataset.py`): this module takes those split means, one row
per (dataset, variant, split), and never sees a replica.

- Accuracy is not comparable between datasets (always guessing the majority class scores 0.62 on
  one, 0.10 on another), so it is normalised per dataset: (acc - majority share) /
  (1 - majority share), 0 for the majority guess, 1 for a perfect score, below 0 for worse than
  guessing.
- Per variant, the mean and the interquartile mean (IQM; Agarwal et al., "Deep Reinforcement
  Learning at the Edge of the Statistical Precipice", NeurIPS 2021) of its per-dataset mean
  normalised accuracy, each with a percentile bootstrap interval stratified by dataset: every
  resample draws, within each dataset on its own, J split indices with replacement, the same
  indices for every variant of that dataset (paired, as the splits are), and recomputes the
  statistic. The datasets themselves are not resampled: the interval is about these datasets'
  splits, not about datasets in general (five are too few to resample).
- Verdict counts: each variant's per-dataset verdicts from `per_dataset.py`, counted.
- Ranks: per dataset the variants ranked by mean normalised accuracy (1 = best, ties averaged),
  the mean rank per variant, Friedman's test and the Nemenyi critical difference, after Demšar
  ("Statistical Comparisons of Classifiers over Multiple Data Sets", JMLR 7, 2006), and the
  critical difference diagram drawn by scikit-posthocs.

rliable (the IQM paper's library) is not used: its stratified bootstrap wants the same number of
runs on every task and resamples each algorithm on its own, where these datasets have their own J
and the variants of one dataset must share their resampled splits. The resampling is therefore the
few numpy lines below; the IQM is scipy's trim_mean, Friedman's chi-square scipy's, the Nemenyi
p-values and the diagram scikit-posthocs'.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.errors import PipelineError
from ..core.summaries import AgainstReference
from ..core.vocabulary import NOT_APPLICABLE, VERDICTS, kind as verdict_kind

COLUMNS = ("dataset", "variant", "split", "accuracy")
# The verdict words are the vocabulary's: "identical to X" counts under its own words (a reader
# must see identical to what), and a variant a dataset's verdicts do not mention counts as
# NOT_APPLICABLE there.
IQM_TRIM = 0.25  # trimmed from each end: with 5 datasets, the best and the worst one
METHOD = ("percentile bootstrap stratified by dataset, resampling splits (paired across a "
          "dataset's variants; each variant's and each difference's spread widened to its seed-aware corrected "
          "variance), datasets fixed")


def normalised(accuracy, majority_share: float):
    """(accuracy - m) / (1 - m), m the share of a dataset's majority class in [0, 1): 0 is what
    always guessing the majority scores, 1 a perfect score. A float for a float, else an array."""
    m = float(majority_share)
    if not (math.isfinite(m) and 0 <= m < 1):
        raise PipelineError(f"majority share {majority_share!r} is not in [0, 1)")
    value = (np.asarray(accuracy, dtype=float) - m) / (1 - m)
    return float(value) if value.ndim == 0 else value


def _checked(table: pd.DataFrame, majority_share: dict[str, float]) -> pd.DataFrame:
    """The table with a `normalised` column, or a PipelineError naming what is wrong."""
    if not isinstance(table, pd.DataFrame):
        raise PipelineError(f"the split accuracies must be a pandas DataFrame, not {type(table).__name__}")
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing:
        raise PipelineError(f"the split accuracies lack the column(s) {', '.join(missing)} "
                            f"(need {', '.join(COLUMNS)})")
    if table.empty:
        raise PipelineError("the table of split accuracies is empty")
    table = table.loc[:, list(COLUMNS)].copy()
    numbers = pd.to_numeric(table["accuracy"], errors="coerce")
    bad = table[~((numbers >= 0) & (numbers <= 1))]
    if len(bad):
        row = bad.iloc[0]
        raise PipelineError(f"accuracy {row['accuracy']} of {row['variant']} on {row['dataset']}, "
                            f"split {row['split']}, is not a number in [0, 1]")
    twice = table[table.duplicated(["dataset", "variant", "split"])]
    if len(twice):
        row = twice.iloc[0]
        raise PipelineError(f"{row['variant']} on {row['dataset']} has several rows for split {row['split']}: "
                            "give one split mean (its seeds averaged) per split, not replicas")
    shares = {}
    for dataset in table["dataset"].unique():
        if dataset not in majority_share:
            raise PipelineError(f"no majority share for dataset {dataset!r}")
        m = majority_share[dataset]
        try:
            normalised(0.0, m)
        except PipelineError:
            raise PipelineError(f"majority share {m!r} of dataset {dataset!r} is not in [0, 1)") from None
        shares[dataset] = float(m)
    table["accuracy"] = table["accuracy"].astype(float)
    table["normalised"] = (table["accuracy"] - table["dataset"].map(shares)) / (1 - table["dataset"].map(shares))
    return table


def _matrices(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{dataset: (splits x variants) normalised accuracy}; every variant of a dataset has every
    split of it, since the bootstrap pairs them by split."""
    out = {}
    for dataset, rows in table.groupby("dataset", sort=True):
        grid = rows.pivot(index="split", columns="variant", values="normalised")
        holes = grid.isna()
        if holes.any().any():
            variant = holes.any().idxmax()
            lacking = list(grid.index[holes[variant]])
            raise PipelineError(f"{variant} on {dataset} lacks split(s) {lacking} that other variants have: "
                                "a dataset's variants are paired by split, each needs every split")
        out[dataset] = grid
    return out


def dataset_means(table: pd.DataFrame, majority_share: dict[str, float]) -> pd.DataFrame:
    """(datasets x variants) mean normalised accuracy over each dataset's splits; NaN where a
    variant does not exist on a dataset."""
    grids = _matrices(_checked(table, majority_share))
    return pd.DataFrame({dataset: grid.mean() for dataset, grid in grids.items()}).T.rename_axis("dataset")


def aggregate(table: pd.DataFrame, majority_share: dict[str, float], *, resamples: int = 9999,
              confidence: float = 0.95, seed: int = 0, reference: str | None = None,
              inflation: dict[str, dict[str, float]] | None = None,
              diff_inflation: dict[str, dict[str, float]] | None = None) -> pd.DataFrame:
    """Each variant's mean and IQM over datasets of its mean normalised accuracy, with intervals
    from the stratified, paired bootstrap of the module's docstring (METHOD).

    `table`: one row per (dataset, variant, split) with columns dataset, variant, split,
    accuracy, the split mean over its seeds; datasets may have different numbers of splits.
    `majority_share`: {dataset: share of its majority class}.

    Returns a DataFrame indexed by variant (in order of first appearance) with columns datasets
    (how many it was aggregated over), absent (the datasets it does not exist on, comma-separated,
    "" if none), mean, mean_low, mean_high, iqm, iqm_low, iqm_high; with `reference`, also diff,
    diff_low, diff_high: the mean over the variant's datasets of its paired difference to the
    reference (which must exist on every dataset).

    A variant missing on some datasets is aggregated over the ones it has: its numbers answer a
    question about fewer, other datasets (normalising removes the majority share, not how hard a
    dataset is), so compare it only with variants over the same datasets, or by its diff, which
    is taken on its own datasets. The IQM of 5 values is the mean of the middle 3; of fewer than
    4 it trims nothing and is the mean.

    `inflation`: {dataset: {variant: factor}} by which a variant's split values are stretched
    about their mean before resampling, and `diff_inflation` the same for its split differences
    to the reference. Splits of one dataset share most of their training rows, so their means are
    correlated and a bootstrap that treats them as independent is too narrow, as an uncorrected
    t interval is; per_dataset.stretch's factor gives each resampled mean the seed-aware corrected
    variance per_dataset.py tests with. The observed means are unchanged."""
    if not (0 < confidence < 1):
        raise PipelineError(f"confidence {confidence!r} is not between 0 and 1")
    if int(resamples) != resamples or resamples < 1:
        raise PipelineError(f"resamples {resamples!r} is not a positive whole number")
    checked = _checked(table, majority_share)
    grids = _matrices(checked)
    variants = list(dict.fromkeys(checked["variant"]))
    if reference is not None:
        lacking = [dataset for dataset, grid in grids.items() if reference not in grid.columns]
        if reference not in variants or lacking:
            raise PipelineError(f"reference {reference!r} is missing on {', '.join(lacking) or 'every dataset'}")
    counts = _counts(grids, int(resamples), seed)
    stretched = _inflated(grids, inflation or {})
    resampled = {d: counts[d] @ grid.to_numpy() / len(grid) for d, grid in stretched.items()}
    differences = None
    if reference is not None:
        differences = _inflated({d: grid.sub(grid[reference], axis=0) for d, grid in grids.items()},
                                diff_inflation or {})
        differences = {d: (grid, counts[d] @ grid.to_numpy() / len(grid)) for d, grid in differences.items()}
    tail = (1 - confidence) / 2
    out = {variant: _variant_row(variant, grids, resampled, differences, tail) for variant in variants}
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("variant")


def _inflated(grids: dict[str, pd.DataFrame], inflation: dict[str, dict[str, float]]) -> dict[str, pd.DataFrame]:
    """Each variant's split values stretched about their mean by its factor (aggregate's `inflation`)."""
    out = dict(grids)
    for dataset, factors in inflation.items():
        if dataset not in out:
            continue
        grid = out[dataset].copy()
        for variant, factor in factors.items():
            if variant in grid.columns:
                if not factor >= 1:
                    raise PipelineError(f"inflation {factor!r} for {variant} on {dataset} is below 1 "
                                        "(it widens, never narrows)")
                grid[variant] = grid[variant].mean() + (grid[variant] - grid[variant].mean()) * factor
        out[dataset] = grid
    return out


def _counts(grids: dict[str, pd.DataFrame], resamples: int, seed: int) -> dict[str, np.ndarray]:
    """dataset -> (resamples x J) how often each split was drawn: each resample draws J split
    indices with replacement, the same for every variant of the dataset (and their differences),
    so counts @ values / J is the resampled mean with memory resamples x J."""
    rng = np.random.default_rng(seed)
    out = {}
    for dataset, grid in grids.items():
        j = len(grid)
        drawn = rng.integers(0, j, size=(resamples, j))
        rows = np.arange(resamples)[:, None] * j
        out[dataset] = np.bincount((drawn + rows).ravel(), minlength=resamples * j).reshape(resamples, j)
    return out


def _mean(values, axis):
    return values.mean(axis=axis)


def _iqm(values, axis):
    from scipy import stats

    return stats.trim_mean(values, IQM_TRIM, axis=axis)


def _variant_row(variant: str, grids: dict[str, pd.DataFrame], resampled: dict[str, np.ndarray],
                 differences: dict[str, tuple[pd.DataFrame, np.ndarray]] | None, tail: float) -> dict:
    """One variant's row of aggregate: its datasets, mean and IQM with their percentile intervals,
    and its paired difference to the reference."""
    def summary(observed: np.ndarray, boot: np.ndarray, statistic) -> tuple[float, float, float]:
        low, high = np.quantile(statistic(boot, axis=1), [tail, 1 - tail])
        return float(statistic(observed[None, :], axis=1)[0]), float(low), float(high)

    present = [dataset for dataset, grid in grids.items() if variant in grid.columns]
    observed = np.array([grids[d][variant].mean() for d in present])
    boot = np.column_stack([resampled[d][:, grids[d].columns.get_loc(variant)] for d in present])
    row = {"datasets": len(present), "absent": ", ".join(d for d in grids if d not in present)}
    row["mean"], row["mean_low"], row["mean_high"] = summary(observed, boot, _mean)
    row["iqm"], row["iqm_low"], row["iqm_high"] = summary(observed, boot, _iqm)
    if differences is not None:
        diff = np.array([differences[d][0][variant].mean() for d in present])
        diff_boot = np.column_stack([differences[d][1][:, differences[d][0].columns.get_loc(variant)]
                                     for d in present])
        row["diff"], row["diff_low"], row["diff_high"] = summary(diff, diff_boot, _mean)
    return row


def verdict_counts(verdicts: dict[str, dict[str, str]]) -> dict[str, str]:
    """{dataset: {variant: verdict}} -> {variant: "equivalent 3/5, inconclusive 2/5"}.

    The denominator is the number of datasets; a variant a dataset does not list counts as "n/a"
    there, and "identical to X" under its own words (identical to what). Verdicts are listed most
    frequent first, ties in VERDICTS' order, then alphabetically."""
    if not verdicts:
        raise PipelineError("no verdicts to count: the mapping of datasets to verdicts is empty")
    total = len(verdicts)
    variants = list(dict.fromkeys(v for per_dataset in verdicts.values() for v in per_dataset))
    order = {kind: i for i, kind in enumerate(VERDICTS)}
    out = {}
    for variant in variants:
        counts: dict[str, int] = {}
        for per_dataset in verdicts.values():
            verdict = per_dataset.get(variant, NOT_APPLICABLE)
            counts[verdict] = counts.get(verdict, 0) + 1
        ranked = sorted(counts, key=lambda said: (-counts[said], order.get(verdict_kind(said), len(VERDICTS)), said))
        out[variant] = ", ".join(f"{said} {counts[said]}/{total}" for said in ranked)
    return out


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """(q_alpha, CD): the Nemenyi critical difference of mean ranks for k variants on n datasets,
    CD = q_alpha sqrt(k (k + 1) / (6 n)), q_alpha the studentized range's 1 - alpha quantile for k
    groups and infinite degrees of freedom over sqrt(2) (Demšar 2006, section 3.2.2)."""
    from scipy import stats

    if k < 2 or n < 1:
        raise PipelineError(f"a critical difference needs 2 or more variants and 1 or more datasets, not k={k}, N={n}")
    q = float(stats.studentized_range.ppf(1 - alpha, k, math.inf) / math.sqrt(2))
    return q, q * math.sqrt(k * (k + 1) / (6 * n))


def iman_davenport(chi2: float, n: int, k: int) -> tuple[float, float]:
    """(F, p): Iman and Davenport's F = (N - 1) chi2 / (N (k - 1) - chi2) from Friedman's chi2,
    F-distributed with k - 1 and (k - 1)(N - 1) degrees of freedom. Demšar (2006) recommends it
    over the chi-square, which is undesirably conservative; few datasets make that matter most."""
    from scipy import stats

    room = n * (k - 1) - chi2
    if room <= 0:  # every dataset ranks the variants the same, without ties: F is infinite
        return math.inf, 0.0
    f = (n - 1) * chi2 / room
    return float(f), float(stats.f.sf(f, k - 1, (k - 1) * (n - 1)))


@dataclass(frozen=True, eq=False)  # eq=False: it holds a DataFrame
class Ranks:
    """Mean ranks over datasets with Friedman's test and the Nemenyi critical difference."""

    mean_ranks: dict[str, float]  # variant -> mean rank, 1 = best, best first
    chi2: float  # Friedman's chi-square, corrected for ties (scipy.stats.friedmanchisquare)
    f: float  # Iman-Davenport's F from it
    p: float  # of F: the p-value of "every variant ranks alike"
    datasets: int  # N
    variants: int  # k
    alpha: float
    q_alpha: float
    cd: float  # two mean ranks further apart than this differ at alpha (Nemenyi)
    excluded: tuple[str, ...]  # variants absent from some dataset: they take no part
    pvalues: pd.DataFrame  # Nemenyi's pairwise p-values (scikit-posthocs), variants x variants

    def separated(self) -> list[tuple[str, str]]:
        """(better, worse) pairs whose mean ranks differ by more than the CD, widest gap first."""
        names = list(self.mean_ranks)
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                 if self.mean_ranks[b] - self.mean_ranks[a] > self.cd]
        return sorted(pairs, key=lambda pair: self.mean_ranks[pair[0]] - self.mean_ranks[pair[1]])

    def sentence(self) -> str:
        """What N datasets can and cannot separate, in words."""
        k, n = self.variants, self.datasets
        head = (f"with {n} datasets and {k} variants two mean ranks must differ by more than {self.cd:.2f} "
                f"(of at most {k - 1}) to be told apart at {self.alpha:g} (Nemenyi)")
        if self.cd >= k - 1:
            body = ("; not even a variant first on every dataset and one last on every dataset could be, "
                    "so these ranks separate nothing")
        else:
            pairs = self.separated()
            if pairs:
                shown = ", ".join(f"{a} ({self.mean_ranks[a]:.2f}) over {b} ({self.mean_ranks[b]:.2f})"
                                  for a, b in pairs)
                count = "1 pair here does" if len(pairs) == 1 else f"{len(pairs)} pairs here do"
                body = f"; {count}: {shown}"
            else:
                body = "; no pair here does"
        friedman = f". Friedman's test: chi2 = {self.chi2:.2f}, Iman-Davenport F = {self.f:.2f}, p = {self.p:.3g}"
        left_out = (f"; {len(self.excluded)} variant(s) absent from some dataset take no part: "
                    f"{', '.join(self.excluded)}" if self.excluded else "")
        text = head + body + friedman + left_out + "."
        return text[0].upper() + text[1:]


def ranks(means: pd.DataFrame, alpha: float = 0.05) -> Ranks:
    """Friedman's test and Nemenyi's critical difference over `means`, (datasets x variants) with
    higher better (as `dataset_means` returns; NaN where a variant does not exist): only the
    variants present on every dataset take part, the others are listed as excluded.

    Friedman's chi-square is scipy's, corrected for ties (identical variants tie exactly); the test's
    p-value is from Iman-Davenport's F (see `iman_davenport`). Nemenyi's p-values are
    scikit-posthocs' `posthoc_nemenyi_friedman`, which agree with the CD: p < alpha exactly when two
    mean ranks differ by more than it."""
    import scikit_posthocs
    from scipy import stats

    if not (0 < alpha < 1):
        raise PipelineError(f"alpha {alpha!r} is not between 0 and 1")
    if means.empty:
        raise PipelineError("no dataset means to rank")
    everywhere = means.notna().all()
    kept, excluded = means.loc[:, everywhere], tuple(means.columns[~everywhere])
    n, k = kept.shape
    if k < 3 or n < 2:
        raise PipelineError(f"Friedman's test needs 3 or more variants present on every one of 2 or more "
                            f"datasets; there are {k} variant(s) on all {n} dataset(s)")
    values = kept.to_numpy(dtype=float)
    rank_table = stats.rankdata(-values, axis=1, method="average")  # 1 = best
    mean_ranks = pd.Series(rank_table.mean(axis=0), index=kept.columns).sort_values(kind="stable")
    if np.all(values == values[:, :1]):  # every dataset ties every variant: nothing to test
        chi2 = 0.0
    else:
        chi2 = float(stats.friedmanchisquare(*values.T).statistic)
    f, p = iman_davenport(chi2, n, k)
    q, cd = nemenyi_cd(k, n, alpha)
    pvalues = scikit_posthocs.posthoc_nemenyi_friedman(kept.reset_index(drop=True))
    return Ranks(mean_ranks={str(name): float(r) for name, r in mean_ranks.items()}, chi2=chi2, f=f, p=p,
                 datasets=n, variants=k, alpha=alpha, q_alpha=q, cd=cd, excluded=tuple(map(str, excluded)),
                 pvalues=pvalues)


def smallest_wilcoxon_p(datasets: int) -> float:
    """The smallest two-sided p-value Wilcoxon's exact signed-rank test reaches on N non-zero
    differences (every sign alike): 2 / 2^N; 0.0625 with five."""
    return 2.0 / 2 ** datasets


def datasets_for_wilcoxon(alpha: float, compared: int) -> int:
    """The fewest datasets on which Wilcoxon's test, Holm-adjusted over `compared` variants, can
    reject anything: Holm multiplies the smallest p-value by their number, so compared * 2/2^N <
    alpha (6 datasets for one variant at 0.05, 9 for nine)."""
    n = 1
    while compared * smallest_wilcoxon_p(n) >= alpha:
        n += 1
    return n


def against_reference(accuracy: pd.DataFrame, reference: str, variants: list[str], rope: float, alpha: float,
                      seed: int) -> tuple[list[AgainstReference], str]:
    """Each of `variants` (not the reference) against it on `accuracy`, (datasets x variants)
    mean accuracy with NaN where a variant does not exist; and one sentence on what Wilcoxon's test
    can say.

    The Bayesian signed-rank test (Benavoli, Corani, Demšar and Zaffalon, "Time for a Change: a
    Tutorial for Comparing Multiple Classifiers Through Bayesian Analysis", JMLR 18, 2017; baycomp's
    SignedRankTest, its Dirichlet-process prior of strength 0.5 at a zero difference, 50000 samples
    drawn from `seed`): each posterior sample gives the probabilities that a dataset like these
    has the variant worse by more than the rope (the study's margin), within it, or better; the
    test reports how often each region is the likeliest of the three. It takes each dataset's mean
    difference as known: the per-dataset uncertainty is the per-dataset verdicts'.

    Wilcoxon's exact test (scipy), Holm-adjusted over the variants compared (statsmodels), runs
    only where that family can reject at alpha (datasets_for_wilcoxon); below that, none, and the
    sentence says why. A variant's zero differences are dropped (zero_method "wilcox"), so its
    test is on its non-zero ones."""
    import baycomp
    from scipy import stats

    from .per_dataset import holm

    compared = [name for name in variants if name != reference]
    n = len(accuracy)
    runs = n >= datasets_for_wilcoxon(alpha, len(compared))
    rows, pvalues = [], {}
    for name in compared:
        both = accuracy[[name, reference]].dropna()
        x, y = both[reference].to_numpy(dtype=float), both[name].to_numpy(dtype=float)
        if len(both) < 2:
            raise PipelineError(f"{name} and {reference} share {len(both)} dataset(s): comparing them across "
                                "datasets needs 2 or more")
        # baycomp's order: x first, y second; its "right" is y - x above the rope.
        worse, equivalent, better = baycomp.SignedRankTest.probs(x, y, rope=rope, random_state=seed)
        differences = y - x
        if runs and np.count_nonzero(differences):
            pvalues[name] = float(stats.wilcoxon(differences, zero_method="wilcox", method="exact").pvalue)
        rows.append(dict(variant=name, datasets=len(both), mean_diff=float(differences.mean()), p_worse=float(worse),
                         p_equivalent=float(equivalent), p_better=float(better)))
    adjusted = holm(pvalues, alpha) if pvalues else {}
    out = [AgainstReference(**row, wilcoxon_p=pvalues.get(row["variant"]), wilcoxon_p_holm=adjusted.get(row["variant"]))
           for row in rows]
    if not runs:
        needed = datasets_for_wilcoxon(alpha, len(compared))
        sentence = (f"Wilcoxon's signed-rank test is not run: on {n} datasets its smallest two-sided p-value is "
                    f"2/2^{n} = {smallest_wilcoxon_p(n):.4g}, and Holm over the {len(compared)} variant(s) "
                    f"compared multiplies it by {len(compared)}; nothing could fall below {alpha:g} before "
                    f"{needed} datasets.")
    else:
        shown = [r for r in out if r.wilcoxon_p_holm is not None and r.wilcoxon_p_holm < alpha]
        sentence = (f"Wilcoxon's signed-rank test against {reference} on {n} datasets, Holm over "
                    f"{len(pvalues)} variant(s): " + (", ".join(f"{r.variant} (p {r.wilcoxon_p_holm:.3g})"
                                                       for r in shown) or "none") + f" differ at {alpha:g}.")
    return out, sentence
