"""A normal (non-editable) install works from any directory.

The templates and recipes are edited in the checkout's top-level `templates/` and `pipelines/`;
the wheel must carry them as package data (setup.py maps them to `ecg_instruct/templates/` and
`ecg_instruct/recipes/`). An editable install or a run from the checkout hides their absence, so
this builds the real wheel, installs it into a fresh virtual environment and runs the installed
`ecg-instruct` from a folder outside the checkout, then from the checkout with a recipe path.

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
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO_ROOT / name, src / name)
    for folder in ("ecg_instruct", "templates", "pipelines"):
        shutil.copytree(REPO_ROOT / folder, src / folder,
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
    names = set(zipfile.ZipFile(wheel).namelist())
    # Every top-level template and recipe, and nothing else, ships under the package.
    shipped_templates = {n.removeprefix("ecg_instruct/templates/") for n in names
                         if n.startswith("ecg_instruct/templates/")}
    assert shipped_templates == {p.relative_to(REPO_ROOT / "templates").as_posix()
                                 for p in (REPO_ROOT / "templates").rglob("*.j2")}
    assert "report/plain-01.j2" in shipped_templates and "card.md.j2" in shipped_templates
    assert {n for n in names if n.startswith("ecg_instruct/recipes/")} == {
        f"ecg_instruct/recipes/{p.name}" for p in (REPO_ROOT / "pipelines").glob("*.yaml")}
    assert "ecg_instruct/recipes/meit.yaml" in names
    assert {f"ecg_instruct/data/{p.name}" for p in (REPO_ROOT / "ecg_instruct" / "data").iterdir()
            if p.is_file()} <= names  # the package's tables (YAML and the Challenge CSVs)

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

    # Outside the checkout there is no pipelines/ folder: one line naming the bundled name.
    missing = run("build", "--raw-dir", str(mirror), "--out", "x", "--recipe", "pipelines/meit.yaml")
    assert missing.returncode == 2
    assert "pass --recipe meit (the bundled recipe)" in missing.stderr
    assert "Traceback" not in missing.stderr

    # From the checkout, the README's recipe path works with the installed command too.
    in_checkout = subprocess.run(
        [str(venv / "bin" / "ecg-instruct"), "build", "--raw-dir", str(mirror), "--out",
         str(tmp_path / "from-checkout"), "--recipe", "pipelines/meit.yaml", "--workers", "1",
         "--no-progress"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert in_checkout.returncode == 0, in_checkout.stderr[-2000:]
    assert list((tmp_path / "from-checkout" / "data").glob("*/train-*.parquet"))


def test_checkout_reads_the_top_level_folders(tmp_path: Path) -> None:
    """Run from the checkout (PYTHONPATH or an editable install), the templates and recipes are
    the top-level folders, and `--recipe pipelines/meit.yaml` names the same recipe as `meit`."""
    code = ("from dataclasses import replace; "
            "from ecg_instruct.bundled import TEMPLATES_DIR, RECIPES_DIR; "
            "from ecg_instruct.build.recipe import load_recipe; "
            "print(TEMPLATES_DIR); print(RECIPES_DIR); "
            "print(replace(load_recipe('pipelines/meit.yaml'), path='') == "
            "replace(load_recipe('meit'), path=''))")
    env = os.environ | {"PYTHONPATH": str(REPO_ROOT)}
    shown = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, check=True)
    templates, recipes, same = shown.stdout.split("\n")[:3]
    assert Path(templates) == REPO_ROOT / "templates"
    assert Path(recipes) == REPO_ROOT / "pipelines"
    assert same == "True"
    assert not (REPO_ROOT / "ecg_instruct" / "templates").exists()  # one place to edit
    assert not (REPO_ROOT / "ecg_instruct" / "recipes").exists()
