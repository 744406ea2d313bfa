"""Stage report: the study's conclusions on each dataset, with how sure we are of each (and then
the page across datasets, overview.py).

Per variant, over its replicas: the mean final validation accuracy with its interval; against
the reference, paired by replica, the mean difference with its interval, the probability of
improvement with its interval, Holm-corrected p-values of a difference and of equivalence
within the margin, and a verdict (statistics/per_dataset.py, where the methods are cited). The champion
follows a rule fixed in advance (statistics.CHAMPION_RULE). Written as a table (Markdown and
CSV), figures (each contrast pair with every replica's curves, the variants of
`report.compare` with their bands, every variant's interval) and summary.json, which
publishing turns into MLflow runs and the registered champion.
"""
from __future__ import annotations

import csv
import math
from collections import Counter

import numpy as np

from ..core import atomic, config
from ..core.catalog import ReportFiles
from ..core.figures import png, pyplot, variant_colours
from ..statistics import per_dataset as statistics
from ..study.diagnosis import describe
from ..core.record import SCORES, TrainingRecord, read_replicas
from ..core.summaries import COLUMNS, ReportSummary, VariantRow
from ..core.vocabulary import (BETTER, BETTER_BELOW, BETTER_UNSIZED, EQUIVALENT, IDENTICAL, INCONCLUSIVE, REFERENCE,
                               UNTESTED, WORSE, WORSE_BELOW, WORSE_UNSIZED, kind)

DPI = 80  # every report figure's

def summarise(records: list[TrainingRecord], params: config.Params) -> ReportSummary:
    """One row per variant (COLUMNS) and what the report concludes: reference, champion and its rule."""
    study = params.study
    grids = {r.variant: r.accuracy_grid() for r in records}
    data = records[0].data
    test_share = data.val_rows / data.train_rows
    identical = statistics.identical_groups({r.variant: r.predictions_sha256 for r in records}, study.reference)
    against = statistics.compare(grids, study.reference, test_share, study.confidence, study.margin, identical,
                                 seed=params.seed)
    rows = []
    for record in records:
        name = record.variant
        spread = statistics.mean_interval(grids[name], test_share, study.confidence)
        vs = against[name]
        canonical = record.summary.final_val_accuracy if record.summary else math.nan
        rows.append({"variant": name, "loss": record.config.loss, "last_activation": record.head.last_activation,
                     "replicas": spread["n"], "splits": spread["splits"], "val_accuracy_mean": spread["mean"],
                     "val_accuracy_sd": spread["sd"], "val_accuracy_ci_low": spread["ci_low"],
                     "val_accuracy_ci_high": spread["ci_high"], "canonical_val_accuracy": canonical,
                     "diff_vs_reference": vs["diff"], "diff_ci_low": vs["diff_low"], "diff_ci_high": vs["diff_high"],
                     "diff_holm_low": vs["diff_holm_low"], "diff_holm_high": vs["diff_holm_high"],
                     "p_improvement": vs["p_improvement"], "p_improvement_ci_low": vs["p_improvement_low"],
                     "p_improvement_ci_high": vs["p_improvement_high"], "p_value": vs["p"], "p_holm": vs["p_holm"],
                     "p_equivalence": vs["p_equivalence"], "p_equivalence_holm": vs["p_equivalence_holm"],
                     "verdict": vs["verdict"],
                     "resolving_splits": vs["resolving_splits"] if vs["verdict"] == INCONCLUSIVE else None,
                     "identical_to": vs["identical_to"] or "",
                     "diagnoses": describe(record.diagnoses, record.non_finite), **_scores(record, test_share, study)})
    means = {row["variant"]: row["val_accuracy_mean"] for row in rows}
    champion = statistics.champion(against, means, study.reference)
    conclusion = {"reference": study.reference, "champion": champion, "champion_rule": statistics.CHAMPION_RULE,
                  "champion_val_accuracy_mean": means[champion], "margin": study.margin,
                  "hypotheses": statistics.hypotheses(against), "identical": identical,
                  "confidence": study.confidence, "seeds": study.seeds, "splits": study.splits,
                  "test": statistics.METHOD, "val_rows": data.val_rows, "train_rows": data.train_rows,
                  "dataset": records[0].dataset, "classes": len(records[0].classes)}
    return ReportSummary(**conclusion, variants={row["variant"]: VariantRow.of(row) for row in rows},
                         digests={r.variant: r.digest for r in records},
                         contrasts=sorted({r.config.contrast for r in records if r.config.contrast}))


