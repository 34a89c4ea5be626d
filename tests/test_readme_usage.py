"""Every line of the README's "Use it" block works as written after `make dataset`, on a machine
without PhysioNet data (a new user's first hour).

A fresh folder gets what `make dataset` does there (the Makefile's own `dataset` line: a build
from `data/raw`, which is empty, falling back to the synthetic sample mirror it writes to
`data/sample/`), then every README line runs in order in that folder, exactly as written, as
the installed command would (`python -m ecg_instruct.cli` with this checkout on PYTHONPATH).
Only the network `download` lines are skipped: they have their own local-server tests
(tests/download/). The Python block runs too.

Cost: the README lines are chosen to be cheap (small step counts, a small learnable mirror);
the whole module takes ~2-3 min of one core.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _block(markdown: str, heading: str, language: str) -> str:
    section = markdown.split(f"\n{heading}\n", 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.DOTALL).group(1)


def readme_lines() -> list[str]:
    """The commands of the "Use it" block, comments removed."""
    text = _block((REPO_ROOT / "README.md").read_text(encoding="utf-8"), "## Use it", "bash")
    return [line.split("  #")[0].strip() for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def make_dataset_args() -> list[str]:
    """The arguments of the Makefile's `dataset` line, its variables at their defaults."""
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    values = dict(re.findall(r"^(\w+) \?= (\S+)$", makefile, re.MULTILINE))
    line = re.search(r"^dataset:.*\n\t\$\(CLI\) (.*)$", makefile, re.MULTILINE).group(1)
    return shlex.split(re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], line))


COMMANDS = ["build", "sample", "templates", "export", "train-baseline", "evaluate", "plot",
            "score", "download"]


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(REPO_ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ecg_instruct.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh folder after `make dataset` (no data/raw: the sample mirror)."""
    folder = tmp_path_factory.mktemp("fresh-clone")
    made = _cli(make_dataset_args(), folder)
    assert made.returncode == 0, made.stderr[-3000:]
    assert "synthetic sample mirror in data/sample/" in " ".join(made.stderr.split())
    return folder


LINES = readme_lines()


def test_the_block_is_what_this_test_runs() -> None:
    assert LINES[0].startswith("ecg-instruct download")
    assert all(line.startswith("ecg-instruct ") for line in LINES)
    assert "ecg-instruct build" in LINES  # the bare build, from the default data/raw


@pytest.mark.slow
@pytest.mark.parametrize("line", LINES, ids=[f"{i:02d}" for i in range(len(LINES))])
def test_readme_line_runs_as_written(clone: Path, line: str) -> None:
    args = shlex.split(line)[1:]
    if args[0] == "download":
        pytest.skip("network: tests/download/ runs it against a local PhysioNet server")
    if args[0] == "<command>":  # `ecg-instruct <command> --help`: every command
        for command in COMMANDS:
            shown = _cli([command, *args[1:]], clone)
            assert shown.returncode == 0 and "Usage" in shown.stdout, (command, shown.stderr)
        return
    result = _cli(args, clone)
    assert result.returncode == 0, f"{line}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
    said = " ".join(result.stderr.split())
    if args[0] == "build" and "--raw-dir" not in args:
        # data/raw holds no mirror: the sample mirror make dataset used, said in one line
        assert "reading the synthetic sample mirror data/sample/ that `make dataset` built " \
               "from" in said


@pytest.mark.slow
def test_readme_python_block(clone: Path) -> None:
    code = _block((REPO_ROOT / "README.md").read_text(encoding="utf-8"), "## Use it", "python")
    last = code.strip().splitlines()[-1]
    expression = last.split("#")[0].strip()
    expected = re.search(r"\(\d+, \d+\)", last.split("#")[1]).group(0)  # (12, 5000)
    program = "\n".join(code.strip().splitlines()[:-1] + [f"print({expression})"])
    env = os.environ | {"PYTHONPATH": str(REPO_ROOT)}
    shown = subprocess.run([sys.executable, "-c", program], cwd=clone, env=env,
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.strip().splitlines()[-1] == expected
