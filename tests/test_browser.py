"""The MLflow UI and `dvc plots show`, checked in a real headless Chromium (Debian's)."""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from pipeline import plots_template
from pipeline.core.figures import variant_colours
from pipeline.reports import stage as report_stage
from pipeline.study import train
from pipeline.core.summaries import ReportSummary
from pipeline.tracking import publish
from pipeline.tracking import variant_runs
from pipeline.tracking import store as tracking

from .conftest import ROOT, free_port

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "test-artifacts"
# As root and offline: no sandbox, and none of Chromium's calls home (refused here, many at a time).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

# A browser and `mlflow server` per test: slow (not in `make test-fast`).
pytestmark = [pytest.mark.slow]
if not CHROMIUM.exists():
    # CI installs it (.ci/run); elsewhere say so rather than pass silently.
    pytestmark.append(pytest.mark.skipif(not os.environ.get("CI"),
                                         reason="no /usr/bin/chromium: apt-get install chromium"))


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def served(uri: str):
    """`mlflow server` on a free loopback port over the store at `uri`; yields its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", uri,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{base}/health", timeout=2).read() == b"OK":
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("mlflow server did not come up") from None
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def fill_store(names) -> None:
    """Train, plot, report and publish these variants (and the report) as the pipeline does."""
    for name in names:
        train.main("titanic", name)
    report_stage.main()
    publish.main(only=[*names, "report"])


@pytest.fixture
def ui(prepared):
    """A store the pipeline filled (three variants and the report), served by `mlflow server`."""
    fill_store(["nll_relu", "nll_logsoftmax", "mse"])
    with served(prepared.uri()) as base:
        yield base, prepared.uri()


def test_first_look_at_the_chart_view_shows_the_contrast_runs(prepared, browser):
    """Every variant of params.yaml (13) and the report: 14 runs, of which the chart view draws 10.
    The NLL and KLDiv contrast pairs, the reference and the champion must be among them."""
    every = list(yaml.safe_load((ROOT / "params.yaml").read_text())["variants"])
    prepared.params(variants=every)
    fill_store(every)
    summary = json.loads((prepared.path / "reports/titanic/summary.json").read_text())
    contrast = ["nll_relu", "nll_logsoftmax", "kldiv_relu", "kldiv_logsoftmax"]
    with served(prepared.uri()) as base:
        from mlflow import MlflowClient

        experiment = MlflowClient(prepared.uri()).get_experiment_by_name(tracking.experiment("titanic"))
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(f"{base}/#/experiments/{experiment.experiment_id}/runs")
        page.get_by_role("link", name="nll_relu", exact=True).first.wait_for(timeout=60_000)
        page.locator("label:has(input[name=runs-view-mode][value=CHART])").click()
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        # Each row of the run list carries its visibility toggle, labelled "Hide run" while drawn.
        shown = page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('.ag-row'))
            .filter(row => row.querySelector('a'))
            .map(row => [row.querySelector('a').innerText.trim(),
                         Array.from(row.querySelectorAll('label, [aria-label]')).some(
                             e => (e.getAttribute('aria-label') || e.innerText).trim() === 'Hide run')]))""")
        # Every chart's traces, by run name, in the colour drawn (a line's, or a bar's).
        page.wait_for_function("(document.querySelector('.js-plotly-plot').data || []).length >= 10", timeout=60_000)
        drawn = page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('.js-plotly-plot'))
            .flatMap(plot => plot.data || []).map(t => [t.name, (t.line && t.line.color) || (t.marker && t.marker.color)])
            .filter(([name, color]) => name && typeof color === 'string' && color.length === 7))""")
        described = page.inner_text("body")
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=SHOTS / "mlflow-chart-first-look.png")
    # Every run drawn in its variant's colour of the figures, never two alike: the contrast pairs'
    # mismatched ReLU run red and pink against the sound one's green and cyan.
    colours = variant_colours(every)
    assert {name: colour for name, colour in drawn.items() if name in colours} == {
        name: colours[name] for name in drawn if name in colours}, drawn
    assert len(set(drawn.values())) == len(drawn), drawn
    assert (drawn.get("nll_relu"), drawn.get("nll_logsoftmax")) == ("#d62728", "#2ca02c"), drawn
    assert (drawn.get("kldiv_relu"), drawn.get("kldiv_logsoftmax")) == ("#e377c2", "#17becf"), drawn
    assert "The loss study on titanic." in described and "tags.contrast = 'nll'" in described
    assert len(shown) == len(every) + 1
    assert sum(shown.values()) == 10  # the UI's default, so the test can tell hidden from drawn
    for name in [*contrast, summary["reference"], summary["champion"], "comparison-report"]:
        assert shown[name], f"{name} is hidden in the chart view"


def test_mlflow_ui_lists_the_variants_and_compares_the_nll_pair(ui, browser):
    """The compare view's first plot is the replicas' mean accuracy, ReLU below LogSoftmax: never
    the canonical run's loss, which reads 0 ("better") when that run stalled."""
    from mlflow import MlflowClient

    base, uri = ui
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.experiment("titanic"))
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/#/experiments/{experiment.experiment_id}/runs")
    for name in ("nll_relu", "nll_logsoftmax", "mse"):
        page.get_by_role("link", name=name, exact=True).first.wait_for(timeout=60_000)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SHOTS / "mlflow-runs.png")

    pair = f'["{runs["nll_relu"].info.run_id}","{runs["nll_logsoftmax"].info.run_id}"]'
    page.goto(f"{base}/#/compare-runs?runs={pair}&experiments=[\"{experiment.experiment_id}\"]")
    page.get_by_text("Comparing 2 Runs").wait_for(timeout=60_000)
    # The metrics table draws only the rows in view (about 17, sorted by name): the study's
    # summary (study.*) comes first, then train/ (the replicas' mean, then _canonical).
    page.get_by_text("study.val_accuracy_mean").first.wait_for()
    body = page.inner_text("body")
    for expected in ("nll_relu", "nll_logsoftmax", "study.val_accuracy_mean", "study.p_equivalence_holm",
                     "train/loss", "ReLU", "LogSoftmax", "diagnosis"):
        assert expected in body
    # The parallel-coordinates chart of the pair, then the side-by-side metrics table.
    page.wait_for_function("(document.querySelector('.js-plotly-plot') || {}).data", timeout=60_000)
    axes = page.evaluate("""() => document.querySelector('.js-plotly-plot').data[0].dimensions
        .map(d => [d.label, Array.from(d.values || []), Array.from(d.ticktext || [])])""")
    page.screenshot(path=SHOTS / "mlflow-compare-nll.png")
    # No screenshot of the side-by-side metrics table: scrolled, MLflow 3.17's table moves its
    # name column apart from the values, so a picture would pair names with the wrong numbers.
    metric = axes[-1]
    assert metric[0] == "val/accuracy", axes
    means = {name: runs[name].data.metrics["val/accuracy"] for name in ("nll_relu", "nll_logsoftmax")}
    assert sorted(metric[1]) == sorted(means.values()), (axes, means)
    assert means["nll_relu"] < means["nll_logsoftmax"]
    print(f"compare view's first plot: {metric[0]} {means}; canonical nll_relu "
          f"{runs['nll_relu'].data.tags['diagnosis']} at train/loss_canonical "
          f"{runs['nll_relu'].data.metrics['train/loss_canonical']:.5f}")


