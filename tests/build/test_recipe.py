"""Recipes are validated completely, with one-line errors naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecg_instruct.build.recipe import BUNDLED_RECIPES, load_recipe
from ecg_instruct.errors import UserError

PIPELINES = BUNDLED_RECIPES


@pytest.mark.parametrize("name", ["meit.yaml", "meit-100hz.yaml"])
def test_shipped_recipes_load(name: str) -> None:
    recipe = load_recipe(PIPELINES / name)
    assert recipe.signals.n_samples == (5000 if name == "meit.yaml" else 1000)
    assert recipe.sources.enabled == ["ptbxl", "mimic"]


def test_fingerprint_ignores_location_but_not_content(tmp_path: Path) -> None:
    text = (PIPELINES / "meit.yaml").read_text()
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text.replace("shard_size: 256", "shard_size: 128"))
    assert load_recipe(tmp_path / "a.yaml").fingerprint() == load_recipe(
        PIPELINES / "meit.yaml").fingerprint()
    assert load_recipe(tmp_path / "b.yaml").fingerprint() != load_recipe(
        tmp_path / "a.yaml").fingerprint()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: x\nsignals: {fss: 500}\n", r"unknown key signals.fss — allowed keys in signals"),
        ("name: x\nsignals: {fs: fast}\n", r"signals.fs: expected int, got 'fast'"),
        ("name: x\nsignals: {length_policy: stretch}\n", r"'stretch' is not one of"),
        ("name: x\nshard_size: true\n", r"shard_size: expected int"),
        ("name: x\nsplit: {mimic_fractions: [0.5, 0.5, 0.5]}\n", r"summing to 1"),
        ("name: x\nsources: {enabled: [ptbxl, eicu]}\n", r"unknown source 'eicu'"),
        ("name: x\nreports: {translator: klingon}\n",
         r"reports.translator: unknown translator 'klingon' — use one of glossary, marian"),
        ("signals: {}\n", r"missing key name"),
        ("name: [unclosed\n", r"not valid YAML"),
        ("- a list\n", r"must be a YAML mapping"),
    ],
)
def test_bad_recipes(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(UserError, match=message) as info:
        load_recipe(path)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_recipe_by_bundled_name_from_any_directory(tmp_path: Path, monkeypatch) -> None:
    from ecg_instruct.build.recipe import bundled_recipe_names, recipe_path

    monkeypatch.chdir(tmp_path)
    assert {"meit", "meit-100hz", "meit-instruct"} <= set(bundled_recipe_names())
    assert load_recipe("meit-100hz").signals.fs == 100
    assert recipe_path("meit.yaml") == PIPELINES / "meit.yaml"
    own = tmp_path / "meit"  # an existing file wins over the bundled name
    own.write_text((PIPELINES / "meit-100hz.yaml").read_text())
    assert load_recipe("meit").signals.fs == 100
    with pytest.raises(UserError, match=r"^nope: recipe not found — pass a bundled recipe name "
                                        r"\(meit, meit-100hz, meit-ecgqa, meit-instruct, meit-multisource\)"):
        load_recipe("nope")
    with pytest.raises(UserError, match=r"pass --recipe meit-100hz \(the bundled recipe\)"):
        load_recipe("pipelines/meit-100hz.yaml")


def test_task_count_above_the_templates_is_said_naming_the_recipe(tmp_path: Path) -> None:
    """`instruct.tasks: {report: 1000}` is capped at the number of report templates: said in one
    line naming the recipe file, before the build starts."""
    from typer.testing import CliRunner

    from ecg_instruct.cli import app
    from ecg_instruct.instruct.templates import TemplateLibrary

    n_report = len(TemplateLibrary().for_task("report"))
    recipe = tmp_path / "many.yaml"
    recipe.write_text("name: many\ninstruct: {tasks: {report: 1000}}\n")
    result = CliRunner().invoke(app, ["build", "--recipe", str(recipe), "--source", "mimic",
                                      "--raw-dir", str(tmp_path), "--out", str(tmp_path / "o"),
                                      "--no-progress"], env={"COLUMNS": "400"})
    said = " ".join(result.output.split())
    assert (f"warning: {recipe}: instruct.tasks.report: 1000 examples per record asked, but "
            f"there are {n_report} report templates: each record gets at most {n_report}") in said
    recipe.write_text(f"name: few\ninstruct: {{tasks: {{report: {n_report}}}}}\n")
    result = CliRunner().invoke(app, ["build", "--recipe", str(recipe), "--source", "mimic",
                                      "--raw-dir", str(tmp_path), "--out", str(tmp_path / "o"),
                                      "--no-progress"], env={"COLUMNS": "400"})
    assert "warning" not in result.output
