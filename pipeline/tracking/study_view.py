"""What MLflow's UI opens on: each dataset experiment's description, its saved view (the study's
current runs with the columns that carry its conclusions) and which runs are current.

MLflow 3.17's UI (checked in headless Chromium) keeps a user's runs-table layout in the browser,
except for a view shared through an experiment tag `mlflow.sharedViewState.<key>` and opened with
`?viewStateShareKey=<key>`: the project writes one, VIEW_KEY. The experiment opens on the GenAI
"Overview" page unless the address says `workflowType=machine_learning` (or the user clicked
"Model training" once: the browser remembers it). The link in the description says both.

A run is current while it is the one the main branch's latest publish stands for (the rule of
the `champion` alias, publish.Launch.champion_stays; latest by when the publish began, so that
publishers meeting agree): tag `current` = `yes`, the variant's plain name. A run it replaces
loses the tag and is renamed `<variant> (superseded)`; a run a DVC experiment logged is named
`<variant> (<experiment>)` (Launch.named) until main adopts it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..core.summaries import AcrossSummary, ReportSummary, by_region
from ..core.vocabulary import EQUIVALENT, IDENTICAL, REFERENCE, VERDICTS, kind
from .across_runs import PAGE_TAG, RUN_NAME as ACROSS_ROLE
from .store import retag
from .variant_runs import ACCURACY_TAG, ORDER_TAG, accuracy

CURRENT_TAG = "current"
REPORT_ROLE = "comparison-report"  # the report run's name, and its role beside the variants'
SUPERSEDED = " (superseded)"
# When the latest publish on main that claimed a run began (ms): the order publishers agree on.
CLAIM_TAG = "current.since"
VIEW_KEY = "study"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
DESCRIPTION_TAG = "mlflow.note.content"
# The runs table's columns at first open, as the UI names them (attributes, metrics, params, tags):
# at 1366 px with MLflow's assistant panel open as it opens, the table shows the run's name, its
# creation time (not a column a view can hide) and about 330 px more: the verdict and the mean
# with its interval (checked in Chromium, tests/test_browser.py). The metrics follow, to sort by.
COLUMNS = ("tags.`verdict`", f"tags.`{ACCURACY_TAG}`", "tags.`diagnoses`", "metrics.`study.val_accuracy_mean`",
           "metrics.`study.val_accuracy_ci_low`", "metrics.`study.val_accuracy_ci_high`",
           "metrics.`study.diff_vs_reference`", "tags.`champion`", "params.`last_activation`")
# The UI cuts a column's content at 100 px by default: widths for `identical to cross_entropy`,
# `0.814 [0.780, 0.848]`, `diverging 99/100, stalled 1/100` and the metrics' names, whole.
WIDE = dict(zip(COLUMNS[:7], (175, 150, 220, 190, 190, 200, 180)))


# The view across datasets: its one current run (the page, in the run's description), what the
# page covers and what its ranks can tell apart.
ACROSS_COLUMNS = ("metrics.`friedman.p`", "metrics.`friedman.cd`", "params.`reference`", "params.`datasets`")
ACROSS_WIDE = dict(zip(ACROSS_COLUMNS, (110, 120, 130, 330)))
# An experiment holding every dataset's runs (params' mlflow.experiment: the benchmark's) is tagged
# so, and its view lists the current runs by name (<dataset>/<variant>), the study's columns first.
SHARED_TAG, SHARED = "pipeline.layout", "one experiment"
RUN_NAME_KEY = "tags.`mlflow.runName`"


@dataclass(frozen=True)
class Naming:
    """A run's name for its role: the role itself in a dataset's own experiment; <dataset>/<role>
    where one experiment holds every dataset's runs."""
    dataset: str | None = None

    def __call__(self, role: str) -> str:
        return f"{self.dataset}/{role}" if self.dataset else role


def view_state(columns: tuple[str, ...] = COLUMNS, widths: dict[str, int] = WIDE,
               order: str = f"tags.`{ORDER_TAG}`") -> str:
    """The saved view: the current runs in the study's order (the report first, then the
    variants as params.yaml lists them; or by `order`), every one drawn in the chart view, these
    columns first."""
    return json.dumps({
        "searchFilter": f"tags.{CURRENT_TAG} = 'yes'", "orderByKey": order, "orderByAsc": True,
        "startTime": "ALL", "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
        "selectedColumns": list(columns), "runsHiddenMode": "SHOW_ALL",
        # Without an order the UI sorts each kind's columns by name, and it applies widths only
        # with an order (checked in Chromium).
        "columnOrder": list(columns), "columnWidths": widths,
    }, sort_keys=True)


