"""Charts read on a phone: laid out again (one panel per row, the phone's width, titles wrapped,
heat-map cell labels hidden) and described in words for screen readers."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

from crmlab.present import chart_text, phone


def _two_panels() -> Figure:
    fig = Figure(figsize=(12, 4), constrained_layout=True)
    left, right = fig.subplots(1, 2)
    left.bar(["a", "b"], [1, 2], label="first-time")
    left.legend()
    left.set(title="Sales by month", xlabel="month", ylabel="sales (£)")
    right.plot([0, 1], [0.2, 0.5])
    right.set(title="Returning share of buyers over the last twelve months", ylabel="share")
    return fig


def test_panels_side_by_side_are_stacked_at_the_phone_width_with_the_same_text_size():
    fig = _two_panels()
    size = fig.get_axes()[0].title.get_fontsize()
    assert phone.needs_phone_layout(fig)
    assert phone.phone_layout(fig)
    w, h = fig.get_size_inches()
    assert w == phone.PHONE_WIDTH_IN and h > w * 0.9
    fig.canvas.draw()
    top, bottom = (ax.get_position() for ax in fig.get_axes())
    assert top.y0 > bottom.y1  # one above the other, not side by side
    assert fig.get_axes()[0].title.get_fontsize() == size
    assert "\n" in fig.get_axes()[1].get_title()  # the long title wrapped, not cut


def test_a_dense_heat_map_loses_its_cell_labels_on_a_phone_only():
    fig = Figure(figsize=(10, 5))
    ax = fig.subplots()
    ax.imshow([[i * j for j in range(8)] for i in range(6)])
    for i in range(6):
        for j in range(8):
            ax.text(j, i, str(i * j))
    assert phone.phone_layout(fig)
    assert not any(t.get_visible() for t in ax.texts)


def test_a_narrow_chart_keeps_one_rendering():
    assert not phone.needs_phone_layout(Figure(figsize=(phone.PHONE_WIDTH_IN, 3)))


def test_alt_text_names_the_title_axes_and_series_of_each_panel():
    text = chart_text.describe(_two_panels())
    assert text.startswith("Chart: panel 1: Sales by month")
    assert "x: month; y: sales (£)" in text and "series: first-time" in text and "panel 2:" in text
    assert len(text) <= chart_text.MAX_CHARACTERS
    assert chart_text.describe(Figure()) == "Chart: no title"