def tuned_summary(records: list[TrainingRecord], params: config.Params) -> ReportSummary:
    """The tuned study's summary (its own reference and verdicts, as summarise computes them) and
    how many splits chose each learning rate, per variant."""
    chosen = {r.variant: {f"{lr:g}": n for lr, n in sorted(Counter(r.tuned.chosen).items())} for r in records}
    return summarise(records, params).model_copy(update={"chosen_lr": chosen})


def changed_verdicts(fixed: ReportSummary, tuned: ReportSummary) -> list[tuple[str, str, str]]:
    """(variant, fixed verdict, tuned verdict) of each variant whose verdict differs between them."""
    return [(name, row.verdict, tuned.variants[name].verdict) for name, row in fixed.variants.items()
            if name in tuned.variants and tuned.variants[name].verdict != row.verdict]


def tuning_section(fixed: ReportSummary, tuned: ReportSummary, records: list[TrainingRecord]) -> list[str]:
    """The tuned study beside the fixed one: each variant's mean and verdict in both, the rates its
    splits chose, the verdicts that change, and the tuned study's own verdict lines."""
    level = round(100 * fixed.confidence)
    choice = records[0].tuned
    head = ["variant", f"fixed: mean [{level}% CI]", "fixed verdict", f"tuned: mean [{level}% CI]", "tuned verdict",
            "lr chosen (splits)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in fixed.variants.items():
        best = tuned.variants[name]
        lines.append("| " + " | ".join([
            name, f"{_number(row.val_accuracy_mean)} [{_number(row.val_accuracy_ci_low)}, "
                  f"{_number(row.val_accuracy_ci_high)}]", row.verdict,
            f"{_number(best.val_accuracy_mean)} [{_number(best.val_accuracy_ci_low)}, "
            f"{_number(best.val_accuracy_ci_high)}]", best.verdict,
            ", ".join(f"{lr} x{n}" for lr, n in tuned.chosen_lr[name].items())]) + " |")
    def held(row) -> str:  # the difference with its interval at Holm's level
        return f"{_signed(row.diff_vs_reference)} [{_signed(row.diff_holm_low)}, {_signed(row.diff_holm_high)}]"

    changes = changed_verdicts(fixed, tuned)
    changed = ("; ".join(f"{name}: {was} -> {now} ({held(fixed.variants[name])} -> {held(tuned.variants[name])})"
                         for name, was, now in changes) if changes else "none: every variant keeps its verdict")
    champion = tuned.variants[tuned.champion]
    return [
        "## Each loss at its best learning rate (the tuned study)", "",
        f"Every variant trained again, each split choosing its learning rate from "
        f"{', '.join(f'{lr:g}' for lr in choice.grid)} by the final accuracy of its first seed on an inner "
        f"validation part ({choice.inner_share:g} of the split's training rows: {choice.inner_rows} rows; the "
        f"split's validation rows are never seen), then every replica of the split retrained at that rate on "
        f"the split's training rows and judged on its validation rows as above, with the same statistics "
        f"against the tuned {tuned.reference}. A rate chosen by one run on {choice.inner_rows} rows is a noisy "
        f"choice; its noise is part of each split's mean, and so of the intervals (docs/study.md, \"Each loss at "
        f"its best\").", "", *lines, "",
        f"Verdicts that change when each loss gets its own rate: {changed}.", "",
        *verdict_lines(tuned), "",
        f"Champion of the tuned study: **{tuned.champion}**, {_number(champion.val_accuracy_mean)} "
        f"[{_number(champion.val_accuracy_ci_low)}, {_number(champion.val_accuracy_ci_high)}].", ""]


def _scores(record: TrainingRecord, test_share: float, study: config.Study) -> dict:
    """Each of SCORES' mean over the replicas with its interval, as accuracy's (mean_interval); the
    scores are never below 0, nor is the interval's lower end."""
    out = {}
    for name in SCORES:
        spread = statistics.mean_interval(record.score_grid(name), test_share, study.confidence)
        out.update({f"val_{name}_mean": spread["mean"], f"val_{name}_ci_low": max(spread["ci_low"], 0.0),
                    f"val_{name}_ci_high": spread["ci_high"]})
    return out


def _number(value, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def _signed(value) -> str:
    return f"{value:+.3f}" if isinstance(value, float) and math.isfinite(value) else "n/a"


def _p(value) -> str:
    if not isinstance(value, float) or not math.isfinite(value):
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _interval(low, high) -> str:
    return "n/a" if _signed(low) == "n/a" or low == high else f"[{_signed(low)}, {_signed(high)}]"


def _with_interval(value: str, low: str, high: str) -> str:
    return value if value == "n/a" or low == high == value else f"{value} [{low}, {high}]"


def markdown(summary: ReportSummary) -> str:
    level = round(100 * summary.confidence)
    margin = summary.margin
    head = ["variant", "mean val acc", f"{level}% CI", "sd", "canonical", f"diff vs reference [{level}% CI]",
            "at Holm's level", f"P(better) [{level}% CI]", "p diff (Holm)", "p equiv (Holm)", "verdict", "diagnoses"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = list(summary.variants.values())
    for row in rows:
        name = row.variant
        if name == summary.champion:
            name = f"**{name}**"
        lines.append("| " + " | ".join([
            name, _number(row.val_accuracy_mean),
            f"[{_number(row.val_accuracy_ci_low)}, {_number(row.val_accuracy_ci_high)}]",
            _number(row.val_accuracy_sd), _number(row.canonical_val_accuracy),
            _with_interval(_signed(row.diff_vs_reference), _signed(row.diff_ci_low), _signed(row.diff_ci_high)),
            _interval(row.diff_holm_low, row.diff_holm_high),
            _with_interval(_number(row.p_improvement, 2), _number(row.p_improvement_ci_low, 2),
                           _number(row.p_improvement_ci_high, 2)),
            _p(row.p_holm), _p(row.p_equivalence_holm), row.verdict, row.diagnoses]) + " |")
    champion = next(r for r in rows if r.variant == summary.champion)
    return "\n".join([
        f"# Loss study on {summary.dataset} ({summary.classes} classes)", "",
        f"{summary.seeds} seeds x {summary.splits} splits per variant, every replica its own seed "
        f"({summary.train_rows} training, {summary.val_rows} validation rows each); final "
        f"validation accuracy; reference **{summary.reference}**; intervals at {level}% from the split "
        f"means ({summary.test}); in the coverage simulation of the study's design (docs/study.md) "
        f"the differences' intervals keep their promise, while a variant's own mean-accuracy interval "
        f"covers less often than it says (about 90% at 95%). Verdicts against the reference at level "
        f"{1 - summary.confidence:.2g}, "
        f"Holm-corrected over {summary.hypotheses} distinct hypotheses (the family: every variant not "
        f"identical to another, against the reference). A difference the test shows is sized by its "
        f"interval at the level Holm tested it: **better** or **worse** when it lies beyond +-{margin:g} "
        f"(the margin, fixed before the study), **below the margin** when it lies within, **size "
        f"unresolved** when it reaches across; **equivalent** when the two one-sided tests put the "
        f"difference within the margin; **inconclusive** when neither test rejects (no evidence either "
        f"way, which is not equivalence). The table's {level}% intervals are unadjusted.", "", *lines, "",
        *verdict_lines(summary), "",
        f"Champion: **{summary.champion}**, {_number(champion.val_accuracy_mean)} "
        f"[{_number(champion.val_accuracy_ci_low)}, {_number(champion.val_accuracy_ci_high)}], by the rule "
        f"fixed before the study: {summary.champion_rule}.", "", *score_table(summary)])


SCORE_HEADS = {"log_loss": "log-loss", "brier": "Brier score", "calibration_error": "calibration error (ECE)"}


def score_table(summary: ReportSummary) -> list[str]:
    """The probabilities' scores per variant, lower better, each with its interval: secondary,
    beside the verdicts on accuracy, never deciding them."""
    level = round(100 * summary.confidence)
    head = ["variant", *(f"{SCORE_HEADS[name]} [{level}% CI]" for name in SCORES)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary.variants.values():
        cells = [_with_interval(_number(getattr(row, f"val_{name}_mean")), _number(getattr(row, f"val_{name}_ci_low")),
                                _number(getattr(row, f"val_{name}_ci_high"))) for name in SCORES]
        lines.append("| " + " | ".join([row.variant, *cells]) + " |")
    return [
        "## Scores beyond accuracy", "",
        "How good each variant's class probabilities are on its validation rows after the last epoch, per "
        "replica, averaged as accuracy is, with the same intervals; lower is better. Secondary: the verdicts "
        "and the champion stay on accuracy, the score fixed before the study. Log-loss is the mean -log p(true "
        "class), a p of 0 clipped to float64's epsilon (36 per such row); the Brier score sums the squared "
        "errors over the classes (0 to 2); the expected calibration error weighs 10 equal-width bins of the "
        "top class's confidence (Guo et al., ICML 2017), biased upward where a split has few validation rows "
        "(a bin of few rows shows a gap by chance), so compare it between variants of one dataset, not across "
        "datasets. Intervals are t intervals, their lower end clipped at 0. A variant trained to regress its "
        "targets (L1, MSE, "
        "cosine) has its scores clipped to [0, 1] and normalised into probabilities, as its served model has "
        "them (study/scores.py).", "", *lines, ""]


def _resolving(row, summary: ReportSummary) -> str:
    """What would decide an inconclusive difference, computed from its own variances."""
    if row.resolving_splits is None:
        return (f" (not resolvable at +-{summary.margin:g} with n = {summary.train_rows + summary.val_rows}: "
                f"the splits share their rows, and no number of them narrows the interval enough)")
    return f" (about {row.resolving_splits} splits would decide it, at Holm's present levels)"


GAMMA = 0.75  # Bouthillier et al.'s threshold of a meaningful P(A > B)


def _probability_line(summary: ReportSummary) -> str:
    """P(better) read as Bouthillier et al. read it: meaningful when at least GAMMA (or at most
    1 - GAMMA) with its interval clear of 0.5."""
    tested = [row for row in summary.variants.values() if row.p_improvement is not None
              and row.variant != summary.reference and not row.identical_to]
    wins = [row for row in tested if row.p_improvement >= GAMMA and row.p_improvement_ci_low > 0.5]
    losses = [row for row in tested if row.p_improvement <= 1 - GAMMA and row.p_improvement_ci_high < 0.5]

    def shown(rows):
        return ", ".join(f"{r.variant} {_number(r.p_improvement, 2)} [{_number(r.p_improvement_ci_low, 2)}, "
                         f"{_number(r.p_improvement_ci_high, 2)}]" for r in rows) or "none"
    return (f"- **P(better)** against gamma = {GAMMA:g} (Bouthillier et al., MLSys 2021): at least {GAMMA:g}, "
            f"its interval above 0.5: {shown(wins)}; at most {1 - GAMMA:g}, below 0.5: {shown(losses)}")


def verdict_lines(summary: ReportSummary) -> list[str]:
    """What the verdicts say, one line per verdict, every variant named with its difference: the
    README and docs quote these lines, so no sentence claims more than the table."""
    margin, level = summary.margin, round(100 * summary.confidence)
    said = {
        BETTER: f"**better** than the reference, by more than the margin {margin:g}",
        WORSE: f"**worse** than the reference, by more than the margin {margin:g}",
        BETTER_UNSIZED: f"**better, size unresolved** (a difference shown, its interval reaching across {margin:g})",
        WORSE_UNSIZED: f"**worse, size unresolved** (a difference shown, its interval reaching across -{margin:g})",
        BETTER_BELOW: f"**better, below the margin** (a difference shown, its interval within +{margin:g}: "
                      f"practically nothing by the study's own margin)",
        WORSE_BELOW: f"**worse, below the margin** (a difference shown, its interval within -{margin:g})",
        EQUIVALENT: f"**equivalent** to the reference (within +-{margin:g})",
        INCONCLUSIVE: "**inconclusive** after Holm (neither a difference nor equivalence shown)",
    }
    lines = []
    for verdict, what in said.items():
        named = [row for row in summary.variants.values() if row.verdict == verdict]
        if named:
            lines.append(f"- {what}: " + ", ".join(
                f"{row.variant} {_signed(row.diff_vs_reference)} [{_signed(row.diff_holm_low)}, "
                f"{_signed(row.diff_holm_high)}]" + (_resolving(row, summary) if verdict == INCONCLUSIVE else "")
                for row in named))
    lines.append(_probability_line(summary))
    twins = summary.identical
    if twins:
        lines.append("- **identical** by construction (the same predictions in every replica at every epoch; not "
                     "tested again): " + ", ".join(f"{name} = {twin}" for name, twin in twins.items()))
    return [f"Differences in accuracy against {summary.reference}, each with its interval at the level Holm's "
            f"step-down tested it (the verdict's own: TOST's for an equivalent one; the table's {level}% "
            f"intervals are unadjusted):", "",
            *lines]


def _replica_panel(ax, epochs, values, colour, label):
    """Every replica faint (one collection: a hundred lines drawn as one artist), their mean bold.
    A replica that broke ends where its values stop being finite."""
    from matplotlib.collections import LineCollection

    lines = [np.column_stack([epochs, line])[np.isfinite(line)] for line in values]
    ax.add_collection(LineCollection([line for line in lines if len(line)], colors=colour, alpha=0.25, lw=0.8))
    ax.plot(epochs, np.nanmean(values, axis=0), color=colour, lw=2.4, label=label)


def contrast_figure(records: list[dict], replicas: dict[str, dict], title: str, colours: dict[str, str]):
    """Loss (top) and validation accuracy (bottom), one column per variant (titled in its colour),
    every replica drawn."""
    plt = pyplot()

    fig, axes = plt.subplots(2, len(records), figsize=(4.6 * len(records), 6.8), squeeze=False)
    for column, record in enumerate(records):
        runs = replicas[record.variant]
        epochs = np.arange(1, runs["train_loss"].shape[1] + 1)
        top, bottom = axes[0][column], axes[1][column]
        _replica_panel(top, epochs, runs["train_loss"], "tab:blue", "train (mean)")
        _replica_panel(top, epochs, runs["val_loss"], "tab:orange", "validation (mean)")
        top.axhline(0, color="grey", lw=0.6)
        if np.nanmin(runs["train_loss"]) < -100:  # losses running off to minus infinity: show all scales
            top.set_yscale("symlog", linthresh=1)
        top.set(title=f"{record.variant}: {record.config.loss} on {record.head.last_activation}\n"
                      f"{describe(record.diagnoses)}", xlabel="epoch", ylabel="loss")
        top.title.set(fontsize=9, color=colours[record.variant])
        top.legend(fontsize=8)
        _replica_panel(bottom, epochs, runs["val_accuracy"], "tab:green", "mean")
        bottom.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1),
                   title=f"{len(runs['seed'])} replicas (faint), their mean (bold)")
        bottom.title.set_fontsize(9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def compare_figure(records: list[dict], colours: dict[str, str]):
    """Mean validation accuracy per epoch over the replicas, a small panel per variant (the others
    faint behind it: their means lie within a point of each other and would hide one another in
    one panel), each with a band of one standard error of that mean; right: each one's training
    loss, where variants of one loss lie on one curve and the others stand apart."""
    plt = pyplot()

    columns = math.ceil(len(records) / 2)
    fig = plt.figure(figsize=(3.1 * columns + 5.2, 5.6))
    grid = fig.add_gridspec(2, columns + 2)
    loss = fig.add_subplot(grid[:, columns:])
    panels = [fig.add_subplot(grid[i // columns, i % columns]) for i in range(len(records))]
    for panel in panels[1:]:
        panel.sharex(panels[0])
        panel.sharey(panels[0])

    def spread(record, key):
        curve = record.curves[key]
        mean = np.array(curve.mean)
        return np.arange(1, len(mean) + 1), mean, np.array(curve.sd) / np.sqrt(np.maximum(curve.n, 1))

    for panel, record in zip(panels, records):
        for other in records:
            if other is not record:
                epochs, mean, _ = spread(other, "val_accuracy")
                panel.plot(epochs, mean, color="#cccccc", lw=0.9)
        epochs, mean, error = spread(record, "val_accuracy")
        colour = colours[record.variant]
        panel.plot(epochs, mean, color=colour, lw=2)
        panel.fill_between(epochs, mean - error, mean + error, color=colour, alpha=0.2)
        panel.set_title(record.variant, color=colour, fontsize=9)
        panel.tick_params(labelsize=7)
        epochs, mean, error = spread(record, "train_loss")
        loss.plot(epochs, mean, color=colour, lw=1.8, label=record.variant)
        loss.fill_between(epochs, mean - error, mean + error, color=colour, alpha=0.18)
    for i, panel in enumerate(panels):
        if i % columns == 0:
            panel.set_ylabel("validation accuracy", fontsize=8)
        if i // columns == 1 or i + columns >= len(records):
            panel.set_xlabel("epoch", fontsize=8)
    loss.set(xlabel="epoch", ylabel="training loss (each its own loss)", title="training loss: mean, ±1 s.e.")
    loss.legend(fontsize=8)
    fig.suptitle("Regression losses, regularized and unscaled variants: validation accuracy per variant, "
                 "mean over replicas ±1 s.e. (the others in grey)", fontsize=10)
    fig.tight_layout()
    return fig


# Each verdict its own hue (a sized difference's beside its plain one would read alike otherwise).
VERDICT_COLOURS = {BETTER: "tab:green", WORSE: "tab:red", BETTER_UNSIZED: "tab:olive", WORSE_UNSIZED: "tab:pink",
                   BETTER_BELOW: "tab:cyan", WORSE_BELOW: "tab:brown",
                   EQUIVALENT: "tab:blue", INCONCLUSIVE: "tab:orange", IDENTICAL: "tab:grey", REFERENCE: "black",
                   UNTESTED: "tab:purple"}


def _colour(verdict: str) -> str:
    return VERDICT_COLOURS.get(kind(verdict), "black")


def _nan(value: float | None) -> float:
    """A statistic the summary holds as null, as matplotlib skips it."""
    return math.nan if value is None else value


def intervals_figure(summary: ReportSummary, grids: dict[str, np.ndarray]):
    """Every variant's replicas (dots), mean and interval (bar); right: its difference to the
    reference against the equivalence margin (shaded), on a scale where the margin shows: a
    difference beyond it is an arrow at the edge with its numbers written out. The marks are in
    their verdict's colour, so the names stay black: no variant's colour to read as a verdict."""
    plt = pyplot()
    from matplotlib.patches import Patch

    level = round(100 * summary.confidence)
    margin = summary.margin
    reach = 4 * margin
    rows = list(summary.variants.values())
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 0.42 * len(rows) + 1.8), sharey=True)
    jitter = np.random.default_rng(0)
    for i, row in enumerate(rows):
        y = len(rows) - 1 - i
        colour = _colour(row.verdict)
        values = grids[row.variant].ravel()
        left.scatter(values, y + jitter.uniform(-0.18, 0.18, len(values)), s=8, color=colour, alpha=0.35, lw=0)
        mean, low, high = (_nan(x) for x in (row.val_accuracy_mean, row.val_accuracy_ci_low, row.val_accuracy_ci_high))
        left.errorbar(mean, y, xerr=[[mean - low], [high - mean]], fmt="o", color=colour, capsize=3, lw=2)
        diff, low, high = (_nan(x) for x in (row.diff_vs_reference, row.diff_ci_low, row.diff_ci_high))
        if row.identical_to:
            right.text(-reach, y, f" identical to {row.identical_to} ({diff:+.3f})", color=colour, va="center",
                       fontsize=8)
        elif not math.isfinite(low):
            continue
        elif abs(diff) > reach:  # off the scale: an arrow to the side it lies on, and its numbers
            edge = math.copysign(reach, diff)
            right.annotate("", xy=(edge, y), xytext=(edge * 0.6, y),
                           arrowprops={"arrowstyle": "->", "color": colour, "lw": 2})
            right.text(edge * 0.55, y + 0.22, f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]", color=colour, fontsize=8,
                       ha="left" if diff < 0 else "right")
        else:
            right.errorbar(diff, y, xerr=[[diff - low], [high - diff]], fmt="o", color=colour, capsize=3, lw=2)
    left.set_yticks(range(len(rows)), [r.variant for r in reversed(rows)])
    left.set(xlabel="final validation accuracy", title=f"replicas, mean and {level}% interval (from the split means)")
    right.axvspan(-margin, margin, color="tab:blue", alpha=0.12, lw=0)
    right.axvline(0, color="black", lw=0.8)
    right.set_xlim(-reach * 1.05, reach * 1.05)
    right.set(xlabel=f"difference in accuracy to {summary.reference} (paired by replica)",
              title=f"mean difference, {level}% interval (corrected t, seeds apart)")
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=v) for v, c in VERDICT_COLOURS.items()
               if any(kind(r.verdict) == v for r in rows)]
    handles.append(Patch(color="tab:blue", alpha=0.12, label=f"equivalence margin +-{margin:g}"))
    right.legend(handles=handles, fontsize=8, loc="lower right")
    fig.suptitle(f"{summary.dataset} ({summary.classes} classes): {summary.seeds} seeds x "
                 f"{summary.splits} splits per variant", fontsize=11)
    fig.tight_layout()
    return fig


def write(dataset: str, params: config.Params, records: list[TrainingRecord],
          tuned_records: list[TrainingRecord] | None = None) -> tuple[ReportSummary, ReportSummary | None]:
    """reports/<dataset>/: its table, figures and summary.json (and the tuned study's, given its records)."""
    files = ReportFiles(dataset)
    summary = summarise(records, params)
    tuned = tuned_summary(tuned_records, params) if tuned_records else None
    rows = list(summary.variants.values())
    by_name = {r.variant: r for r in records}
    colours = variant_colours(params.variants)
    with atomic.directory(files.folder) as tmp:
        def there(path):
            return tmp / path.relative_to(files.folder)

        there(files.comparison_md).write_text(markdown(summary) + (
            "\n".join(["", *tuning_section(summary, tuned, tuned_records)]) if tuned else ""))
        with open(there(files.comparison_csv), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            # A statistic not computed is NaN in the table (null in summary.json).
            writer.writerows({k: math.nan if v is None else v for k, v in row.model_dump().items()} for row in rows)
        for name in summary.contrasts:
            group = [r for r in records if r.config.contrast == name]
            replicas = {r.variant: read_replicas(r.variant, dataset) for r in group}
            drawn = contrast_figure(group, replicas, f"{dataset}: contrast {name}", colours)
            there(files.contrast(name)).write_bytes(png(drawn, DPI))
        if params.report.compare:
            compared = [by_name[n] for n in params.report.compare]
            there(files.compare).write_bytes(png(compare_figure(compared, colours), DPI))
        grids = {r.variant: r.accuracy_grid() for r in records}
        there(files.intervals).write_bytes(png(intervals_figure(summary, grids), DPI))
        summary.save(there(files.summary))
        if tuned:
            tuned.save(there(files.tuned_summary))
    champion = summary.variants[summary.champion]
    counts = Counter(kind(row.verdict) for row in rows)
    verdicts = describe({v: counts[v] for v in VERDICT_COLOURS if counts[v]})
    print(f"report {dataset}: {len(rows)} variants against {summary.reference}, {summary.hypotheses} "
          f"hypotheses: {verdicts}; champion {summary.champion} ({champion.val_accuracy_mean:.2%} mean)"
          + (f"; tuned study: {len(changed_verdicts(summary, tuned))} verdict(s) change" if tuned else ""))
    return summary, tuned