def view_path(exp_id: str) -> str:
    """The view's address under the UI's root (`http://127.0.0.1:5000/` + this)."""
    return f"#/experiments/{exp_id}/runs?viewStateShareKey={VIEW_KEY}&workflowType=machine_learning"


def run_path(exp_id: str, run_id: str) -> str:
    """A run's page among the runs. The UI keeps its mode (GenAI or model training) in the
    browser until a link says `workflowType`, and its runs table's links do not: a browser that
    never pressed "Model training" opens a run clicked there under GenAI's "Evaluations"."""
    return f"#/experiments/{exp_id}/runs/{run_id}?workflowType=machine_learning"


def _first_search(summary: ReportSummary) -> str:
    """The search that shows a contrast pair side by side, each run in its variant's colour
    (core/figures.py); the last of the report's contrasts (the default study's NLL pair: red
    against green)."""
    if not summary.contrasts:
        return ""
    return (f"First search: `tags.contrast = '{summary.contrasts[-1]}' and tags.{CURRENT_TAG} = 'yes'` (the pair "
            f"side by side, the mismatched pairing's run against the sound one's, each in its own colour). ")


def conclusion(summary: ReportSummary) -> str:
    """The study's answer in one sentence with its numbers: the champion's mean and interval, then
    each verdict against the reference with the variants that got it (and their differences)."""
    best = summary.variants[summary.champion]  # its mean and interval as the view's `accuracy` shows them
    groups: dict[str, list[str]] = {}
    for name, row in summary.variants.items():
        verdict = kind(row.verdict)
        if verdict == IDENTICAL:
            groups.setdefault(verdict, []).append(f"{name} (= {row.identical_to})")
        elif verdict == EQUIVALENT or row.diff_vs_reference is None:
            groups.setdefault(verdict, []).append(name)
        elif verdict != REFERENCE:
            groups.setdefault(verdict, []).append(f"{name} ({row.diff_vs_reference:+.3f})")
    verdicts = "; ".join(f"{verdict}: {', '.join(groups[verdict])}" for verdict in VERDICTS if verdict in groups)
    return (f"{summary.champion} is the champion, mean accuracy {accuracy(best)} over "
            f"{summary.seeds * summary.splits} replicas; against {summary.reference} (margin "
            f"+-{summary.margin:g}) {verdicts}.")


def describe(client, exp_id: str, dataset: str, summary: ReportSummary) -> None:
    """The experiment's description (the UI shows it above its runs), opening on the study's
    conclusion, and its saved view."""
    # Plain text first: MLflow's home page lists a description's first characters unrendered.
    text = (f"The loss study on {dataset}. {conclusion(summary)}\n\n"
            f"[Open the study's view]({view_path(exp_id)}): its current runs "
            f"with mean accuracy, interval, verdict and diagnoses. One run per variant, each trained as "
            f"{summary.seeds * summary.splits} replicas ({summary.seeds} seeds on each of "
            f"{summary.splits} splits). `study.val_accuracy_mean` is their mean final validation accuracy, the "
            f"tag `verdict` the test against {summary.reference}; the run `{REPORT_ROLE}` holds the table, "
            f"the champion is `{summary.champion}`. The curves `train/loss`, `val/loss`, `val/accuracy` are "
            f"the replicas' mean (`_min`, `_max` their range), `..._canonical` the canonical replica's (params' "
            f"seed, split 0). {_first_search(summary)}Runs named `(superseded)` or after a DVC experiment are "
            f"not main's current study. docs/mlflow.md says more.")
    _set_tags(client, exp_id, {DESCRIPTION_TAG: text, VIEW_TAG: view_state()})


