"""Configuration-level bad input: one line naming the file and the fix, exit 2, no traceback, and
nothing written (no output folder, no work folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from buildkit import REPO_ROOT, copy_mirror, quick_recipe, sample_mirror
from typer.testing import CliRunner

from badinput.corpus import (
    CONFIG_FAULTS,
    MIMIC_MEASUREMENTS,
    MIMIC_RECORDS,
    PTBXL_CSV,
    RECIPE_VALUE_FAULTS,
    read_rows,
    write_rows,
)
from ecg_instruct.cli import app

TEMPLATE_HEAD = "{#---\nid: report/bad\ntask: report\n---#}\n"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    base = tmp_path_factory.mktemp("config-faults")
    return copy_mirror(sample_mirror(tmp_path_factory), base / "raw")


def _drop_column(path: Path, column: str, rename: str | None = None) -> None:
    columns, rows = read_rows(path)
    for row in rows:
        value = row.pop(column)
        if rename:
            row[rename] = value
    columns = [rename if c == column and rename else c for c in columns if c != column or rename]
    write_rows(path, columns, rows)


def _template(folder: Path, name: str, body: str | bytes, head: bool = True) -> list[str]:
    folder = folder / "templates" / "report"
    folder.mkdir(parents=True)
    data = body if isinstance(body, bytes) else ((TEMPLATE_HEAD if head else "") + body).encode()
    (folder / name).write_bytes(data)
    return ["--templates", str(folder.parent)]


def _recipe(folder: Path, text: str | bytes) -> Path:
    path = folder / "recipe.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _apply(name: str, raw: Path, work: Path) -> tuple[list[str], Path]:
    """Damage the copy `raw` / write a bad file under `work`; extra CLI args and the --out."""
    recipe = quick_recipe(work / "recipe")
    out = work / "out" / "meit"
    args: list[str] = []
    good = recipe.read_text(encoding="utf-8")
    if name == "CSV column renamed":
        _drop_column(raw / PTBXL_CSV, "scp_codes", rename="scp_code")
    elif name == "CSV column missing":
        _drop_column(raw / MIMIC_RECORDS, "path")
    elif name == "CSV without report columns":
        columns, _ = read_rows(raw / MIMIC_MEASUREMENTS)
        for column in [c for c in columns if c.startswith("report_")]:
            _drop_column(raw / MIMIC_MEASUREMENTS, column)
    elif name == "metadata CSV missing":
        (raw / MIMIC_RECORDS).unlink()
    elif name == "metadata CSV empty":
        (raw / PTBXL_CSV).write_bytes(b"")
    elif name == "recipe unknown key":
        recipe = _recipe(work, good.replace("shard_size:", "shard_sise:"))
    elif name == "recipe wrong type":
        recipe = _recipe(work, good.replace("  fs: 100", "  fs: fast"))
    elif name == "recipe bad value":
        recipe = _recipe(work, good.replace("dtype: float32", "dtype: float64"))
    elif name == "recipe not YAML":
        recipe = _recipe(work, "name: x\nsignals: {fs: [100\n")
    elif name == "recipe not a mapping":
        recipe = _recipe(work, "- name: x\n")
    elif name == "recipe not UTF-8":
        recipe = _recipe(work, good.encode() + b"\ndescription: d\xe9j\xe0 vu\n")
    elif name == "recipe unknown source":
        recipe = quick_recipe(work / "unknown-source", sources__enabled=["ptbxl", "ecgdb"])
    elif name in RECIPE_VALUE_FAULTS:
        recipe = quick_recipe(work / "values", **RECIPE_VALUE_FAULTS[name])
    elif name == "template undefined variable":
        args = _template(work, "typo.j2", "Report for {{ ecg }} aged {{ patient_age }}.")
    elif name == "template fails on a missing field":
        args = _template(work, "arith.j2", "{{ ecg }} is {{ age + 1 }} minus one years old.")
    elif name == "template without the ECG placeholder":
        args = _template(work, "noecg.j2", "Write the report.")
    elif name == "template escaping the sandbox":
        args = _template(work, "escape.j2",
                         "{{ ecg }} {{ ''.__class__.__mro__[1].__subclasses__() }}")
    elif name == "template looping for minutes":
        args = _template(work, "loop.j2", "{{ ecg }}{% for i in range(100000) %}"
                         "{% for j in range(100000) %}{% endfor %}{% endfor %}")
    elif name == "template emitting megabytes":
        args = _template(work, "long.j2",
                         "{{ ecg }}{% for i in range(100000) %}{{ report }}{% endfor %}")
    elif name == "template multiplying a string to 50 MB":
        args = _template(work, "times.j2", "{{ ecg }}{{ 'x' * 50000000 }}")
    elif name == "template syntax error":
        args = _template(work, "syntax.j2", "{{ ecg }} {% if %}")
    elif name == "template without front matter":
        args = _template(work, "nofront.j2", "{{ ecg }}", head=False)
    elif name == "template not UTF-8":
        args = _template(work, "latin.j2", TEMPLATE_HEAD.encode() + b"{{ ecg }} \xe9\xe0")
    elif name == "--out is a folder of other files":
        out = work / "notes"
        out.mkdir()
        (out / "thesis.tex").write_text("three years of work")
    elif name == "--out inside the raw mirror":
        out = raw / "ptb-xl" / "out"
    else:  # pragma: no cover
        raise AssertionError(name)
    return ["build", "--raw-dir", str(raw), "--out", str(out), "--recipe", str(recipe),
            "--workers", "1", "--no-progress", *args], out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("fault", CONFIG_FAULTS, ids=[f.name for f in CONFIG_FAULTS])
def test_config_fault_is_one_line_naming_the_file_and_writes_nothing(fault, pristine, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(pristine, raw)
    args, out = _apply(fault.name, raw, tmp_path)
    before_out = _snapshot(out) if out.is_dir() else None
    before_raw = _snapshot(raw)
    result = CliRunner().invoke(app, args)
    text = result.output.strip()
    assert result.exit_code == 2, text
    assert "Traceback" not in text and result.exception is None or isinstance(
        result.exception, SystemExit)
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("error: ")
    assert fault.names in lines[0], f"{fault.name}: the error does not name {fault.names}: {text}"
    assert " — " in lines[0], f"{fault.name}: no fix given: {text}"
    # Nothing written: no work folder, no staging folder, the output (if any) untouched.
    assert not out.with_name(out.name + ".work").exists()
    assert not out.with_name(out.name + ".tmp").exists()
    assert (_snapshot(out) if out.is_dir() else None) == before_out
    assert _snapshot(raw) == before_raw


def test_corpus_cases_are_documented(pristine, tmp_path):
    text = (REPO_ROOT / "docs" / "robustness.md").read_text(encoding="utf-8")
    from badinput.corpus import make_record_faults

    # the names the corpus really generates (~1 s on a copy of the 20 + 20 record mirror)
    record_names = [f.name for f in make_record_faults(copy_mirror(pristine, tmp_path / "raw"))]
    assert len(record_names) > 15
    for name in [*record_names, *(f.name for f in CONFIG_FAULTS)]:
        assert f"| {name} |" in text, f"docs/robustness.md does not list {name!r}"


def test_no_record_surviving_names_the_reasons_in_its_one_line(pristine, tmp_path):
    """The CLI prints no summary table on an error, so the reasons must be in the line itself."""
    recipe = quick_recipe(tmp_path / "recipe", signals__duration_s=20)  # every record is 10 s
    out = tmp_path / "out" / "meit"
    result = CliRunner().invoke(app, ["build", "--raw-dir", str(pristine), "--out", str(out),
                                      "--recipe", str(recipe), "--workers", "1", "--no-progress"])
    # the first build after installing also says it compiled the kernels: not part of the error
    lines = [line for line in result.output.strip().splitlines()
             if not line.startswith("compiled the signal kernels")]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "no record survived the build (rejected: wrong_length " in lines[0], lines[0]
    assert str(out.with_name("meit.tmp") / "rejects.parquet") in lines[0]
    assert (out.with_name("meit.tmp") / "rejects.parquet").is_file()