def test_the_study_view_opens_on_the_current_runs_with_the_studys_columns(ui, browser):
    """The description's link opens the experiment's saved view in a new tab: the Runs page (not
    the GenAI overview), main's current runs, the columns that carry the conclusions."""
    from mlflow import MlflowClient

    from pipeline.tracking import study_view

    base, uri = ui
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.experiment("titanic"))
    superseded = client.create_run(experiment.experiment_id, run_name="nll_relu (superseded)",
                                   tags={"variant": "nll_relu"}).info.run_id
    client.set_terminated(superseded)
    page = browser.new_page(viewport={"width": 2000, "height": 900})
    page.goto(f"{base}/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning")
    link = page.get_by_role("link", name="Open the study's view")
    link.wait_for(timeout=60_000)
    with page.context.expect_page() as opened:  # the UI opens a description's links in a new tab
        link.click()
    view = opened.value
    view.get_by_role("link", name="nll_relu", exact=True).first.wait_for(timeout=60_000)
    view.wait_for_timeout(1_000)
    view.get_by_role("button", name="Close").last.click()  # the assistant's panel, to see the table
    view.wait_for_timeout(500)
    SHOTS.mkdir(exist_ok=True)
    view.screenshot(path=SHOTS / "mlflow-study-view.png")
    # AG Grid's DOM order is not the drawn order: sort by the column index it announces.
    headers = [name for _, name in sorted(view.evaluate(
        "() => Array.from(document.querySelectorAll('.ag-header-cell'))"
        ".map(c => [Number(c.getAttribute('aria-colindex')), c.innerText.trim()])"))]
    names = view.evaluate("() => Array.from(document.querySelectorAll('.ag-row a')).map(a => a.innerText.trim())")
    assert "viewStateShareKey=" + study_view.VIEW_KEY in view.url
    assert view.get_by_role("combobox").first.input_value() == f"tags.{study_view.CURRENT_TAG} = 'yes'"
    assert view.get_by_text("You're viewing a shared view").count() == 1
    study = ["verdict", "accuracy", "diagnoses", "study.val_accuracy_mean", "study.val_accuracy_ci_low",
             "study.val_accuracy_ci_high", "study.diff_vs_reference"]
    assert [header for header in headers if header in study] == study, headers
    assert {"nll_relu", "nll_logsoftmax", "mse", study_view.REPORT_ROLE} <= set(names)
    assert "nll_relu (superseded)" not in names and "Overview" not in view.inner_text("main")
    # Rows in the study's order: the report, then the variants as params.yaml lists them.
    drawn = view.evaluate("() => Array.from(document.querySelectorAll('.ag-row')).filter(r => r.querySelector('a'))"
                          ".map(r => [Number(r.getAttribute('row-index')), r.querySelector('a').innerText.trim()])")
    assert [name for _, name in sorted(drawn)] == [study_view.REPORT_ROLE, "nll_relu", "nll_logsoftmax", "mse"]

    # A newcomer's laptop: 1366 x 768, the assistant's panel open as the UI opens it. The verdict
    # and the mean with its interval must show beside each run's name without scrolling.
    small = browser.new_page(viewport={"width": 1366, "height": 768})
    small.goto(f"{base}/{study_view.view_path(experiment.experiment_id)}")  # the link `make ui` prints first
    small.get_by_role("link", name="nll_relu", exact=True).first.wait_for(timeout=60_000)
    small.wait_for_timeout(1_000)
    small.screenshot(path=SHOTS / "mlflow-study-view-1366.png")
    summary = ReportSummary.load("titanic")
    for name in ("nll_relu", "mse"):
        text = variant_runs.accuracy(summary.variants[name])
        cell = small.get_by_text(text, exact=True).first
        cell.wait_for(timeout=60_000)
        row = small.locator(".ag-row", has=cell)
        verdict = row.get_by_text(summary.variants[name].verdict, exact=True).first
        panel = small.get_by_text("MLflow Assistant").first.bounding_box()
        for box in (cell.bounding_box(), verdict.bounding_box()):
            assert box["x"] + box["width"] <= panel["x"] and box["y"] + box["height"] <= 768, (name, box, panel)


