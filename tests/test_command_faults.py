"""Every command ends a fault of the machine or of its input in one line, never a traceback
(ecg_instruct/command_errors.py, `_guarded` in ecg_instruct/cli.py).

Faults: an unwritable `--out` (a parent that is a file; a folder the process may not write:
read-only permissions, or /sys when the tests run as root, who ignores permissions), a
truncated and a corrupted Parquet file in the dataset, and a missing optional package
(simulated in a subprocess by a `sitecustomize` that sets `sys.modules[name] = None`, which makes
`import name` raise ImportError exactly as an absent package does).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ecg_instruct.cli import app

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = ["--d-model", "32", "--n-layer", "1", "--n-head", "2", "--vocab-size", "300",
              "--batch-size", "4", "--eval-interval", "2", "--save-interval", "2", "--threads", "1"]
EVAL_QUICK = ["--limit", "2", "--bootstrap", "10", "--meteor", "nltk", "--threads", "1",
              "--no-progress"]


def _invoke(args: list[str]):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})


def _one_line(result, exit_codes=(1, 2)) -> str:
    """The command's error: exactly one line on stderr, no traceback, a non-zero status."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in exit_codes, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output and "internal error" not in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def run(built_dataset: Path, tmp_path_factory) -> Path:
    """A two-step run on the sample dataset: what `evaluate` needs to get to its output."""
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("fault-run") / "run"
    result = _invoke(["train-baseline", "--data", built_dataset, "--out", out,
                      "--max-steps", "2", "--no-progress", *TINY_MODEL])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def predictions(run: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fault-eval")
    result = _invoke(["evaluate", "--run", run, "--out-dir", folder, *EVAL_QUICK])
    assert result.exit_code == 0, result.output
    return folder / "predictions.parquet"


def _unwritable(kind: str, tmp_path: Path) -> Path:
    """A folder-to-be that cannot be written: its parent is a file, or may not be written."""
    if kind == "parent-is-a-file":
        (tmp_path / "afile").write_text("x")
        return tmp_path / "afile" / "out"
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        return locked / "out"
    try:  # root writes through permissions; sysfs refuses new entries even to root
        os.mkdir("/sys/ecg-instruct-probe")
    except OSError:
        return Path("/sys/ecg-instruct-out")
    os.rmdir("/sys/ecg-instruct-probe")
    pytest.skip("no folder here that refuses writes")


COMMANDS_WITH_OUT = {
    "export": lambda d, r, p, o: ["export", "--format", "llava", "--data", d, "--out", o],
    "plot": lambda d, r, p, o: ["plot", "--data", d, "--id", "ptbxl/00001", "--out", o / "ecg.png"],
    "train-baseline": lambda d, r, p, o: ["train-baseline", "--data", d, "--out", o,
                                          "--max-steps", "1", "--no-progress", *TINY_MODEL],
    "evaluate": lambda d, r, p, o: ["evaluate", "--run", r, "--out-dir", o, *EVAL_QUICK],
    "score": lambda d, r, p, o: ["score", "--predictions", p, "--out", o / "m.json",
                                 "--bootstrap", "10", "--meteor", "nltk"],
}


@pytest.mark.parametrize("kind", ["parent-is-a-file", "not-writable"])
@pytest.mark.parametrize("command", sorted(COMMANDS_WITH_OUT))
def test_unwritable_out(command: str, kind: str, built_dataset: Path, run: Path,
                        predictions: Path, tmp_path: Path) -> None:
    out = _unwritable(kind, tmp_path)
    line = _one_line(_invoke(COMMANDS_WITH_OUT[command](built_dataset, run, predictions, out)))
    assert line.startswith("error: ")
    assert str(out.parent) in line  # names the path it could not write
    assert ("Not a directory" in line) if kind == "parent-is-a-file" else \
        ("Permission denied" in line or "not permitted" in line or "Read-only" in line)


def _damage(dataset: Path, dest: Path, how: str) -> Path:
    """A copy of the dataset with every PTB-XL Parquet file truncated or corrupted."""
    shutil.copytree(dataset, dest)
    for path in sorted((dest / "data" / "ptbxl").glob("*.parquet")):
        data = bytearray(path.read_bytes())
        if how == "truncated":
            data = data[: len(data) // 2]
        else:  # 2 kB of garbage in the middle; the footer (and its magic bytes) intact
            middle = len(data) // 3
            data[middle:middle + 2048] = b"\x55" * 2048
        path.write_bytes(bytes(data))
    return dest


DATASET_READERS = {
    "export": lambda d, r, t: ["export", "--format", "llava", "--data", d, "--out", t / "ex"],
    "plot": lambda d, r, t: ["plot", "--data", d, "--id", "ptbxl/00001", "--out", t / "e.png"],
    "train-baseline": lambda d, r, t: ["train-baseline", "--data", d, "--out", t / "run",
                                       "--max-steps", "1", "--no-progress", *TINY_MODEL],
    "evaluate": lambda d, r, t: ["evaluate", "--run", r, "--data", d, "--out-dir", t / "ev",
                                 *EVAL_QUICK],
}


@pytest.mark.parametrize("how", ["truncated", "corrupted"])
@pytest.mark.parametrize("command", sorted(DATASET_READERS))
def test_damaged_dataset_file(command: str, how: str, built_dataset: Path, run: Path,
                              tmp_path: Path) -> None:
    # Not named `meit`: offline (HF_DATASETS_OFFLINE=1, as in these tests) `datasets` serves the
    # cached Arrow copy of an earlier dataset of the same folder name without reading the files.
    damaged = _damage(built_dataset, tmp_path / "damaged", how)
    line = _one_line(_invoke(DATASET_READERS[command](damaged, run, tmp_path)), exit_codes=(2,))
    assert f"error: {damaged / 'data' / 'ptbxl'}/" in line
    assert "not a readable Parquet file" in line and "rebuild the dataset" in line


MISSING = {
    "evaluate-torch": ("torch", ["evaluate", "--run", "{run}", *EVAL_QUICK], "train"),
    "train-baseline-torch": ("torch", ["train-baseline", "--data", "{data}", "--out", "{tmp}/r"],
                             "train"),
    "score-nltk": ("nltk", ["score", "--predictions", "{predictions}", "--meteor", "nltk"],
                   "train"),
    "sample-h5py": ("h5py", None, "code15"),
}


@pytest.mark.parametrize("case", sorted(MISSING))
def test_missing_optional_package(case: str, built_dataset: Path, run: Path, predictions: Path,
                                  tmp_path: Path) -> None:
    module, args, extra = MISSING[case]
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(f"import sys\nsys.modules[{module!r}] = None\n")
    env = os.environ | {"PYTHONPATH": f"{hide}{os.pathsep}{REPO_ROOT}", "COLUMNS": "400"}
    if args is None:  # `sample` goes on without code-15/ and says what to install
        code = ("from ecg_instruct.cli import _write_code15_part; from pathlib import Path; "
                f"_write_code15_part(Path({str(tmp_path)!r}))")
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    else:
        names = {"run": run, "data": built_dataset, "tmp": tmp_path, "predictions": predictions}
        result = subprocess.run([sys.executable, "-m", "ecg_instruct.cli",
                                 *(a.format(**names) for a in args)],
                                env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"ecg-instruct[{extra}]" in lines[0]  # the brackets survive
