"""Where every figure is written: matplotlib on its file backend (no display, the same pixels on
every machine), each figure as PNG bytes a stage writes with the rest of its outputs, atomically.
matplotlib is imported only when a figure is drawn (about 0.5 s)."""
from __future__ import annotations


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