def test_make_uis_view_across_datasets_at_1366_shows_the_conclusion_and_the_current_run(ui, browser):
    """`make ui`'s lines across datasets on a newcomer's 1366 x 768, the assistant's panel open:
    the view shows the conclusion and the current run alone (not an earlier one) beside the panel
    without scrolling; the run's page opens among the runs (not GenAI's "Evaluations") with the
    page and readable numbers."""
    import contextlib
    import io

    from mlflow import MlflowClient

    from pipeline.core import config
    from pipeline.tracking import across_runs, study_view

    base, uri = ui
    publish.main(only=["across"])
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.ACROSS_EXPERIMENT)
    [current] = client.search_runs([experiment.experiment_id], f"tags.{study_view.CURRENT_TAG} = 'yes'")
    earlier = client.create_run(experiment.experiment_id, run_name=across_runs.RUN_NAME,
                                tags={across_runs.PAGE_TAG: across_runs.RUN_NAME}).info.run_id
    client.set_terminated(earlier)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        study_view.main(base, config.PARAMS_FILE)  # what `make ui` prints
    lines = printed.getvalue().splitlines()
    [view_link] = [line.split(": ", 1)[1] for line in lines if line.startswith("then across datasets: ")]
    [page_link] = [line.split(": ", 1)[1] for line in lines if line.startswith("  its page ")]
    assert current.info.run_id in page_link

    view = browser.new_page(viewport={"width": 1366, "height": 768})
    view.goto(view_link)
    named = view.get_by_role("link", name=across_runs.RUN_NAME, exact=True)
    named.first.wait_for(timeout=60_000)
    view.wait_for_timeout(1_000)
    SHOTS.mkdir(exist_ok=True)
    view.screenshot(path=SHOTS / "mlflow-across-view-1366.png")
    assert named.count() == 1  # the current run alone, not the earlier one
    panel = view.get_by_text("MLflow Assistant").first.bounding_box()
    conclusion = view.get_by_text("The loss study across 1 dataset.").first
    datasets = view.locator(".ag-row").get_by_text(current.data.params["datasets"], exact=True).first
    for box in (conclusion.bounding_box(), named.first.bounding_box(), datasets.bounding_box()):
        assert box["x"] + box["width"] <= panel["x"] and box["y"] + box["height"] <= 768, (box, panel)

    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(page_link)
    page.get_by_text("The loss study across datasets").first.wait_for(timeout=60_000)
    page.screenshot(path=SHOTS / "mlflow-across-run-1366.png")
    assert page.get_by_role("link", name="Runs", exact=True).count() >= 1  # the sidebar's, the breadcrumb's
    assert page.get_by_role("link", name="Evaluations", exact=True).count() == 0
    metrics = current.data.metrics
    assert metrics and all(value == variant_runs.readable(value) for value in metrics.values()), metrics


