"""The alpha sweep's pictures: one figure built once, redrawn per alpha, and the summary plot.

The seed drew every frame as a fresh figure through a PNG buffer; here the axes, the points
and the grid stay put and only the boundary image, its contour and the title change, which
also keeps every frame on the same axes.
"""
from __future__ import annotations

import warnings

import numpy as np

CLASS_COLOURS = ("#1f77b4", "#d62728")  # setosa, versicolor
GRID_STEPS = 200


def grid(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """A fixed grid over every point (train and test) plus a margin of 1, as in the seed."""
    points = np.vstack([data["x_train"], data["x_test"]])
    (x_min, y_min), (x_max, y_max) = points.min(axis=0) - 1, points.max(axis=0) + 1
    return np.meshgrid(np.linspace(x_min, x_max, GRID_STEPS), np.linspace(y_min, y_max, GRID_STEPS))


class Frames:
    def __init__(self, data: dict, xx: np.ndarray, yy: np.ndarray, model_name: str):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
        from matplotlib.lines import Line2D

        self.xx, self.yy, self.model_name = xx, yy, model_name
        self.fig, self.ax = plt.subplots(figsize=(6, 5), dpi=80)
        extent = (xx.min(), xx.max(), yy.min(), yy.max())
        self.image = self.ax.imshow(np.zeros(xx.shape), origin="lower", extent=extent, aspect="auto",
                                    cmap=ListedColormap(CLASS_COLOURS), vmin=0, vmax=1, alpha=0.25,
                                    interpolation="nearest")
        colours = np.array(CLASS_COLOURS)
        self.ax.scatter(*data["x_train"].T, c=colours[data["y_train"]], edgecolors="k", s=40)
        self.ax.scatter(*data["x_test"].T, facecolors="none", edgecolors=colours[data["y_test"]], s=40,
                        linewidths=1.6)
        self.ax.set(xlim=extent[:2], ylim=extent[2:], xlabel="sepal length (standardized)",
                    ylabel="petal length (standardized)")
        self.ax.legend(handles=[
            Line2D([], [], marker="o", ls="", mfc=CLASS_COLOURS[0], mec="k", label="setosa (train)"),
            Line2D([], [], marker="o", ls="", mfc=CLASS_COLOURS[1], mec="k", label="versicolor (train)"),
            Line2D([], [], marker="o", ls="", mfc="none", mec="grey", label="test (hollow)")],
            loc="lower right", fontsize=8)
        self.contour = None
        self.fig.tight_layout(rect=(0, 0, 1, 0.95))

    def draw(self, z: np.ndarray, row: dict) -> np.ndarray:
        self.image.set_data(z)
        if self.contour is not None:
            self.contour.remove()
            self.contour = None
        if z.min() != z.max():  # a collapsed model has no boundary to draw
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.contour = self.ax.contour(self.xx, self.yy, z, levels=[0.5], colors="k", linewidths=1.2)
        self.ax.set_title(f"{self.model_name.upper()} decision boundary, alpha = {row['alpha']:.4g}\n"
                          f"train accuracy {row['train_accuracy']:.2f}, test accuracy {row['test_accuracy']:.2f}",
                          fontsize=10)
        self.fig.canvas.draw()
        return np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy()

    def close(self) -> None:
        import matplotlib.pyplot as plt

        plt.close(self.fig)


def gif_bytes(frames: list[np.ndarray], frame_ms: int) -> bytes:
    import imageio.v3 as iio

    # loop=0: forever. Every frame differs (the title names its alpha), so none are merged.
    return iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=frame_ms, loop=0)


def summary_png(rows: list[dict], model_name: str) -> bytes:
    import io

    import matplotlib.pyplot as plt

    alphas = [r["alpha"] for r in rows]
    fig, left = plt.subplots(figsize=(7, 4), dpi=90)
    left.plot(alphas, [r["train_accuracy"] for r in rows], marker="o", ms=3, label="train accuracy")
    left.plot(alphas, [r["test_accuracy"] for r in rows], marker="s", ms=3, label="test accuracy")
    left.set(xscale="log", xlabel="alpha (L2 penalty)", ylabel="accuracy", ylim=(0, 1.05),
             title=f"{model_name}: accuracy and weight norm against alpha")
    right = left.twinx()
    right.plot(alphas, [r["weight_l2_norm"] for r in rows], color="grey", ls="--", label="weights' L2 norm")
    right.set_ylabel("weights' L2 norm")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    left.legend(handles=handles, loc="lower left", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
