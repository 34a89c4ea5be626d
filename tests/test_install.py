"""A normal (non-editable) install works from any directory.

The wheel must carry the templates and recipes as package data; an editable install or a run
from the checkout hides their absence, so this builds the real wheel, installs it into a fresh
virtual environment and runs the installed `ecg-instruct` from a folder outside the checkout.

Cost: ~20 s on 2 cores (wheel ~2 s, venv + install ~1 s, the build ~5 s plus ~12 s of numba
compilation, which a fresh install pays once).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from buildkit import REPO_ROOT, sample_mirror


def _build_wheel(dest: Path) -> Path:
    """Build the wheel from a copy of the sources (building in the checkout would leave build/)."""
    src = dest / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, src / name)
    shutil.copytree(REPO_ROOT / "ecg_instruct", src / "ecg_instruct",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", "-w", str(dest / "dist"), str(src)],
                   check=True, capture_output=True, text=True)
    (wheel,) = (dest / "dist").glob("ecg_instruct-*.whl")
    return wheel


def _fresh_venv(dest: Path, wheel: Path) -> Path:
    """A new venv holding only the wheel; the dependencies come from this interpreter's
    site-packages through a plain path line (a .pth line does not run the editable install's
    finder, so the checkout stays invisible)."""
    venv = dest / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python*/site-packages")
    (site / "base-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--ignore-installed", str(wheel)], check=True, capture_output=True, text=True)
    return venv


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="venv layout of POSIX systems")
def test_wheel_install_builds_from_any_directory(tmp_path: Path, tmp_path_factory) -> None:
    wheel = _build_wheel(tmp_path / "wheel")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ecg_instruct/recipes/meit.yaml" in names
    assert "ecg_instruct/templates/card.md.j2" in names
    assert "ecg_instruct/templates/report/plain-01.j2" in names

    venv = _fresh_venv(tmp_path / "env", wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"COLUMNS": "400"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "ecg-instruct"), *args], cwd=elsewhere,
                              env=env, capture_output=True, text=True, timeout=300)

    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import ecg_instruct; print(ecg_instruct.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the wheel, not the checkout

    mirror = sample_mirror(tmp_path_factory)
    built = run("build", "--raw-dir", str(mirror), "--out", "meit", "--workers", "1",
                "--no-progress")  # default recipe `meit`, found by name
    assert built.returncode == 0, built.stderr[-2000:]
    assert (elsewhere / "meit" / "README.md").is_file()
    assert list((elsewhere / "meit" / "data").glob("*/train-*.parquet"))

    # A user's template folder still overrides a bundled id.
    user = tmp_path / "tpl" / "report"
    user.mkdir(parents=True)
    (user / "plain-01.j2").write_text("{#---\nid: report/plain-01\ntask: report\nrequires: [report]\n"
                                      "---#}\n{{ ecg }}\nDescribe this ECG.\n", encoding="utf-8")
    listed = run("templates", "list", "--templates", str(tmp_path / "tpl"))
    assert listed.returncode == 0, listed.stderr
    assert str(user / "plain-01.j2") in listed.stdout.replace("\n", "")

    # The old in-checkout path is not there: one line naming the bundled name instead.
    missing = run("build", "--raw-dir", str(mirror), "--out", "x", "--recipe", "pipelines/meit.yaml")
    assert missing.returncode == 2
    assert "pass --recipe meit (the bundled recipe)" in missing.stderr
    assert "Traceback" not in missing.stderr
