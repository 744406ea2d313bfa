"""`make docs`: what the README shows, from the last real run (run `make repro` first).

- the table of the study across datasets between the `across` markers of README.md, and what
  the page says after it (the ranks, the square-loss answer) between the `across-conclusion`
  markers, from reports/across/comparison.md; its two figures into docs/images/;
- the results tables between the `results` markers of README.md (some columns) and the `study`
  markers of docs/study.md (all), taken from reports/titanic/comparison.md as the report wrote them,
  and between the `conclusion` markers of both what the report says of its verdicts (the lines
  after its table), so that no sentence there claims more than the table;
- docs/images/: the report's intervals and NLL contrast figures and the sweep's GIF, and
  screenshots of the MLflow study view and of the chart view of the NLL pair, taken the way the
  browser tests take theirs (tests/test_browser.py: Debian's Chromium, `mlflow server` on a loopback port) on a fresh
  store that this run's outputs are published into;
- the benchmark's page across its tables (keel/reports/across/, after `make benchmark`) into
  docs/keel/ with its figures, and what it says after its table between the `keel-answer` markers
  of docs/keel.md, its Bayesian table between the `keel-against` markers; without a benchmark run
  here, the committed ones stay.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
README = ROOT / "README.md"
# The report's columns the README keeps (the rest are in docs/study.md).
COLUMNS = ("variant", "mean val acc", "95% CI", "diff vs reference [95% CI]", "p diff (Holm)", "p equiv (Holm)",
           "verdict", "diagnoses")


def small_png(image: Image.Image, target: Path, width: int = 900) -> None:
    """Scaled to `width` and reduced to 128 colours: a figure stays legible at a tenth of the bytes.
    Octree, not median cut: median cut merged the UI's few-pixel run-colour dots into grey."""
    image = image.convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(colors=128, method=Image.Quantize.FASTOCTREE).save(target, optimize=True)


def _first_table(lines: list[str]) -> tuple[int, int]:
    """[start, end) of the page's first table: the study's; later ones are secondary."""
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return start, end


def results_table(report: Path, columns: tuple[str, ...] | None = None) -> str:
    lines = report.read_text().splitlines()
    start, end = _first_table(lines)
    rows = lines[start:end]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    keep = [header.index(name) for name in columns] if columns else list(range(len(header)))
    table = []
    for row in [rows[0], *rows[2:]]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        table.append("| " + " | ".join(cells[i] for i in keep) + " |")
    table.insert(1, "|" + "---|" * len(keep))
    return "\n".join(table)


def section_table(report: Path, heading: str) -> str:
    """The first table under the page's section `## heading`."""
    lines = report.read_text().splitlines()
    if f"## {heading}" not in lines:
        sys.exit(f"error: {report.relative_to(ROOT)}: no section '## {heading}'")
    after = lines[lines.index(f"## {heading}"):]
    start, end = _first_table(after)
    return "\n".join(after[start:end])


CHAMPION = "Champion: "


def conclusion(report: Path) -> str:
    """The report's own words after its first table, up to its next section: the champion first
    (the answer a newcomer looks for), then the verdicts, each variant named."""
    lines = report.read_text().splitlines()
    _, end = _first_table(lines)
    after = next((i for i in range(end, len(lines)) if lines[i].startswith("## ")), len(lines))
    paragraphs = "\n".join(lines[end:after]).strip().split("\n\n")
    return "\n\n".join(sorted(paragraphs, key=lambda paragraph: not paragraph.startswith(CHAMPION)))


TUNED_SECTION = "Each loss at its best learning rate (the tuned study)"
TUNED_ACROSS = "Each loss at its best learning rate, across datasets"
CHANGES = "Verdicts that change when each loss gets its own rate:"


IN_TUNED = "In the tuned study: "


def _line(page: Path, start: str) -> str:
    line = next((line for line in page.read_text().splitlines() if line.startswith(start)), None)
    if line is None:
        sys.exit(f"error: {page.relative_to(ROOT)}: no line '{start}...' (tuning.enabled is false?)")
    return line


def changes(report: Path) -> str:
    """The report's line naming the verdicts the tuned study changes."""
    return _line(report, CHANGES)


def tuned_answer(report: Path, across: Path) -> str:
    """One line: the verdicts the tuned study changes on the report's dataset, and what its ranks
    across datasets can tell apart (the page's own first two sentences of it)."""
    changed = changes(report).removeprefix(CHANGES).strip().rstrip(".")
    ranks = " ".join(re.split(r"(?<=\.) ", _line(across, IN_TUNED).removeprefix(IN_TUNED))[:2])
    return (f"**Each loss at its best learning rate** (the tuned study, [docs/study.md](docs/study.md#each-loss-at-"
            f"its-best); [the rates chosen](docs/images/chosen_lr.png)): on Titanic the verdicts that change are "
            f"{changed}. Across the datasets: {ranks}")


def replace_between_markers(path: Path, name: str, body: str) -> None:
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
    text = path.read_text()
    if not pattern.search(text):
        sys.exit(f"error: {path.relative_to(ROOT)}: no <!-- {name}:begin --> ... <!-- {name}:end --> markers")
    path.write_text(pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text))


