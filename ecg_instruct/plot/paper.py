"""The standard 12-lead paper layout at true scale: 25 mm/s, 10 mm/mV, 1 mm / 5 mm red grid.

Three rows of four columns (I/II/III, aVR/aVL/aVF, V1-V3, V4-V6), each column a quarter of the
record (2.5 s of a 10 s ECG, the same time window for the three leads in it), then a lead II
rhythm strip over the whole record, each row starting with a 1 mV x 0.2 s calibration pulse.
This is how cardiologists read ECGs, so a figure of a build's record can be checked by eye.

The axes are placed in millimetres, so one data unit is exactly 25 mm (1 s) across and 10 mm
(1 mV) up whatever the output format; ``dpi`` only sets how many pixels a millimetre gets in
a PNG. Only matplotlib's object API and the Agg canvas are used (no pyplot state: figures can
be drawn in any thread or process), and saved files are byte-deterministic (no date, fixed SVG
ids), because the dataset card's figures are part of the build's output.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecg_instruct.errors import UserError
from ecg_instruct.plot.view import EcgView

MM_PER_S = 25.0
MM_PER_MV = 10.0
MM_PER_INCH = 25.4
#: Vertical distance between row baselines, in mV (30 mm): leads taller than that overlap the
#: neighbouring row, as on a printed ECG.
ROW_PITCH_MV = 3.0
#: Time left of t = 0 for the calibration pulse (baseline 0.1 s, pulse 0.2 s, baseline 0.1 s).
CAL_S = 0.4
CAL_PULSE = (0.1, 0.3)  # pulse start/end, seconds after -CAL_S
DEFAULT_DPI = 150
#: The 3 x 4 block: rows of four leads, one column per quarter of the record.
LAYOUT: tuple[tuple[str, ...], ...] = (
    ("I", "aVR", "V1", "V4"),
    ("II", "aVL", "V2", "V5"),
    ("III", "aVF", "V3", "V6"),
)
RHYTHM_LEAD = "II"
FORMATS = {".png", ".svg", ".pdf"}

GRID_MINOR = "#f4b6b6"
GRID_MAJOR = "#e06666"
TRACE = "black"
MARK = "#ff9900"
ALERT = "#c00000"

_MARGIN_MM = 6.0
_TITLE_MM = 9.0
_TEXT_LINE_MM = 4.6
_FONT_PT = 7.5


@dataclass(frozen=True)
class Row:
    """One row of the figure: ``leads[c]`` drawn over column ``c``, or one lead over the record."""

    leads: tuple[str, ...]
    rhythm: bool
    baseline_mv: float  # the row's zero line in data coordinates


def rows_for(view: EcgView) -> list[Row]:
    """The 3 x 4 block, the lead II rhythm strip and, for a rejected record, a second strip of
    the lead its reason names (a flat stretch outside that lead's 2.5 s column would otherwise
    not be on the page at all)."""
    strips = [RHYTHM_LEAD]
    bad = view.offending_lead()
    if bad is not None and view.leads[bad] != RHYTHM_LEAD:
        strips.append(view.leads[bad])
    marked = list(dict.fromkeys(view.leads[m.lead] for m in view.marks))
    if len(marked) <= 2:  # a strip per marked lead; not when every lead is (a cut-off file)
        strips += [name for name in marked if name not in strips][: 3 - len(strips)]
    rows = [Row(leads, False, 0.0) for leads in LAYOUT] + [Row((s,), True, 0.0) for s in strips]
    return [Row(r.leads, r.rhythm, -(k + 0.5) * ROW_PITCH_MV) for k, r in enumerate(rows)]


def caption_lines(view: EcgView, width: int) -> list[tuple[str, str]]:
    """(text, colour) lines under the grid: id, rate, report, labels, repairs, reject reason."""
    head = (f"{view.id}   fs {view.fs:g} Hz   {view.duration_s:g} s   25 mm/s   10 mm/mV"
            + (f"   ({view.origin})" if view.origin else ""))
    lines = [(head, "black")]
    if view.reject is not None:
        stage, reason, detail = view.reject
        text = f"REJECTED at {stage}: {reason} — {detail}" if stage else f"REJECTED: {reason} — {detail}"
        lines += [(t, ALERT) for t in textwrap.wrap(text, width)]
    report = " ".join(view.report.split()) or "(no report)"
    lines += [(t, "black") for t in textwrap.wrap(f"report: {report}", width)]
    lines.append((f"labels: {', '.join(view.labels) if view.labels else '-'}", "black"))
    if view.repairs:
        lines += [(t, "#7a4b00") for t in textwrap.wrap(f"signal_repairs: {'; '.join(view.repairs)}",
                                                         width)]
    return lines


@dataclass(frozen=True)
class PaperGeometry:
    """Where the grid sits in the figure (mm) and its data range, for drawing and for tests."""

    width_mm: float
    height_mm: float
    grid_left_mm: float
    grid_bottom_mm: float
    grid_width_mm: float
    grid_height_mm: float
    t_min: float
    t_max: float
    mv_min: float
    mv_max: float


def geometry(view: EcgView, n_rows: int, n_text: int) -> PaperGeometry:
    t_min, t_max = -CAL_S, view.duration_s
    mv_min, mv_max = -n_rows * ROW_PITCH_MV, 0.0
    grid_w = (t_max - t_min) * MM_PER_S
    grid_h = (mv_max - mv_min) * MM_PER_MV
    text_h = n_text * _TEXT_LINE_MM + 2
    width = grid_w + 2 * _MARGIN_MM
    height = _TITLE_MM + grid_h + text_h + _MARGIN_MM
    return PaperGeometry(width, height, _MARGIN_MM, text_h + _MARGIN_MM, grid_w, grid_h,
                         t_min, t_max, mv_min, mv_max)


def draw(view: EcgView, dpi: float = DEFAULT_DPI):
    """The figure (a ``matplotlib.figure.Figure`` on an Agg canvas) and the grid axes.

    Every trace is a ``Line2D`` whose ``gid`` is ``"lead:<name>"`` (a 2.5 s column) or
    ``"rhythm:<name>"`` (a strip), drawn at ``time, mV + row baseline`` in data coordinates;
    lead labels are texts with ``gid`` ``"label:<name>"``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    rows = rows_for(view)
    width_chars = int((view.duration_s + CAL_S) * MM_PER_S / 1.45)  # ~1.45 mm per 7.5 pt char
    captions = caption_lines(view, width_chars)
    geo = geometry(view, len(rows), len(captions))
    fig = Figure(figsize=(geo.width_mm / MM_PER_INCH, geo.height_mm / MM_PER_INCH), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((geo.grid_left_mm / geo.width_mm, geo.grid_bottom_mm / geo.height_mm,
                       geo.grid_width_mm / geo.width_mm, geo.grid_height_mm / geo.height_mm))
    ax.set_xlim(geo.t_min, geo.t_max)
    ax.set_ylim(geo.mv_min, geo.mv_max)
    ax.set_axis_off()
    _draw_grid(ax, geo, LineCollection)

    n = view.signal.shape[1]
    column_s = view.duration_s / 4
    t = np.arange(n) / view.fs
    lead_index = {name: i for i, name in enumerate(view.leads)}
    bad = view.offending_lead()
    for row in rows:
        y0 = row.baseline_mv
        _calibration_pulse(ax, y0)
        for c, name in enumerate(row.leads):
            if row.rhythm:
                start, stop, label_t = 0, n, 0.0
            else:
                start = int(round(c * column_s * view.fs))
                stop = n if c == 3 else int(round((c + 1) * column_s * view.fs)) + 1  # joins the next
                label_t = c * column_s
                if c:  # the column boundary tick
                    ax.plot([label_t, label_t], [y0 - 0.5, y0 + 0.5], color=TRACE, lw=0.9,
                            solid_capstyle="butt")
            i = lead_index[name]
            ax.plot(t[start:stop], view.signal[i, start:stop] + y0, color=TRACE, lw=0.7,
                    gid=f"{'rhythm' if row.rhythm else 'lead'}:{name}", antialiased=True)
            colour = ALERT if bad == i else TRACE
            ax.text(label_t + 0.06, y0 + 0.9, name, fontsize=9, color=colour, fontweight="bold",
                    gid=f"label:{name}", va="bottom", ha="left")
            for mark in view.marks:
                if mark.lead != i:
                    continue
                lo, hi = max(mark.start_s, t[start]), min(mark.end_s, t[stop - 1])
                if hi < lo:
                    continue
                hi = max(hi, lo + 0.04)  # a one-sample NaN run still shows (1 mm)
                ax.add_patch(Rectangle((lo, y0 - 1.4), hi - lo, 2.8, facecolor=MARK, alpha=0.35,
                                       edgecolor=MARK, lw=0.8, gid=f"mark:{name}"))
                ax.text(lo, y0 - 1.4, mark.what, fontsize=6, color=ALERT, va="bottom", ha="left")

    top = 1 - _TITLE_MM / geo.height_mm * 0.35
    title = f"{view.id} — standard 12-lead layout, 3 × 4 + rhythm strip"
    fig.text(_MARGIN_MM / geo.width_mm, top, title, fontsize=9, fontweight="bold", va="top")
    for k, (line, colour) in enumerate(captions):
        y = (geo.grid_bottom_mm - 2 - (k + 0.8) * _TEXT_LINE_MM) / geo.height_mm
        fig.text(_MARGIN_MM / geo.width_mm, y, line, fontsize=_FONT_PT, color=colour, va="bottom",
                 gid=f"caption:{k}")
    return fig, ax


def _draw_grid(ax, geo: PaperGeometry, LineCollection) -> None:  # noqa: N803 (a class)
    """1 mm (0.04 s, 0.1 mV) lines and darker 5 mm (0.2 s, 0.5 mV) lines as two collections."""
    for step_t, step_mv, colour, lw, gid in ((0.04, 0.1, GRID_MINOR, 0.3, "grid:minor"),
                                             (0.2, 0.5, GRID_MAJOR, 0.6, "grid:major")):
        ts = np.arange(round(geo.t_min / step_t), round(geo.t_max / step_t) + 1) * step_t
        vs = np.arange(round(geo.mv_min / step_mv), round(geo.mv_max / step_mv) + 1) * step_mv
        segments = [((x, geo.mv_min), (x, geo.mv_max)) for x in ts]
        segments += [((geo.t_min, y), (geo.t_max, y)) for y in vs]
        ax.add_collection(LineCollection(segments, colors=colour, linewidths=lw, gid=gid,
                                         zorder=0.5))


def _calibration_pulse(ax, y0: float) -> None:
    """1 mV for 0.2 s, left of t = 0: the reader's check of the vertical and horizontal scale."""
    a, b = -CAL_S + CAL_PULSE[0], -CAL_S + CAL_PULSE[1]
    ax.plot([-CAL_S, a, a, b, b, 0.0], [y0, y0, y0 + 1, y0 + 1, y0, y0], color=TRACE, lw=0.9,
            gid="calibration")


def save(fig, path: Path) -> None:
    """Write ``fig`` as PNG, SVG or PDF (by extension) with no date or random ids in the bytes."""
    import matplotlib

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"cannot write a {suffix or 'extensionless'} figure", path=path,
                        fix="name the output .png, .svg or .pdf")
    metadata = {".png": {"Software": None}, ".svg": {"Date": None, "Creator": None},
                ".pdf": {"CreationDate": None, "Creator": None, "Producer": None}}[suffix]
    path.parent.mkdir(parents=True, exist_ok=True)  # `--out figures/ecg.png` as a user expects
    with matplotlib.rc_context({"svg.hashsalt": "ecg-instruct", "svg.fonttype": "path",
                                "pdf.compression": 6}):
        fig.savefig(path, dpi=fig.dpi, metadata=metadata)


def render(view: EcgView, path: Path, dpi: float = DEFAULT_DPI) -> Path:
    """Draw ``view`` in the paper layout and write it to ``path`` (.png/.svg/.pdf)."""
    fig, _ = draw(view, dpi)
    save(fig, path)
    return Path(path)
