"""The page template of `dvc plots show`: inlined where npm fetched vega, from a CDN where not."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline import plots_template

from .conftest import ROOT


def test_the_project_points_dvc_at_the_template():
    config = (ROOT / ".dvc/config").read_text()
    assert "html_template = plots/offline.html" in config
    assert plots_template.TEMPLATE == Path(".dvc/plots/offline.html")


def test_without_npm_the_template_loads_package_jsons_versions_and_dvc_plots_show_works(project):
    """No node_modules (no npm on the machine): a CDN template, never a missing one, which DVC refuses."""
    shutil.copy(ROOT / "package.json", "package.json")
    (project.path / "history.csv").write_text("epoch,val_loss\n1,0.7\n2,0.5\n")
    (project.path / "dvc.yaml").write_text("plots:\n  - history.csv:\n      x: epoch\n      y: val_loss\n")
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "init", "--no-scm", "-q"], check=True)
    subprocess.run([dvc, "config", "plots.html_template", "plots/offline.html"], check=True)
    done = subprocess.run([sys.executable, "-m", "pipeline", "plots-template"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "loads vega from a CDN" in done.stdout and "make plots-offline" in done.stdout
    subprocess.run([dvc, "plots", "show", "-q"], check=True)
    html = Path("dvc_plots/index.html").read_text()
    versions = json.loads((ROOT / "package.json").read_text())["dependencies"]
    assert set(versions) == {"vega", "vega-lite", "vega-embed"}
    for name, version in versions.items():
        assert f'<script src="https://cdn.jsdelivr.net/npm/{name}@{version}"></script>' in html
    assert "history.csv" in html
