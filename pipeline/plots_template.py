"""`dvc plots show` offline: its page template with vega, vega-lite and vega-embed inlined.

DVC's default page loads the three libraries from a CDN, so it stays blank without network.
`make install` fetches them from the npm registry (package.json) and runs this command, which
writes them into the template named by `plots.html_template` in .dvc/config.
"""
from __future__ import annotations

from pathlib import Path

from . import atomic, config
from .errors import PipelineError

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
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def render(node_modules: Path) -> str:
    scripts = []
    for library in LIBRARIES:
        path = node_modules / library
        try:
            code = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PipelineError(f"{path}: not found; run `npm ci` (or `make install`) first") from None
        # Inlined code must not end the <script> element early.
        scripts.append("    <script>\n" + code.replace("</script", "<\\/script") + "\n    </script>")
    return PAGE.format(refresh_tag="{refresh_tag}", libraries="\n".join(scripts))


def main(params_path: str = config.PARAMS_FILE) -> None:
    atomic.write_text(TEMPLATE, render(Path("node_modules")))
    print(f"plots-template: {TEMPLATE} written (vega, vega-lite, vega-embed inlined)")