def across_answer(summary: AcrossSummary) -> str:
    """The answer per variant in one sentence, as the page's own paragraph reads the Bayesian
    signed-rank test against the reference (a region at least as likely as the study's confidence),
    then what was set apart; empty without that test (under two datasets)."""
    if not summary.against_reference:
        return ""
    sure = summary.confidence
    grouped = by_region(summary.against_reference, sure)
    regions = {"p_equivalent": "within the rope", "p_worse": "worse by more", "p_better": "better by more",
               None: "no region"}
    said = [f"to {words} for {', '.join(r.variant for r in grouped[key])}"
            for key, words in regions.items() if grouped[key]]
    apart = f" Set apart (an unsound pairing or a copy): {', '.join(summary.set_apart)}." if summary.set_apart else ""
    return (f"Against {summary.reference}, the Bayesian signed-rank test over these datasets (rope "
            f"+-{summary.rope:g}) gives at least {sure:g} posterior probability {'; '.join(said)}.{apart} ")


def describe_across(client, exp_id: str, summary: AcrossSummary, shared: str | None = None) -> None:
    """The description of the experiment across datasets: the answer per variant, what its ranks
    can tell apart, and its saved view (the current run). Where one experiment holds every
    dataset's runs (`shared`, its name), its description says so and its view lists them all."""
    if shared:
        count = len(summary.datasets)
        _set_tags(client, exp_id, {SHARED_TAG: SHARED, DESCRIPTION_TAG: (
            f"The loss study on {count} datasets in one experiment. {across_answer(summary)}{summary.ranks.sentence}"
            f"\n\nEach dataset's runs are tagged `dataset` and named `<dataset>/<variant>` (its report "
            f"`<dataset>/{REPORT_ROLE}`, each tuned study's `<dataset>/<variant> (tuned lr)`); the run `{ACROSS_ROLE}` "
            f"holds the page across them (its description: every variant's difference to {summary.reference} with "
            f"its interval, mean rank and verdicts, and the datasets' table) and its figures. "
            f"[Open the view]({view_path(exp_id)}): the current runs by name. Search `tags.dataset = 'sonar'` for "
            f"one dataset's. docs/keel.md says more."),
            VIEW_TAG: view_state(("tags.`dataset`", *COLUMNS), {"tags.`dataset`": 130, **WIDE}, RUN_NAME_KEY)})
        return
    _set_tags(client, exp_id, {DESCRIPTION_TAG: (
        f"The loss study across {len(summary.datasets)} dataset{'s' * (len(summary.datasets) != 1)}. "
        f"{across_answer(summary)}{summary.ranks.sentence}\n\n"
        f"The current run `{ACROSS_ROLE}` holds the page (`reports/across/comparison.md`, its "
        f"description: every variant's difference to {summary.reference} with its interval, mean rank and "
        f"verdicts per dataset) and its figures; each dataset's experiment holds that dataset's study. "
        f"[Open the view across datasets]({view_path(exp_id)}). docs/study.md says more."),
        VIEW_TAG: view_state(ACROSS_COLUMNS, ACROSS_WIDE)})


def describe_sweep(client, exp_id: str) -> None:
    """The description of the alpha sweep's experiment: what its runs are."""
    _set_tags(client, exp_id, {DESCRIPTION_TAG: (
        "The alpha sweep on Iris, the course notebook's last part: an MLP on Iris (setosa against "
        "versicolor, sepal and petal length) under a range of L2 penalties `alpha`. Its parent run holds "
        "the GIF of the decision boundary as alpha grows (`alpha_sweep.gif`) and the scores along the sweep "
        "(step = the alpha's index), a child run per alpha its scores. docs/iris.md says more.")})


def _set_tags(client, exp_id: str, tags: dict[str, str]) -> None:
    """Only what differs: publishers that meet write nothing twice."""
    found = client.get_experiment(exp_id).tags
    for key, value in tags.items():
        if found.get(key) != value:
            client.set_experiment_tag(exp_id, key, value)


def role(run) -> str | None:
    """Which part of the study a run is: its variant, the report, the page across datasets, or
    None (not the study's)."""
    tags = run.data.tags
    if tags.get(PAGE_TAG) == ACROSS_ROLE:
        return ACROSS_ROLE
    return tags.get("variant") or (REPORT_ROLE if tags.get("pipeline.stage") == "report" else None)


def claims(client, exp_id: str, dataset: str | None = None) -> list:
    """Every run of `dataset` (tag `dataset`; None: the runs without one, the page across them)
    some publish on main claimed for the current study (tag CLAIM_TAG), all pages."""
    found, token = [], None
    only = f" and tags.dataset = '{dataset}'" if dataset else ""
    while True:
        page = client.search_runs([exp_id], f"tags.`{CLAIM_TAG}` LIKE '%'{only}", max_results=1000,
                                  page_token=token)
        found += [run for run in page if run.data.tags.get("dataset") == dataset]
        token = page.token
        if not token:
            return found


