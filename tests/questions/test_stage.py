"""The questions stage as a stage of the build: resumed like the others (a kill between publish
and the questions, or inside the questions, resumes to the bytes of an uninterrupted build),
never served from stale work (an edited question file is read again), skipped without `ecgqa:`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from buildkit import REPO_ROOT, copy_mirror, quick_recipe, run_build, sample_mirror, tree_digest

import ecg_instruct.questions.stage as questions_stage
from ecg_instruct.questions.stage import INFO_FILE, QuestionsStage

#: The CLI, killed (SIGKILL, as `kill -9`) at KILL_WHERE: `start` = the questions stage has not
#: begun (publish has staged the records), `done_marker` = the join's files and rejects are
#: written, its done marker (`info.json`) not yet.
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import ecg_instruct.questions.stage as stage

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if os.environ["KILL_WHERE"] == "start":
        stage.QuestionsStage.run = lambda self, context: die()
    else:
        real = stage.atomic_write

        def atomic_write(data, path):
            if path.name == stage.INFO_FILE:
                die()
            return real(data, path)

        stage.atomic_write = atomic_write
    from ecg_instruct.cli import main
    sys.argv = ["ecg-instruct", *sys.argv[1:]]
    main()
    """
)


def _recipe(folder: Path) -> Path:
    return quick_recipe(folder, ecgqa={"variant": "template", "split": "ours"})


def _questions(out: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted((out / "data/ecgqa").glob("*.parquet"))],
                     ignore_index=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(mirror, recipe, digest of an uninterrupted build's `meit/`)."""
    mirror = sample_mirror(tmp_path_factory)
    folder = tmp_path_factory.mktemp("questions-reference")
    recipe = _recipe(folder)
    run_build(mirror, folder / "meit", recipe, seed=1)
    return mirror, recipe, tree_digest(folder / "meit")


@pytest.mark.parametrize("where", ["start", "done_marker"])
def test_a_build_killed_after_publish_resumes_to_the_bytes_of_an_uninterrupted_one(
    reference, tmp_path, where,
):
    mirror, recipe, expected = reference
    out = tmp_path / "meit"
    script = tmp_path / "killer.py"
    script.write_text(KILLER, encoding="utf-8")
    env = {**os.environ, "KILL_WHERE": where,
           "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    killed = subprocess.run(
        [sys.executable, str(script), "build", "--raw-dir", str(mirror), "--out", str(out),
         "--recipe", str(recipe), "--workers", "1", "--seed", "1", "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not out.exists()
    assert (tmp_path / "meit.tmp" / "rejects.parquet").exists()  # publish had staged the records
    work = next(Path(f"{out}.work").glob("*/questions")) if where == "done_marker" else None
    if work is not None:  # the join's files are there, without their done marker
        assert list(work.glob("*/ecgqa/*.parquet")) and not list(work.glob(f"*/{INFO_FILE}"))
    run_build(mirror, out, recipe, seed=1)
    assert tree_digest(out) == expected
    assert not (tmp_path / "meit.tmp").exists()


def test_an_unchanged_rebuild_reuses_the_join(reference, tmp_path, monkeypatch):
    mirror, recipe, expected = reference
    out = tmp_path / "meit"
    first = run_build(mirror, out, recipe, seed=1)

    def join_again(*args, **kwargs):
        raise AssertionError("the questions were joined again for unchanged inputs")

    monkeypatch.setattr(questions_stage, "run_questions", join_again)
    again = run_build(mirror, out, recipe, seed=1)
    assert tree_digest(out) == expected
    assert again.questions == first.questions  # the summary's, read back from the work folder


def test_an_edited_question_file_is_read_again_not_served_from_stale_work(
    tmp_path_factory, tmp_path,
):
    mirror = copy_mirror(sample_mirror(tmp_path_factory), tmp_path / "mirror")
    recipe = _recipe(tmp_path / "recipe")
    out = tmp_path / "meit"
    run_build(mirror, out, recipe)
    before = _questions(out).set_index("id")
    question_id = "ecgqa/ptbxl/template/train/0"
    assert question_id in before.index
    old = before.loc[question_id, "question"]
    assert old.endswith("?")
    # An edit that keeps the file's size and mtime: only its content says it changed.
    path = mirror / "ecg-qa/ecgqa/ptbxl/template/train/0.json"
    stat = path.stat()
    text = path.read_text(encoding="utf-8")
    at = text.index(json.dumps(old), text.index('"sample_id": 0,'))
    path.write_text(text[:at] + json.dumps(old[:-1] + "!") + text[at + len(old) + 2:],
                    encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    run_build(mirror, out, recipe)
    after = _questions(out).set_index("id")
    assert after.loc[question_id, "question"] == old[:-1] + "!"
    user = [m for m in after.loc[question_id, "messages"] if m["role"] == "user"][0]
    assert user["content"].endswith(old[:-1] + "!")
    assert after.drop(index=question_id)["question"].equals(before.drop(index=question_id)["question"])
    assert len(list(Path(f"{out}.work").glob("*/questions/*"))) == 1  # the outdated work is gone


def test_without_ecgqa_the_stage_is_skipped_and_writes_nothing(tmp_path_factory, tmp_path):
    assert QuestionsStage().done(SimpleNamespace(options=SimpleNamespace(
        recipe=SimpleNamespace(ecgqa=None))))
    out = tmp_path / "meit"
    summary = run_build(sample_mirror(tmp_path_factory), out, quick_recipe(tmp_path / "recipe"))
    assert summary.questions is None
    assert not (out / "data" / "ecgqa").exists()
    assert not list(Path(f"{out}.work").glob("*/questions"))
    assert "questions" not in pd.read_parquet(out / "rejects.parquet")["stage"].tolist()
