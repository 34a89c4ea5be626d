"""No sample command deletes a folder it did not write (ecg_instruct/sample/folder.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ecg_instruct.cli import SAMPLE_TEXT, app, ensure_sample_mirror
from ecg_instruct.sample.folder import WRITING_MARKER, claim_sample_folder, is_sample_mirror

REPO_ROOT = Path(__file__).resolve().parents[2]


def _notes(folder: Path) -> Path:
    (folder / "notes").mkdir(parents=True)
    note = folder / "notes" / "a.txt"
    note.write_text("x\n")
    return note


def test_sample_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    """The issue's repro: `mkdir -p v/notes; echo x > v/notes/a.txt; ecg-instruct sample --out v`."""
    note = _notes(tmp_path / "v")
    result = subprocess.run([sys.executable, "-m", "ecg_instruct.cli", "sample", "--out", "v"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=os.environ | {"PYTHONPATH": str(REPO_ROOT), "COLUMNS": "400"})
    assert result.returncode == 2
    assert note.read_text() == "x\n"
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["notes"]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "v: is not empty and is not a sample mirror" in lines[0]
    assert "nothing was deleted" in lines[0] and "--out" in lines[0]


@pytest.mark.parametrize("args", [
    ["sample", "--out", "{v}", "--records", "30"],
    ["sample", "--out", "{v}", "--force"],
    ["build", "--raw-dir", "{empty}", "--out", "{o}", "--sample-fallback", "{v}", "--no-progress"],
    ["templates", "check", "--sample", "{v}"],
    ["templates", "show", "report/plain-01", "--sample", "{v}"],
], ids=["sample-records", "sample-force", "sample-fallback", "templates-check", "templates-show"])
def test_every_sample_writer_refuses_a_foreign_folder(tmp_path: Path, args: list[str]) -> None:
    note = _notes(tmp_path / "v")
    (tmp_path / "empty").mkdir()
    names = {"v": tmp_path / "v", "empty": tmp_path / "empty", "o": tmp_path / "o"}
    result = CliRunner().invoke(app, [a.format(**names) for a in args], env={"COLUMNS": "400"})
    assert result.exit_code == 2, result.output
    assert note.is_file()
    assert "is not empty and is not a sample mirror" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_an_interrupted_sample_mirror_is_rewritten(tmp_path: Path) -> None:
    """A folder holding the marker written before the first file is ours: rewritten, not refused."""
    folder = tmp_path / "s"
    claim_sample_folder(folder)
    (folder / "ptb-xl").mkdir()
    (folder / "ptb-xl" / "half.dat").write_bytes(b"\0" * 10)
    assert is_sample_mirror(folder)
    claim_sample_folder(folder)
    assert sorted(p.name for p in folder.iterdir()) == [WRITING_MARKER]


def test_empty_and_missing_folders_are_claimed(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        claim_sample_folder(folder)
        assert is_sample_mirror(folder)


def test_a_file_is_refused(tmp_path: Path) -> None:
    from ecg_instruct.errors import UserError

    (tmp_path / "f").write_text("keep")
    with pytest.raises(UserError, match="is a file"):
        claim_sample_folder(tmp_path / "f")
    assert (tmp_path / "f").read_text() == "keep"


def test_without_h5py_the_advice_keeps_its_brackets(tmp_path: Path, monkeypatch, capsys) -> None:
    from ecg_instruct.cli import _write_code15_part

    monkeypatch.setitem(sys.modules, "h5py", None)
    _write_code15_part(tmp_path)
    err = " ".join(capsys.readouterr().err.split())
    assert 'pip install "ecg-instruct[code15]"' in err
    assert not (tmp_path / "code-15").exists()


def test_a_complete_mirror_written_without_h5py_gets_code15_later(tmp_path: Path, capsys) -> None:
    """Marked complete without its code-15/ part (h5py was missing): installing h5py is enough."""
    pytest.importorskip("h5py")
    folder = tmp_path / "s"
    (folder / "ptb-xl").mkdir(parents=True)
    (folder / ".complete").write_text(SAMPLE_TEXT)
    ensure_sample_mirror(folder)
    assert (folder / "code-15" / "exams.csv").is_file()
    assert not (folder / ".code-15.tmp").exists()
    assert "adding the code-15/ folder" in capsys.readouterr().err


def test_sample_records_names_only_the_folders_it_wrote(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sample", "--out", str(tmp_path / "l"), "--records", "30"],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "(ecg-qa/, mimic-iv-ecg/, ptb-xl/)" in said
    assert "challenge-2021" not in said and "code-15" not in said
    assert sorted(p.name for p in (tmp_path / "l").iterdir() if p.is_dir()) == \
        ["ecg-qa", "mimic-iv-ecg", "ptb-xl"]


def test_templates_check_says_where_it_writes_its_sample(tmp_path: Path, monkeypatch, capsys) -> None:
    import ecg_instruct.cli as cli

    written = []

    def fake_mirror(folder: Path, option: str) -> Path:  # the 26 MB mirror itself is not the point
        written.append((folder, option))
        folder.mkdir(exist_ok=True)
        (folder / ".complete").write_text(SAMPLE_TEXT)
        return folder

    monkeypatch.setattr(cli, "ensure_sample_mirror", fake_mirror)
    cli._templates_sample(tmp_path / "s")
    cli._templates_sample(tmp_path / "s")  # there now: nothing to say
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("Writing the synthetic sample mirror to") == 1
    assert f"{tmp_path / 's'}/" in err and "--sample" in err
    assert written == [(tmp_path / "s", "--sample")] * 2


def test_a_sample_fallback_without_code15_skips_it_naming_the_extra(tmp_path: Path,
                                                                    monkeypatch) -> None:
    """Without h5py the sample mirror has no code-15/: a 4-source build skips code15 saying
    which extra to install (before: `download code15`, which a sample user cannot act on)."""
    monkeypatch.setitem(sys.modules, "h5py", None)  # and so no code-15/ top-up either
    sample = tmp_path / "sample"
    for part in ("ptb-xl", "mimic-iv-ecg", "challenge-2021"):
        (sample / part).mkdir(parents=True)
    (sample / ".complete").write_text(SAMPLE_TEXT)
    (tmp_path / "raw").mkdir()
    result = CliRunner().invoke(app, ["build", "--recipe", "meit-multisource", "--raw-dir",
                                      str(tmp_path / "raw"), "--sample-fallback", str(sample),
                                      "--out", str(tmp_path / "o"), "--no-progress"],
                                env={"COLUMNS": "400"})
    said = " ".join(result.output.split())
    assert ('Skipping code15: the sample mirror has no code-15/ (CODE-15% needs h5py: '
            'pip install "ecg-instruct[code15]")') in said
    assert "download code15" not in said
    assert not (sample / "code-15").exists()