def mark_current(client, exp_id: str, mine: dict[str, object], roles: set[str], since: int,
                 dataset: str | None = None, naming: Naming = Naming()) -> bool:
    """`mine` ({role: run}), claimed by a publish on main that began at `since` (ms), becomes the
    current study if no publish began later. Publishers that meet agree without taking turns:
    each raises its runs' CLAIM_TAG to its start time, and only the latest claimant marks,
    by a rule any of them computes alike: per role of its study (`roles`), the run with the
    latest claim is current; every other current run is superseded. Only `dataset`'s runs take
    part (an experiment may hold many datasets'); `naming` gives a role's run name. True if
    anything changed."""
    wrote = False
    found = {run.info.run_id: run for run in claims(client, exp_id, dataset)}
    claim = {run_id: int(run.data.tags[CLAIM_TAG]) for run_id, run in found.items()}
    for run in mine.values():
        run_id = run.info.run_id
        if claim.get(run_id, -1) < since:
            client.set_tag(run_id, CLAIM_TAG, str(since))
            found.setdefault(run_id, run)
            claim[run_id] = since
            wrote = True
    if max(claim.values()) > since:
        return wrote  # a later publish on main decides
    latest = {}
    for run_id in sorted(found, key=lambda run_id: (claim[run_id], run_id)):
        latest[role(found[run_id])] = run_id  # the latest claim of each role wins
    current = {run_id for part, run_id in latest.items() if part in roles}
    for run_id, run in found.items():
        if run_id in current:
            wrote |= retag(client, run, {CURRENT_TAG: "yes", "mlflow.runName": naming(role(run))})
        elif run.data.tags.get(CURRENT_TAG) == "yes":
            client.delete_tag(run_id, CURRENT_TAG)
            client.set_tag(run_id, "mlflow.runName", f"{naming(role(run))}{SUPERSEDED}")
            wrote = True
    return wrote


def main(url: str, params_path: str) -> None:
    """`python -m pipeline views [URL]`: what to open first in the UI at URL (what `make ui` prints
    before it starts the UI): the first dataset's study view, the experiment across datasets, then
    each dataset's study view; a dataset not yet published says so; then each experiment in the
    store that holds every dataset of a study (the benchmark's)."""
    from mlflow import MlflowClient

    from ..core import config
    from . import store

    base = url.rstrip("/")
    params = config.load(params_path)
    uri = store.tracking_uri(params.mlflow.store)
    database = store.sqlite_file(uri)
    if database is not None and not database.exists():
        print(f"no runs yet in {store.redact(uri)}: `make repro` publishes them")
        return
    client = MlflowClient(uri)
    links = {}
    for dataset in params.datasets:
        found = client.get_experiment_by_name(store.experiment(dataset, params.mlflow.experiment))
        links[dataset] = f"{base}/{view_path(found.experiment_id)}" if found else "not published yet (`make repro`)"
    across = client.get_experiment_by_name(store.across_experiment(params.mlflow.experiment))
    first = next(iter(links))
    print(f"open first: the study on {first}, {links[first]}")
    if across:  # its view (the conclusion, the current run), then that run's page: the page's table
        print(f"then across datasets: {base}/{view_path(across.experiment_id)}")
        current = client.search_runs([across.experiment_id], f"tags.{CURRENT_TAG} = 'yes'", max_results=1)
        if current:
            print(f"  its page (the table in its description, the figures under Artifacts): "
                  f"{base}/{run_path(across.experiment_id, current[0].info.run_id)}")
    for dataset, where in links.items():
        print(f"{dataset:<14} {where}")
    for shared in client.search_experiments(filter_string=f"tags.`{SHARED_TAG}` = '{SHARED}'"):
        if shared.name != params.mlflow.experiment:
            print(f"and {shared.name}, every dataset of another study (the benchmark's: docs/keel.md): "
                  f"{base}/{view_path(shared.experiment_id)}")
    print('(a run clicked in a table opens under GenAI\'s "Evaluations" until you press "Model training", top left)')
