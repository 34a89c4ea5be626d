"""Packaging that pyproject.toml cannot say: the checkout's top-level `templates/` and
`pipelines/` folders (the one place they are edited) ship inside the wheel as the data packages
`ecg_instruct.templates` (one sub-package per task folder) and `ecg_instruct.recipes`, so an
installed `ecg-instruct` finds them from any directory (ecg_instruct/bundled.py). Everything else
is in pyproject.toml."""

from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).resolve().parent
TASK_FOLDERS = sorted(p.name for p in (HERE / "templates").iterdir() if p.is_dir())

setup(
    packages=[*find_namespace_packages(include=["ecg_instruct", "ecg_instruct.*"],
                                       exclude=["*__pycache__*"]),
              "ecg_instruct.templates", *(f"ecg_instruct.templates.{t}" for t in TASK_FOLDERS),
              "ecg_instruct.recipes"],
    package_dir={"ecg_instruct.templates": "templates", "ecg_instruct.recipes": "pipelines"},
    package_data={"ecg_instruct.data": ["*.yaml", "*.csv"], "ecg_instruct.recipes": ["*.yaml"],
                  "ecg_instruct.templates": ["*.j2"],
                  **{f"ecg_instruct.templates.{t}": ["*.j2"] for t in TASK_FOLDERS}},
)
