"""Report plots render as valid PNG and SVG files with their titles."""

from __future__ import annotations

import pytest

from kizuna.analytics.charts.output import figure_bytes, save_figure
from kizuna.errors import InvalidInput
from kizuna.measurement.plots import PLOTS, TITLES, plot_report
from tests.unit.test_campaign_report_assembly import build


@pytest.mark.parametrize("which", PLOTS)
def test_each_plot_renders_as_png_and_svg_with_its_title(which, tmp_path):
    figure = plot_report(build(), which)
    assert figure.axes[0].get_title() == f"秋のセール — {TITLES[which]}"
    png = save_figure(figure, tmp_path / f"{which}.png")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = figure_bytes(figure, "svg").decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg


def test_uplift_plot_draws_one_row_per_comparison():
    figure = plot_report(build(), "uplift")
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["treatment vs control", "A vs control", "B vs control", "B vs A"]


def test_unknown_plot_is_refused():
    with pytest.raises(InvalidInput, match="funnel, uplift, daily"):
        plot_report(build(), "pie")
