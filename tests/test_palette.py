"""One colour per variant (pipeline/core/figures.py): told apart by eye, the same in every figure
and in MLflow. Distance is CIEDE2000 (Sharma, Wu & Dalal 2005, "The CIEDE2000 color-difference
formula: implementation notes, supplementary test data, and mathematical observations"), checked
against their published pairs first."""
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.colors import to_hex

from pipeline.core import figures
from pipeline.reports import overview
from pipeline.statistics import across

from .conftest import ROOT


def lab(hexes) -> np.ndarray:
    """sRGB (D65) to CIELAB."""
    rgb = np.array([[int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)] for h in hexes])
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def ciede2000(one: np.ndarray, two: np.ndarray) -> np.ndarray:
    (l1, a1, b1), (l2, a2, b2) = np.moveaxis(one, -1, 0), np.moveaxis(two, -1, 0)
    mean_c = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(mean_c ** 7 / (mean_c ** 7 + 25.0 ** 7)))
    a1, a2 = (1 + g) * a1, (1 + g) * a2
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1)) % 360, np.degrees(np.arctan2(b2, a2)) % 360
    dh = h2 - h1
    dh = np.where(c1 * c2 == 0, 0, np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh)))
    d_l, d_c, d_h = l2 - l1, c2 - c1, 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh / 2))
    mean_l, mean_c = (l1 + l2) / 2, (c1 + c2) / 2
    total = h1 + h2
    mean_h = np.where(c1 * c2 == 0, total, np.where(np.abs(h1 - h2) <= 180, total / 2,
                                                    np.where(total < 360, (total + 360) / 2, (total - 360) / 2)))
    t = (1 - 0.17 * np.cos(np.radians(mean_h - 30)) + 0.24 * np.cos(np.radians(2 * mean_h))
         + 0.32 * np.cos(np.radians(3 * mean_h + 6)) - 0.20 * np.cos(np.radians(4 * mean_h - 63)))
    rotation = -np.sin(np.radians(60 * np.exp(-(((mean_h - 275) / 25) ** 2)))) \
        * 2 * np.sqrt(mean_c ** 7 / (mean_c ** 7 + 25.0 ** 7))
    s_l = 1 + 0.015 * (mean_l - 50) ** 2 / np.sqrt(20 + (mean_l - 50) ** 2)
    s_c, s_h = 1 + 0.045 * mean_c, 1 + 0.015 * mean_c * t
    return np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + rotation * (d_c / s_c) * (d_h / s_h))


@pytest.mark.parametrize("one, two, expected", [  # Sharma et al.'s test data, pairs 1, 7, 13, 17 and 25
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (50.0, 0.0, -2.5), 4.3065),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
])
def test_the_distance_is_ciede2000(one, two, expected):
    assert ciede2000(np.array(one), np.array(two)) == pytest.approx(expected, abs=1e-4)


def distances(colours) -> np.ndarray:
    points = lab(colours)
    found = ciede2000(points[:, None], points[None])
    np.fill_diagonal(found, np.inf)
    return found


def test_every_two_colours_of_the_palette_are_told_apart():
    # tab10's red and brown are the closest pair (16.2); 10 is about where two swatches side by
    # side stop reading as one colour family.
    assert len(set(figures.PALETTE)) == len(figures.PALETTE) == 24
    assert distances(figures.PALETTE).min() >= 16
    assert distances([*figures.PALETTE, figures.NEUTRAL, "#ffffff"]).min() >= 16  # the report run, the page


def test_the_default_study_s_variants_each_have_their_own_colour():
    variants = list(yaml.safe_load((ROOT / "params.yaml").read_text())["variants"])
    colours = figures.variant_colours(variants)
    assert len(set(colours.values())) == len(variants)
    assert (colours["nll_relu"], colours["nll_logsoftmax"]) == ("#d62728", "#2ca02c")  # the docs' red and green
    # A variant added at the end leaves every other colour as it was.
    assert figures.variant_colours([*variants, "mine"]) == {**colours, "mine": figures.PALETTE[len(variants)]}


def test_the_critical_difference_diagram_names_each_variant_in_its_colour():
    names = ["square_loss", "bce_with_logits", "cross_entropy", "mse", "l1", "cosine_embedding"]
    rng = np.random.default_rng(0)
    result = across.ranks(pd.DataFrame(rng.normal(0.8, 0.02, (5, len(names))), columns=names))
    colours = figures.variant_colours(names)
    figure = overview.cd_diagram(result, colours)
    # "name (rank)" on the left, "(rank) name" on the right
    labels = {re.sub(r"\s*\(\d+\.\d+\)\s*", "", text.get_text()): to_hex(text.get_color())
              for text in figure.axes[0].texts if "(" in text.get_text()}
    assert labels == colours
