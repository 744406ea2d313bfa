"""Where every figure is written: matplotlib on its file backend (no display, the same pixels on
every machine), each figure as PNG bytes a stage writes with the rest of its outputs, atomically.
matplotlib is imported only when a figure is drawn (about 0.5 s).

And the variants' colours, one per variant, the same in every figure and in MLflow (the tag
mlflow.runColor): the variant's place in params.yaml's `variants` picks it, so the study's
variants never share one while there are no more than the palette holds (24), and a variant
added at the end leaves the others' colours as they were. The first ten are matplotlib's tab10;
the other fourteen were chosen, one at a time, as the sRGB colour (lightness 28 to 70, readable
on white) farthest from those before it and from black and white by CIEDE2000 (the last four when
the default study reached twenty variants). Every two of the twenty-four differ by at least 16
(tab10's red and brown, the closest); tests/test_palette.py measures it.
"""
from __future__ import annotations

from collections.abc import Iterable

PALETTE = ("#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd", "#e377c2", "#17becf", "#8c564b", "#bcbd22",
           "#7f7f7f", "#4b4b00", "#004b4b", "#0f00e1", "#87005a", "#a57800", "#96a5ff", "#4b4b69", "#2d8778",
           "#ff8787", "#c3a587", "#00691e", "#e10078", "#87b496", "#693c00")
# A run that is no variant's (a report run): apart from every one of them.
NEUTRAL = "#000000"


def variant_colours(variants: Iterable[str]) -> dict[str, str]:
    """{variant: colour}, `variants` in the study's order (params.yaml's); past the palette's
    length the colours start again."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(variants)}


def pyplot():
    """matplotlib.pyplot on the Agg backend: a stage draws files, never windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig, dpi: float | None = None, **savefig) -> bytes:
    """The figure as PNG bytes (dpi None: the figure's own), and closed: a stage draws dozens."""
    import io

    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, **savefig)
    plt.close(fig)
    return buffer.getvalue()


def paint_labels(labels, colours: dict[str, str]) -> None:
    """Tick labels that name variants, each in its colour (variant_colours); others as they are."""
    for label in labels:
        if label.get_text() in colours:
            label.set_color(colours[label.get_text()])