def test_dvc_plots_render_offline(tmp_path, browser):
    """`dvc plots show` with the project's template draws every chart with no network."""
    node_modules = ROOT / "node_modules"
    if not all((node_modules / library).exists() for library in plots_template.LIBRARIES):
        if os.environ.get("CI"):  # CI installs Node.js (.ci/run): there the page must be checked
            pytest.fail("node_modules lacks vega: run `make plots-offline` (npm ci)")
        pytest.skip("no npm packages in node_modules: install Node.js, then `make plots-offline`")
    repo = tmp_path / "plots"
    repo.mkdir()
    (repo / "history.csv").write_text("epoch,val_loss\n1,0.7\n2,0.5\n3,0.45\n")
    (repo / "sweep.csv").write_text("log10_alpha,test_accuracy,train_accuracy\n-3,1.0,1.0\n3,0.43,0.53\n")
    figure = ROOT / "docs/images/normalised.png"  # any PNG
    (repo / "reports/across").mkdir(parents=True)
    shutil.copy(figure, repo / "figure.png")
    shutil.copy(figure, repo / "reports/across/normalised.png")
    (repo / "dvc.yaml").write_text(
        "plots:\n  - history.csv:\n      x: epoch\n      y: val_loss\n"
        "  - accuracy:\n      x: log10_alpha\n      y:\n        sweep.csv: [train_accuracy, test_accuracy]\n"
        "  - figure.png\n  - reports/across/normalised.png\n")
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=repo, check=True)
    (repo / ".dvc/plots").mkdir()
    (repo / ".dvc/plots/offline.html").write_text(plots_template.render(node_modules))
    subprocess.run([dvc, "config", "plots.html_template", "plots/offline.html"], cwd=repo, check=True)
    subprocess.run([dvc, "plots", "show", "-q"], cwd=repo, check=True)
    html = (repo / "dvc_plots/index.html").read_text()
    assert "cdn.jsdelivr" not in html and "<script src=" not in html

    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route("**/*", lambda route: route.abort() if not route.request.url.startswith("file:") else route.continue_())
    page.goto((repo / "dvc_plots/index.html").as_uri())
    page.wait_for_function("document.querySelectorAll('.vega-embed canvas, .vega-embed svg').length >= 2",
                           timeout=30_000)
    assert errors == []
    assert page.evaluate("document.querySelectorAll('.vega-embed').length") == 2
    # The study's figures first (DVC writes every vega chart first; the template reorders).
    tops = page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('body > div[id]'))
        .map(d => [d.id, d.getBoundingClientRect().top]))""")
    assert min(tops, key=tops.get) == "reports_across_normalised_png", tops
    assert tops["history_csv"] < tops["figure_png"], tops  # the rest as DVC orders it
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SHOTS / "dvc-plots.png", full_page=True)