def screenshots(study_view_png: Path, contrast_png: Path) -> None:
    """The study's view (its runs table at first open) and the chart view of the NLL pair's
    training loss, on a fresh store this run's outputs are published into."""
    sys.path.insert(0, str(ROOT))
    from mlflow import MlflowClient
    from playwright.sync_api import sync_playwright

    from pipeline.tracking import study_view
    from pipeline.tracking.store import experiment as experiment_name
    from tests.test_browser import CHROMIUM, FLAGS, served

    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{folder}/mlflow.db"
        subprocess.run([sys.executable, "-m", "pipeline", "publish"], cwd=ROOT, check=True,
                       env={**os.environ, "MLFLOW_TRACKING_URI": uri})
        with served(uri) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            experiment = MlflowClient(uri).get_experiment_by_name(experiment_name("titanic")).experiment_id

            def opened(address: str, ready: str, width: int, height: int):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(f"{base}/{address}")
                page.locator(ready).first.wait_for(timeout=60_000)
                # Room for the table and the charts: the assistant's panel closed, the navigation folded.
                for button in ("Close", "Toggle sidebar"):
                    if page.get_by_role("button", name=button, exact=True).count():
                        page.get_by_role("button", name=button, exact=True).first.click()
                return page

            page = opened(study_view.view_path(experiment), ".ag-row", 1700, 1180)  # every run of the study
            page.wait_for_timeout(2_000)
            page.screenshot(path=Path(folder) / "view.png")
            # The NLL pair's training loss: the replicas' mean running off below zero on ReLU, and
            # the canonical replica's flat 0 (a stalled one) beside it.
            page = opened(f"#/experiments/{experiment}/runs?compareRunsMode=CHART&workflowType=machine_learning"
                          "&searchFilter=" + quote(f"tags.contrast = 'nll' and tags.{study_view.CURRENT_TAG} = 'yes'"),
                          ".js-plotly-plot", 1300, 1120)
            page.get_by_placeholder("Search metric charts").fill("train/loss")
            page.wait_for_timeout(2_000)
            page.screenshot(path=Path(folder) / "contrast.png")
            browser.close()
        small_png(Image.open(Path(folder) / "view.png"), study_view_png, width=1100)
        small_png(Image.open(Path(folder) / "contrast.png"), contrast_png, width=1000)


KEEL_ACROSS = ROOT / "keel" / "reports" / "across"
KEEL_DOCS = ROOT / "docs" / "keel"


def benchmark() -> None:
    """The benchmark's page and figures into docs/keel/, its answer and Bayesian table into docs/keel.md."""
    page = KEEL_ACROSS / "comparison.md"
    if not page.exists():
        print(f"docs: {page.relative_to(ROOT)} not found (no `make benchmark` here): the benchmark's committed "
              f"report in {KEEL_DOCS.relative_to(ROOT)}/ stays")
        return
    KEEL_DOCS.mkdir(exist_ok=True)
    (KEEL_DOCS / "comparison.md").write_text(page.read_text())
    for name in ("normalised.png", "critical_difference.png", "chosen_lr.png"):
        if (KEEL_ACROSS / name).exists():
            small_png(Image.open(KEEL_ACROSS / name), KEEL_DOCS / name)
    keel_md = ROOT / "docs" / "keel.md"
    replace_between_markers(keel_md, "keel-answer", conclusion(page))
    replace_between_markers(keel_md, "keel-against", section_table(page, "Against the reference, across datasets"))
    print(f"docs: the benchmark's page and figures into {KEEL_DOCS.relative_to(ROOT)}/, its answer into docs/keel.md")


def main() -> None:
    report, across = ROOT / "reports/titanic", ROOT / "reports/across"
    for page in (report / "comparison.md", across / "comparison.md"):
        if not page.exists():
            sys.exit(f"error: {page.relative_to(ROOT)}: not found; run `make repro` first")
    IMAGES.mkdir(parents=True, exist_ok=True)
    for name in ("intervals.png", "contrast_nll.png"):
        small_png(Image.open(report / name), IMAGES / name)
    for name in ("normalised.png", "critical_difference.png", "chosen_lr.png"):
        small_png(Image.open(across / name), IMAGES / name)
    replace_between_markers(README, "across", section_table(across / "comparison.md", TUNED_ACROSS))
    replace_between_markers(ROOT / "docs/study.md", "across", results_table(across / "comparison.md"))
    replace_between_markers(README, "tuned", tuned_answer(report / "comparison.md", across / "comparison.md"))
    replace_between_markers(ROOT / "docs/study.md", "tuned", section_table(report / "comparison.md", TUNED_SECTION)
                            + "\n\n" + changes(report / "comparison.md"))
    replace_between_markers(README, "across-conclusion", conclusion(across / "comparison.md"))
    (IMAGES / "alpha_sweep.gif").write_bytes((ROOT / "plots/iris/alpha_sweep.gif").read_bytes())
    screenshots(IMAGES / "mlflow-study-view.png", IMAGES / "mlflow-contrast.png")
    replace_between_markers(README, "results", results_table(report / "comparison.md", COLUMNS))
    replace_between_markers(ROOT / "docs/study.md", "study", results_table(report / "comparison.md"))
    replace_between_markers(ROOT / "docs/study.md", "scores",
                            section_table(report / "comparison.md", "Scores beyond accuracy"))
    replace_between_markers(ROOT / "docs/study.md", "against",
                            section_table(across / "comparison.md", "Against the reference, across datasets"))
    for page in (README, ROOT / "docs/study.md"):
        replace_between_markers(page, "conclusion", conclusion(report / "comparison.md"))
    benchmark()
    for image in sorted(IMAGES.iterdir()):
        print(f"docs: {image.relative_to(ROOT)} ({image.stat().st_size // 1024} KiB)")
    print("docs: the tables in README.md and docs/study.md rewritten from reports/across/comparison.md and "
          "reports/titanic/comparison.md")


if __name__ == "__main__":
    main()
