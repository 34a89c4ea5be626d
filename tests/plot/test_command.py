"""`ecg-instruct plot` on a built dataset and on damaged raw WFDB records."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from damage import damage_record
from PIL import Image
from typer.testing import CliRunner

from ecg_instruct.cli import app
from ecg_instruct.plot.load import published_ids, raw_view
from ecg_instruct.plot.paper import draw

runner = CliRunner()


def _plot(*args: str):
    return runner.invoke(app, ["plot", *map(str, args)])


def test_one_published_record_to_png_and_svg(built_dataset: Path, tmp_path: Path):
    for name in ("ecg.png", "ecg.svg"):
        result = _plot("--data", built_dataset, "--id", "ptbxl/00001", "--out", tmp_path / name)
        assert result.exit_code == 0, result.output
    width, height = Image.open(tmp_path / "ecg.png").size
    assert width > 1500 and height > 800  # 274 mm wide at 150 dpi
    assert (tmp_path / "ecg.svg").read_bytes().lstrip().startswith(b"<?xml")


def test_a_split_sample_is_one_file_per_record(built_dataset: Path, tmp_path: Path):
    result = _plot("--data", built_dataset, "--split", "test", "--n", "3", "--out", tmp_path / "f",
                   "--dpi", "50")
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "f").iterdir())
    test_ids = published_ids(built_dataset, "test")
    assert len(files) == 3 and {f[:-4] for f in files} <= {i.replace("/", "_") for i in test_ids}


def test_list_and_unknown_id(built_dataset: Path, tmp_path: Path):
    listed = _plot("--data", built_dataset, "--list")
    assert listed.exit_code == 0 and "ptbxl/00001" in listed.output.split()
    result = _plot("--data", built_dataset, "--id", "ptbxl/99999", "--out", tmp_path / "x.png")
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"{built_dataset}: no record 'ptbxl/99999' in this dataset" in line
    assert f"ecg-instruct plot --data {built_dataset} --list" in line
    assert not (tmp_path / "x.png").exists()


@pytest.fixture(scope="module")
def damaged(sample_mirror: Path, tmp_path_factory) -> Path:
    """A copy of the PTB-XL part of the sample mirror with three broken records."""
    mirror = tmp_path_factory.mktemp("damaged")
    shutil.copytree(sample_mirror / "ptb-xl", mirror / "ptb-xl")
    folder = mirror / "ptb-xl" / "records500" / "00000"

    def flat(counts):  # V3 (column 8) stuck from 2 s to 5 s
        counts[1000:2500, 8] = counts[1000, 8]

    def nan(counts):  # V1 (column 6): 0.2 s of missing samples from 6 s
        counts[3000:3100, 6] = -32768

    def clip(counts):  # V4 (column 9) railed at a third of its peak
        counts[:, 9] = counts[:, 9].clip(max=counts[:, 9].max() // 3)

    for name, change in (("00002_hr", flat), ("00003_hr", nan), ("00004_hr", clip)):
        damage_record(folder / name, change)
    dat = folder / "00005_hr.dat"
    dat.write_bytes(dat.read_bytes()[: 2 * 12 * 1500])  # cut after 3 s
    return mirror


@pytest.mark.parametrize("record_id, reason, lead, stretch", [
    ("ptbxl/00002", "flat_lead", "V3", (2.0, 4.0)),
    ("ptbxl/00003", "nan_values", "V1", (6.0, 6.2)),
    ("ptbxl/00004", "clipping", "V4", None),
])
def test_a_rejected_raw_record_shows_its_reason_and_the_stretch(damaged, record_id, reason, lead,
                                                                stretch):
    view = raw_view(damaged, record_id)
    assert view.reject is not None and view.reject[1] == reason
    assert view.leads[view.offending_lead()] == lead
    marks = [m for m in view.marks if view.leads[m.lead] == lead]
    assert marks
    if stretch is not None:
        assert any(m.start_s == pytest.approx(stretch[0]) and m.end_s == pytest.approx(stretch[1])
                   for m in marks), marks
    fig, ax = draw(view, 40)
    assert f"rhythm:{lead}" in {line.get_gid() for line in ax.lines}  # its own full-length strip
    assert any(p.get_gid() == f"mark:{lead}" for p in ax.patches)
    caption = " ".join(t.get_text() for t in fig.texts)
    assert f"REJECTED at signals (re-checked): {reason} — {lead}:" in caption


def test_a_truncated_record_shows_what_is_left_and_marks_the_missing_end(damaged):
    view = raw_view(damaged, "ptbxl/00005")
    assert view.reject[1] == "truncated_dat" and "holds 1500 samples per signal" in view.reject[2]
    assert np.isfinite(view.signal[:, :1500]).all() and np.isnan(view.signal[:, 1500:]).all()
    assert len(view.marks) == 12 and all(m.start_s == 3.0 and m.end_s == 10.0 for m in view.marks)
    _, ax = draw(view, 40)
    assert [line.get_gid() for line in ax.lines].count("rhythm:II") == 1  # no strip per lead


def test_a_clean_raw_record_has_no_marks(damaged):
    view = raw_view(damaged, "ptbxl/00001")
    assert view.reject is None and view.marks == []
    assert view.report and "raw WFDB ptb-xl/records500/00000/00001_hr" in view.origin


def test_raw_cli_writes_the_figure_and_names_a_missing_id(damaged, tmp_path: Path):
    result = _plot("--raw-dir", damaged, "--id", "ptbxl/00003", "--out", tmp_path / "r.png",
                   "--dpi", "40")
    assert result.exit_code == 0, result.output
    pixels = np.asarray(Image.open(tmp_path / "r.png").convert("RGB")).astype(int)
    orange = (np.abs(pixels - [255, 214, 153]).sum(axis=2) < 40).sum()  # the shaded NaN run
    assert orange > 20
    missing = _plot("--raw-dir", damaged, "--id", "ptbxl/77777", "--out", tmp_path / "m.png")
    assert missing.exit_code == 2
    assert "no record 'ptbxl/77777' in this mirror's metadata" in missing.output
