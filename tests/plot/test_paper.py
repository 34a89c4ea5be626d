"""The paper layout is at true scale and draws the signal where it is: checked on the figure's
artists (data -> pixels) and on the pixels of the rendered PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecg_instruct.plot.paper import (
    CAL_PULSE,
    CAL_S,
    GRID_MAJOR,
    LAYOUT,
    MM_PER_INCH,
    draw,
    render,
    rows_for,
)
from ecg_instruct.plot.view import EcgView
from ecg_instruct.signals.leads import CANONICAL_LEADS, to_canonical
from ecg_instruct.signals.wfdb_io import read_record

#: 127 dpi: 1 mm is exactly 5 px, so 1 s (25 mm) is 125 px and 1 mV (10 mm) 50 px.
DPI = 127
PX_PER_MM = DPI / MM_PER_INCH


@pytest.fixture(scope="module")
def view(sample_mirror: Path) -> EcgView:
    """PTB-XL record 00001 of the sample mirror, read from its WFDB files."""
    record = read_record(sample_mirror / "ptb-xl" / "records500" / "00000" / "00001_hr")
    return EcgView("ptbxl/00001", to_canonical(record.signal, record.sig_names), record.fs,
                   report="sinus rhythm. normal ecg.", labels=["NORM", "SR"],
                   repairs=["nan_interpolated:V1:1 run(s), 2 samples"])


@pytest.fixture(scope="module")
def figure(view):
    fig, ax = draw(view, DPI)
    fig.canvas.draw()
    return fig, ax


@pytest.fixture(scope="module")
def png(view, tmp_path_factory) -> np.ndarray:
    path = render(view, tmp_path_factory.mktemp("png") / "ecg.png", DPI)
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _px(ax, x, y) -> np.ndarray:
    """Data -> pixel coordinates with the origin at the top left, as in the PNG array."""
    points = ax.transData.transform(np.column_stack([np.atleast_1d(x), np.atleast_1d(y)]))
    height = ax.figure.bbox.height
    return np.column_stack([points[:, 0], height - points[:, 1]])


def test_one_second_is_25_mm_and_one_millivolt_10_mm(figure):
    _, ax = figure
    origin, one_s, one_mv = _px(ax, [0, 1, 0], [0, 0, 1])
    assert one_s[0] - origin[0] == pytest.approx(25 * PX_PER_MM, abs=0.01)
    assert origin[1] - one_mv[1] == pytest.approx(10 * PX_PER_MM, abs=0.01)


def test_grid_lines_are_1_mm_and_5_mm_apart(figure):
    _, ax = figure
    grids = {c.get_gid(): c for c in ax.collections if (c.get_gid() or "").startswith("grid:")}
    for gid, mm in (("grid:minor", 1), ("grid:major", 5)):
        verticals = sorted(seg[0, 0] for seg in grids[gid].get_segments() if seg[0, 0] == seg[1, 0])
        xs = _px(ax, verticals, np.zeros(len(verticals)))[:, 0]
        assert np.allclose(np.diff(xs), mm * PX_PER_MM, atol=0.01)
        horizontals = sorted(seg[0, 1] for seg in grids[gid].get_segments() if seg[0, 1] == seg[1, 1])
        ys = _px(ax, np.zeros(len(horizontals)), horizontals)[:, 1]
        assert np.allclose(np.diff(ys), -mm * PX_PER_MM, atol=0.01)
    # 1 s spans exactly five 5 mm squares: a major line falls on every whole second
    assert {0.0, 1.0, 2.0, 5.0, 10.0} <= {round(seg[0, 0], 6) for seg in grids["grid:major"].get_segments()}


def test_rendered_png_has_major_grid_lines_every_25_px_and_a_50_px_calibration_pulse(figure, png):
    _, ax = figure
    rows = rows_for(EcgView("x", np.zeros((12, 5000)), 500.0))
    # a scan line 1.25 mV above the rhythm strip's baseline: grid only, no trace or text
    y = int(round(_px(ax, 5.0, rows[3].baseline_mv + 1.25)[0, 1]))
    major = np.array([int(GRID_MAJOR[i:i + 2], 16) for i in (1, 3, 5)])
    hits = np.flatnonzero(np.abs(png[y] - major).sum(axis=1) < 60)
    left, right = _px(ax, [-CAL_S, 10.0], [0, 0])[:, 0]
    hits = hits[(hits > left + 2) & (hits < right - 2)]
    spacing = np.diff(hits)
    assert len(hits) >= 50 and np.all(np.abs(spacing - 25) <= 1), spacing
    # calibration pulse of the first row: its top 50 px (1 mV) above the baseline before it
    before, inside = np.round(_px(ax, [-CAL_S + CAL_PULSE[0] / 2, -CAL_S + sum(CAL_PULSE) / 2],
                                  [0, 0])[:, 0]).astype(int)
    top, base = _px(ax, [0, 0], [rows[0].baseline_mv + 1, rows[0].baseline_mv])[:, 1]
    assert base - top == pytest.approx(50)
    for x, level in ((before, base), (inside, top)):
        dark = np.flatnonzero(png[:, x].sum(axis=1) < 200)
        assert np.min(np.abs(dark - level)) <= 1


def test_all_twelve_labels_and_the_lead_ii_rhythm_strip_are_drawn(figure, view):
    fig, ax = figure
    labels = [t.get_text() for t in ax.texts if (t.get_gid() or "").startswith("label:")]
    assert set(labels) >= set(CANONICAL_LEADS) and labels.count("II") == 2
    columns = {line.get_gid() for line in ax.lines}
    assert {f"lead:{name}" for row in LAYOUT for name in row} <= columns
    (rhythm,) = [line for line in ax.lines if line.get_gid() == "rhythm:II"]
    t = rhythm.get_xdata()
    assert t[0] == 0 and t[-1] == pytest.approx(view.duration_s - 1 / view.fs)
    captions = " ".join(t.get_text() for t in fig.texts)
    for needle in ("ptbxl/00001", "fs 500 Hz", "sinus rhythm. normal ecg.", "NORM, SR",
                   "signal_repairs: nan_interpolated:V1"):
        assert needle in captions


def test_each_trace_is_the_signal_at_paper_scale(figure, view):
    """Every plotted point sits where 25 mm/s and 10 mm/mV put the sample (within a pixel)."""
    _, ax = figure
    rows = rows_for(view)
    x0_px, y_top_px = _px(ax, -CAL_S, 0.0)[0]
    for line in ax.lines:
        kind, _, name = (line.get_gid() or "").partition(":")
        if kind not in ("lead", "rhythm"):
            continue
        row = next(r for r in rows if name in r.leads and r.rhythm == (kind == "rhythm"))
        t, y = line.get_xdata(), line.get_ydata()
        samples = np.round(t * view.fs).astype(int)
        lead = view.signal[CANONICAL_LEADS.index(name), samples]
        np.testing.assert_allclose(y - row.baseline_mv, lead, atol=1e-9)
        drawn = _px(ax, t, y)
        expected_x = x0_px + (t + CAL_S) * 25 * PX_PER_MM
        expected_y = y_top_px - (lead + row.baseline_mv) * 10 * PX_PER_MM
        assert np.abs(drawn[:, 0] - expected_x).max() < 1
        assert np.abs(drawn[:, 1] - expected_y).max() < 1


def test_rendered_trace_pixels_lie_on_the_signal(figure, view, png):
    """Sampled points of the lead II rhythm strip: a dark pixel within 1.5 px in the PNG."""
    _, ax = figure
    rows = rows_for(view)
    ii = view.signal[CANONICAL_LEADS.index("II")]
    rng = np.random.default_rng(0)
    samples = np.concatenate([rng.integers(50, len(ii) - 50, 200), [int(np.argmax(ii))]])
    points = _px(ax, samples / view.fs, ii[samples] + rows[3].baseline_mv)
    missing = []
    for x, y in np.round(points).astype(int):
        patch = png[y - 1:y + 2, x - 1:x + 2].sum(axis=2)
        if patch.min() >= 250:  # black trace (anti-aliased) vs red/pink grid and white paper
            missing.append((x, y))
    assert not missing, missing[:5]


def test_figures_are_byte_deterministic(view, tmp_path):
    for suffix in (".png", ".svg", ".pdf"):
        a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
        render(view, a, 60)
        render(view, b, 60)
        assert a.read_bytes() == b.read_bytes(), suffix
    assert b"<dc:date>" not in (tmp_path / "a.svg").read_bytes()


def test_an_unknown_extension_is_a_one_line_error(view, tmp_path):
    from ecg_instruct.errors import UserError

    with pytest.raises(UserError, match=r"ecg\.jpg: cannot write a \.jpg figure — name the output"):
        render(view, tmp_path / "ecg.jpg")
