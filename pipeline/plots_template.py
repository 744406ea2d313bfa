"""`dvc plots show` offline: its page template with vega, vega-lite and vega-embed inlined.

DVC's default page loads the three libraries from a CDN, so it stays blank without network.
Where npm is installed, `make install` fetches them from the npm registry (package.json) and runs
this command, which writes them into the template named by `plots.html_template` in .dvc/config.
Without them the template loads the same versions from the CDN: the page needs network to
render, and `dvc plots show` still works (DVC refuses a missing template).
"""
from __future__ import annotations

import json
from pathlib import Path

from .core import atomic, config
from .core.errors import PipelineError

TEMPLATE = Path(".dvc/plots/offline.html")
LIBRARIES = ("vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js", "vega-embed/build/vega-embed.min.js")
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
{libraries}
    <style>
        body {{ font-family: sans-serif; }}
        table {{ border-spacing: 15px; }}
{order}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""

# DVC writes the page's plots in an order of its own (every vega chart, then the images by
# path), whatever dvc.yaml's order: the study's figures would come after 70 per-variant charts.
# The page is a column whose children CSS reorders: the figures across datasets, the contrasts,
# the intervals, the sweep, then each variant's detail. DVC names each plot's element by its
# path, "/" and "." as "_".
FIRST = ("reports_across_normalised_png", "reports_across_critical_difference_png", "_contrast_nll_png",
         "_contrast_kldiv_png", "_intervals_png", "_compare_png", "plots_iris_alpha_summary_png",
         "plots_iris_alpha_sweep_gif", "iris_accuracy_against_alpha")
ORDER = "\n".join(
    ["        body { display: flex; flex-direction: column; align-items: flex-start; }"]
    + [f'        div[id$="{suffix}"] {{ order: {rank - len(FIRST)}; }}' for rank, suffix in enumerate(FIRST)])


def render(node_modules: Path) -> str:
    scripts = []
    for library in LIBRARIES:
        path = node_modules / library
        try:
            code = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PipelineError(f"{path}: not found; run `npm ci` (or `make plots-offline`) first") from None
        # Inlined code must not end the <script> element early.
        scripts.append("    <script>\n" + code.replace("</script", "<\\/script") + "\n    </script>")
    return PAGE.format(refresh_tag="{refresh_tag}", libraries="\n".join(scripts), order=ORDER)


def render_online(package_json: Path = Path("package.json")) -> str:
    """The page loading package.json's versions of the three libraries from jsDelivr."""
    versions = json.loads(package_json.read_text())["dependencies"]
    scripts = [f'    <script src="https://cdn.jsdelivr.net/npm/{name}@{versions[name]}"></script>'
               for name in (library.split("/")[0] for library in LIBRARIES)]
    return PAGE.format(refresh_tag="{refresh_tag}", libraries="\n".join(scripts), order=ORDER)


def main(params_path: str = config.PARAMS_FILE) -> None:
    node_modules = Path("node_modules")
    if all((node_modules / library).exists() for library in LIBRARIES):
        atomic.write_text(TEMPLATE, render(node_modules))
        print(f"plots-template: {TEMPLATE} written (vega, vega-lite, vega-embed inlined)")
    else:
        atomic.write_text(TEMPLATE, render_online())
        print(f"plots-template: no npm packages in {node_modules}/, so {TEMPLATE} loads vega from a CDN "
              f"(`dvc plots show` pages need network); with Node.js installed, `make plots-offline` inlines them")
